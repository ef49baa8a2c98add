//! What the main commands print, for people (stderr) and machines
//! (`--json` on stdout), as reviewed snapshots: every change of output is a
//! diff in `tests/it/snapshots/`. Digests, times, durations and temporary
//! paths are filtered out; everything else is compared as printed.

use std::fs;
use std::path::Path;

use crate::support::{Item, make_image, sealcraft};

/// Runs sealcraft with `SOURCE_DATE_EPOCH` fixed and records exit code, stdout and stderr.
fn transcript(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut env = env.to_vec();
    env.push(("SOURCE_DATE_EPOCH", "1700000000"));
    let output = sealcraft(args, &env);
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".into(), |code| code.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts the transcript of `args` against the snapshot `name`, with
/// `dir` (the test's temporary directory) shown as `[DIR]`.
fn check(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let text = transcript(args, env);
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    settings.add_filter(r"sha(256|512):[0-9a-f]{64,128}", "sha$1:[DIGEST]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[HEX]");
    settings.add_filter(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[TIME]",
    );
    settings.add_filter(r" +\d+ ms\b", " [N] ms");
    settings.add_filter(r#""duration_ms": \d+"#, r#""duration_ms": [N]"#);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '/' || ch == '_' {
                ch.to_string()
            } else {
                format!("\\{ch}")
            }
        })
        .collect()
}

fn layered_image(dir: &Path) -> String {
    let source = dir.join("source");
    make_image(
        &source,
        "layered",
        &[
            vec![
                Item::Dir("bin", 0o755, 0),
                Item::File("bin/app", 0o755, 0, b"#!/bin/sh\necho app\n"),
                Item::Dir("etc", 0o755, 0),
                Item::File("etc/motd", 0o644, 0, b"welcome"),
            ],
            vec![Item::Whiteout("etc/motd")],
        ],
    );
    format!("oci:{}:layered", source.display())
}

#[test]
fn image_commands_print_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let image = layered_image(dir.path());
    let flat = format!("oci:{}:flat", dir.path().join("flat").display());
    for json in [false, true] {
        let suffix = if json { "json" } else { "human" };
        let mut args = vec!["image", "inspect", image.as_str()];
        if json {
            args.push("--json");
        }
        check(&format!("inspect-{suffix}"), dir.path(), &args, &[]);
        let mut args = vec!["squash", image.as_str(), "--output", flat.as_str()];
        if json {
            args.push("--json");
        }
        check(&format!("squash-{suffix}"), dir.path(), &args, &[]);
    }
    check(
        "inspect-missing-tag",
        dir.path(),
        &[
            "image",
            "inspect",
            &format!("oci:{}:nope", dir.path().join("source").display()),
        ],
        &[],
    );
}

/// A root filesystem with two dpkg packages and a Python distribution.
fn small_rootfs(root: &Path) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\nPackage: tar\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.34+dfsg-1.2\n\nPackage: broken\n",
    )
    .unwrap();
    let dist = root.join("usr/lib/python3/dist-packages/requests-2.31.0.dist-info");
    fs::create_dir_all(&dist).unwrap();
    fs::write(
        dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n",
    )
    .unwrap();
}

#[test]
fn sbom_and_scan_print_packages_findings_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    small_rootfs(&root);
    let out = dir.path().join("sboms");
    let rootfs = format!("dir:{}", root.display());
    let out_arg = out.display().to_string();
    check(
        "sbom-human",
        dir.path(),
        &["sbom", &rootfs, "--name", "small", "-o", &out_arg],
        &[],
    );
    check(
        "sbom-json",
        dir.path(),
        &["sbom", &rootfs, "--name", "small", "-o", &out_arg, "--json"],
        &[],
    );
    let db = dir.path().join("osv");
    fs::create_dir_all(&db).unwrap();
    fs::write(
        db.join("PYSEC-TEST-1.json"),
        r#"{"id":"PYSEC-TEST-1","summary":"a test advisory","aliases":["CVE-2099-0001"],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.32.0"}]}]}]}"#,
    )
    .unwrap();
    fs::write(db.join("BROKEN.json"), "{ not json").unwrap();
    let db_arg = db.display().to_string();
    let sbom = out.join("sbom-small-cyclonedx.json").display().to_string();
    check(
        "scan-human-gate-fails",
        dir.path(),
        &["scan", "--sbom", &sbom, "--db", &db_arg],
        &[],
    );
    check(
        "scan-json-gate-passes",
        dir.path(),
        &[
            "scan",
            "--sbom",
            &sbom,
            "--db",
            &db_arg,
            "--fail-on",
            "CRITICAL",
            "--ignore-unfixed",
            "--json",
        ],
        &[],
    );
    let imported = dir.path().join("db");
    let imported_arg = imported.display().to_string();
    check(
        "db-import-human",
        dir.path(),
        &["db", "import", &db_arg, "--db", &imported_arg],
        &[],
    );
    check(
        "db-info-json",
        dir.path(),
        &["db", "info", "--db", &imported_arg, "--json"],
        &[],
    );
}

#[test]
fn keys_and_blob_signatures_print_their_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_arg = keys.display().to_string();
    let env = [("COSIGN_PASSWORD", "snapshot-pass")];
    check(
        "key-generate-json",
        dir.path(),
        &["key", "generate", "--output-dir", &keys_arg, "--json"],
        &env,
    );
    check(
        "key-generate-exists",
        dir.path(),
        &["key", "generate", "--output-dir", &keys_arg],
        &env,
    );
    let blob = dir.path().join("blob.txt");
    fs::write(&blob, "signed content\n").unwrap();
    let signature = dir.path().join("blob.sig");
    let output = sealcraft(
        &[
            "sign-blob",
            "--key",
            &keys.join("cosign.key").display().to_string(),
            "--output-signature",
            &signature.display().to_string(),
            &blob.display().to_string(),
        ],
        &env,
    );
    assert!(output.status.success());
    let verify = |file: &Path| {
        vec![
            "verify-blob".to_owned(),
            "--key".to_owned(),
            keys.join("cosign.pub").display().to_string(),
            "--signature".to_owned(),
            signature.display().to_string(),
            file.display().to_string(),
        ]
    };
    let args = verify(&blob);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check("verify-blob-ok", dir.path(), &args, &[]);
    let tampered = dir.path().join("tampered.txt");
    fs::write(&tampered, "signed content!\n").unwrap();
    let args = verify(&tampered);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check("verify-blob-rejected", dir.path(), &args, &[]);
}

#[test]
fn help_and_usage_errors_read_as_intended() {
    let dir = tempfile::tempdir().unwrap();
    check("help", dir.path(), &["--help"], &[]);
    check(
        "bad-choice",
        dir.path(),
        &["build", "--network", "bridge", "--output", "oci:x:y"],
        &[],
    );
    check(
        "bad-pair",
        dir.path(),
        &["build", "--base", "no-equals-sign", "--output", "oci:x:y"],
        &[],
    );
}

#[test]
fn pipeline_commands_print_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let base_digest = crate::support::make_base(&dir.path().join("base"));
    fs::write(dir.path().join("tool"), b"#!/bin/sh\necho tool\n").unwrap();
    crate::support::generate_keys(&dir.path().join("keys"), "snapshot-key");
    let config = dir.path().join("sealcraft.toml");
    fs::write(
        &config,
        format!(
            "[project]\nname = \"svc\"\nversion = \"1.0.0\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n\n[base]\nimage = \"oci:base:base@{base_digest}\"\n\n[user]\nname = \"svc\"\nuid = 2000\n\n[[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\nmode = \"0755\"\n\n[config]\nentrypoint = [\"/usr/local/bin/tool\"]\n\n[publish]\nkey = \"keys/cosign.key\"\nkey_password = \"env:SNAPSHOT_KEY_PASSWORD\"\ntarget = \"oci:published\"\n"
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let assembled = format!("oci:{}:assembled", dir.path().join("images").display());
    let env = [("SNAPSHOT_KEY_PASSWORD", "snapshot-key")];
    for json in [false, true] {
        let suffix = if json { "json" } else { "human" };
        let mut args = vec!["assemble", "--config", &config_arg, "--output", &assembled];
        if json {
            args.push("--json");
        }
        check(&format!("assemble-{suffix}"), dir.path(), &args, &[]);
    }
    let hardened = format!("oci:{}:hardened", dir.path().join("images").display());
    check(
        "harden-human",
        dir.path(),
        &["harden", &assembled, "--output", &hardened],
        &[],
    );
    check(
        "run-human",
        dir.path(),
        &["run", "--config", &config_arg],
        &env,
    );
    let published = format!("oci:{}:1.0.0-amd64", dir.path().join("published").display());
    let public = dir.path().join("keys/cosign.pub").display().to_string();
    for json in [false, true] {
        let suffix = if json { "json" } else { "human" };
        let mut args = vec!["verify", published.as_str(), "--key", public.as_str()];
        if json {
            args.push("--json");
        }
        check(&format!("verify-{suffix}"), dir.path(), &args, &[]);
    }
    let context = dir.path().join("context");
    fs::create_dir_all(&context).unwrap();
    fs::write(context.join("hello.txt"), "hello\n").unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM oci:{}:base@{base_digest}\nCOPY hello.txt /srv/hello.txt\nUSER 1000\n",
            dir.path().join("base").display()
        ),
    )
    .unwrap();
    let built = format!("oci:{}:built", dir.path().join("images").display());
    check(
        "build-human",
        dir.path(),
        &[
            "build",
            "--context",
            &context.display().to_string(),
            "--cache-dir",
            &dir.path().join("store").display().to_string(),
            "--output",
            &built,
        ],
        &[],
    );
}
