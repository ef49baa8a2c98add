use std::fs;

use crate::support::{Item, make_image, sealcraft};

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("img");
    let descriptor = make_image(
        &layout,
        "v1",
        &[vec![Item::File("a", 0o644, 0, b"content")]],
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.join("blobs/sha256").join(descriptor.digest.digest())).unwrap(),
    )
    .unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let blob = layout
        .join("blobs/sha256")
        .join(layer_digest.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();
    let output_dir = dir.path().join("out");
    let output = sealcraft(
        &[
            "squash",
            &format!("oci:{}:v1", layout.display()),
            "--output",
            &format!("oci:{}:flat", output_dir.display()),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&layer_digest),
        "the error must name the blob: {stderr}"
    );
    // Nothing tagged in the output.
    let index = fs::read_to_string(output_dir.join("index.json")).unwrap_or_default();
    assert!(!index.contains("flat"), "{index}");
}

#[test]
fn unknown_images_and_bad_names_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("img");
    make_image(&layout, "v1", &[vec![Item::File("a", 0o644, 0, b"x")]]);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "squash".into(),
                format!("oci:{}:missing", layout.display()),
                "--output".into(),
                "oci:/tmp/x:y".into(),
            ],
            "no image tagged \"missing\"",
        ),
        (
            vec!["image".into(), "inspect".into(), "not-a-transport".into()],
            "expected oci:DIR",
        ),
        (
            vec![
                "squash".into(),
                format!("oci:{}:v1", layout.display()),
                "--output".into(),
                format!("oci:{}", dir.path().join("o").display()),
            ],
            "name the output with a tag",
        ),
        (
            vec![
                "image".into(),
                "import".into(),
                format!("rootfs:{}", dir.path().join("absent.tar").display()),
                "--output".into(),
                format!("oci:{}:t", dir.path().join("o").display()),
            ],
            "absent.tar",
        ),
        (
            vec![
                "image".into(),
                "inspect".into(),
                format!("oci:{}", dir.path().join("nothing").display()),
            ],
            "not an OCI image layout",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = sealcraft(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn config_errors_point_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sealcraft.toml");
    let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let cases = [
        (format!("[project]\nname = \"a\"\nversion = \"latest\"\nregistry = \"r.example.com\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:b:t@{digest}\"\n"), "sealcraft.toml:3:"),
        (format!("[project]\nname = \"a\"\nversion = \"1\"\nregistry = \"r.example.com\"\narchitectures = []\n[base]\nimage = \"oci:b:t@{digest}\"\n"), "sealcraft.toml:5:"),
        ("[project]\nname = \"a\"\nversion = \"1\"\nregistry = \"r.example.com\"\n[base]\nimage = \"oci:b:t\"\n".to_owned(), "architectures"),
        ("[project]\nname = \"a\"\nversion = \"1\"\nregistry = \"r.example.com\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:b:latest\"\n".to_string(), "sealcraft.toml:7:"),
    ];
    for (text, expected) in cases {
        fs::write(&config, &text).unwrap();
        let output = sealcraft(&["run", "--config", &config.display().to_string()], &[]);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
        assert!(
            !dir.path().join("out").exists(),
            "nothing may be written for an invalid config"
        );
    }
}
