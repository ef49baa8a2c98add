//! Keys and blob signatures are interchangeable with the real cosign.

use std::fs;

use crate::support::{ErrorCase, cosign, sealcraft};

fn ok(output: &std::process::Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn keys_and_blob_signatures_work_both_ways_with_cosign() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let blob = dir.path().join("artifact.txt");
    fs::write(&blob, b"release artifact\n").unwrap();
    let blob_arg = blob.display().to_string();

    // sealcraft's key, used by cosign; sealcraft's signature, verified by cosign.
    let ours = dir.path().join("ours");
    ok(
        &sealcraft(
            &[
                "key",
                "generate",
                "--output-dir",
                &ours.display().to_string(),
            ],
            &[("COSIGN_PASSWORD", "pw-ours")],
        ),
        "sealcraft key generate",
    );
    let our_key = ours.join("cosign.key").display().to_string();
    let our_pub = ours.join("cosign.pub").display().to_string();
    let signature = dir.path().join("ours.sig");
    ok(
        &sealcraft(
            &[
                "sign-blob",
                "--key",
                &our_key,
                "--output-signature",
                &signature.display().to_string(),
                &blob_arg,
            ],
            &[("COSIGN_PASSWORD", "pw-ours")],
        ),
        "sealcraft sign-blob",
    );
    ok(
        &cosign(
            home,
            &[
                "verify-blob",
                "--key",
                &our_pub,
                "--signature",
                &signature.display().to_string(),
                "--insecure-ignore-tlog=true",
                &blob_arg,
            ],
            &[],
        ),
        "cosign verify-blob",
    );
    let cosign_signature = ok(
        &cosign(
            home,
            &[
                "sign-blob",
                "--yes",
                "--key",
                &our_key,
                "--tlog-upload=false",
                &blob_arg,
            ],
            &[("COSIGN_PASSWORD", "pw-ours")],
        ),
        "cosign sign-blob with sealcraft's key",
    );
    let cosign_sig_path = dir.path().join("cosign-with-ours.sig");
    fs::write(&cosign_sig_path, cosign_signature.trim()).unwrap();
    ok(
        &sealcraft(
            &[
                "verify-blob",
                "--key",
                &our_pub,
                "--signature",
                &cosign_sig_path.display().to_string(),
                &blob_arg,
            ],
            &[],
        ),
        "sealcraft verify-blob",
    );

    // cosign's key, used by sealcraft; the password read from a file reference.
    let theirs = dir.path().join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    let generated = std::process::Command::new(
        std::env::var("SEALCRAFT_COSIGN").unwrap_or_else(|_| "cosign".into()),
    )
    .args(["generate-key-pair"])
    .current_dir(&theirs)
    .env("HOME", home)
    .env("COSIGN_PASSWORD", "pw-theirs")
    .output()
    .unwrap();
    ok(&generated, "cosign generate-key-pair");
    let password_file = dir.path().join("password");
    fs::write(&password_file, "pw-theirs\n").unwrap();
    let password_ref = format!("file:{}", password_file.display());
    let their_key = theirs.join("cosign.key").display().to_string();
    let their_pub = theirs.join("cosign.pub").display().to_string();
    let ours_with_theirs = ok(
        &sealcraft(
            &[
                "sign-blob",
                "--key",
                &their_key,
                "--password-from",
                &password_ref,
                &blob_arg,
            ],
            &[],
        ),
        "sealcraft sign-blob with cosign's key",
    );
    let path = dir.path().join("ours-with-theirs.sig");
    fs::write(&path, ours_with_theirs).unwrap();
    ok(
        &cosign(
            home,
            &[
                "verify-blob",
                "--key",
                &their_pub,
                "--signature",
                &path.display().to_string(),
                "--insecure-ignore-tlog=true",
                &blob_arg,
            ],
            &[],
        ),
        "cosign verify-blob of sealcraft's signature",
    );

    // A tampered file is rejected (exit 1); a signature by the other key too.
    let tampered = dir.path().join("tampered.txt");
    fs::write(&tampered, b"release artifacT\n").unwrap();
    let rejected = sealcraft(
        &[
            "verify-blob",
            "--key",
            &their_pub,
            "--signature",
            &path.display().to_string(),
            &tampered.display().to_string(),
        ],
        &[],
    );
    assert_eq!(
        rejected.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );
    let wrong_key = sealcraft(
        &[
            "verify-blob",
            "--key",
            &our_pub,
            "--signature",
            &path.display().to_string(),
            &blob_arg,
        ],
        &[],
    );
    assert_eq!(wrong_key.status.code(), Some(1));
}

#[test]
fn key_errors_are_clear_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let generated = sealcraft(
        &[
            "key",
            "generate",
            "--output-dir",
            &keys.display().to_string(),
        ],
        &[("COSIGN_PASSWORD", "right")],
    );
    assert!(generated.status.success());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(keys.join("cosign.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let blob = dir.path().join("b");
    fs::write(&blob, b"x").unwrap();
    let key = keys.join("cosign.key").display().to_string();
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            vec![
                "sign-blob".into(),
                "--key".into(),
                key.clone(),
                blob.display().to_string(),
            ],
            vec![("COSIGN_PASSWORD", "wrong")],
            "wrong password",
        ),
        (
            vec![
                "sign-blob".into(),
                "--key".into(),
                dir.path().join("absent.key").display().to_string(),
                blob.display().to_string(),
            ],
            vec![("COSIGN_PASSWORD", "right")],
            "absent.key",
        ),
        (
            vec![
                "sign-blob".into(),
                "--key".into(),
                key.clone(),
                "--password-from".into(),
                "env:NOT_SET_ANYWHERE".into(),
                blob.display().to_string(),
            ],
            vec![],
            "NOT_SET_ANYWHERE",
        ),
        (
            vec![
                "key".into(),
                "generate".into(),
                "--output-dir".into(),
                keys.display().to_string(),
            ],
            vec![("COSIGN_PASSWORD", "x")],
            "already exists",
        ),
    ];
    for (args, env, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sealcraft"));
        command.args(&args).env_remove("COSIGN_PASSWORD");
        for (k, v) in &env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert!(
            !stderr.contains("right"),
            "the password leaked into an error: {stderr}"
        );
    }
}
