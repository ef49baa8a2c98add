//! Artifacts uploaded to a real S3 server (s3s-fs, real SigV4), in the
//! guide's layout, write-once and verified; failures retried and reported.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::support::{make_base, sealcraft};

const ACCESS_KEY: &str = "AKIASEALCRAFTTEST";
const SECRET_KEY: &str = "canary-s3-secret-8b1f2c";

struct S3Server {
    root: PathBuf,
    child: Option<Child>,
}

impl S3Server {
    fn start(root: &Path, port: u16) -> Self {
        let program = std::env::var("SEALCRAFT_S3S_FS")
            .unwrap_or_else(|_| "/opt/sealcraft-tools/s3s-fs/bin/s3s-fs".to_owned());
        fs::create_dir_all(root.join("artifacts")).unwrap();
        let child = Command::new(&program)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
            ])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} is needed (scripts/test installs s3s-fs): {error}")
            });
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "s3s-fs did not start"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        Self {
            root: root.to_path_buf(),
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn project(dir: &Path, port: u16, secret_env: &str) -> PathBuf {
    let base_digest = make_base(&dir.join("base"));
    fs::write(dir.join("tool"), b"#!/bin/sh\n").unwrap();
    assert!(
        sealcraft(
            &[
                "key",
                "generate",
                "--output-dir",
                &dir.join("keys").display().to_string()
            ],
            &[("COSIGN_PASSWORD", "canary-key-pass-77ad")]
        )
        .status
        .success()
    );
    let config = dir.join("sealcraft.toml");
    fs::write(
        &config,
        format!(
            "[project]\nname = \"up\"\nversion = \"1.2.3\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n[base]\nimage = \"oci:base:base@{base_digest}\"\n[user]\nname = \"app\"\nuid = 1000\n[[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\n[publish]\nkey = \"keys/cosign.key\"\ntarget = \"oci:published\"\n[upload]\nurl = \"s3://artifacts/releases\"\nendpoint = \"http://127.0.0.1:{port}\"\nallow_http = true\naccess_key_id = \"env:TEST_S3_KEY\"\nsecret_access_key = \"env:{secret_env}\"\n"
        ),
    )
    .unwrap();
    config
}

fn run(config: &Path, secret: &str) -> std::process::Output {
    sealcraft(
        &["run", "--config", &config.display().to_string()],
        &[
            ("COSIGN_PASSWORD", "canary-key-pass-77ad"),
            ("TEST_S3_KEY", ACCESS_KEY),
            ("TEST_S3_SECRET", secret),
        ],
    )
}

#[test]
fn artifacts_land_at_the_layout_paths_write_once_and_reruns_converge() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = project(&dir.path().join("project"), port, "TEST_S3_SECRET");
    let run_dir = dir.path().join("project/out/up-1.2.3-amd64");

    // Server down: retries, then a clear error, and nothing is published.
    let down = run(&config, SECRET_KEY);
    assert_eq!(down.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("uploading") && stderr.contains("s3://artifacts/releases"),
        "{stderr}"
    );
    assert!(!dir.path().join("project/published").exists());

    // Server up: the rerun converges.
    let server = S3Server::start(&dir.path().join("s3"), port);
    let output = run(&config, SECRET_KEY);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = [
        "attestations/amd64/attestation-up-1.2.3-amd64.json",
        "attestations/amd64/attestation-up-1.2.3-amd64.json.sig",
        "sboms/amd64/sbom-up-1.2.3-amd64-cyclonedx.json",
        "sboms/amd64/sbom-up-1.2.3-amd64-cyclonedx.json.sig",
        "sboms/amd64/sbom-up-1.2.3-amd64-spdx.json",
        "sboms/amd64/sbom-up-1.2.3-amd64-spdx.json.sig",
    ];
    for key in expected {
        let stored = server.root.join("artifacts/releases").join(key);
        let local = run_dir.join(Path::new(key).file_name().unwrap());
        assert_eq!(
            fs::read(&stored).unwrap_or_else(|error| panic!("{key}: {error}")),
            fs::read(&local).unwrap(),
            "{key} differs"
        );
    }
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    let upload = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|stage| stage["stage"] == "upload")
        .unwrap();
    assert_eq!(upload["outputs"].as_array().unwrap().len(), expected.len());
    let published_attestation =
        fs::read(server.root.join("artifacts/releases").join(expected[0])).unwrap();

    // Uploading identical content again counts it as present.
    let store = sealcraft_store::StoreConfig {
        url: "s3://artifacts/releases".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: None,
        access_key_id: Some(sealcraft_secrets::Secret::new(ACCESS_KEY)),
        secret_access_key: Some(sealcraft_secrets::Secret::new(SECRET_KEY)),
        allow_http: true,
        retries: 1,
    };
    let sboms: Vec<sealcraft_store::Upload> = sealcraft_store::release_layout(&run_dir, "amd64")
        .into_iter()
        .filter(|upload| upload.key.starts_with("sboms/"))
        .collect();
    let report = sealcraft_store::upload(&store, &sboms).unwrap();
    assert!(
        report.objects.iter().all(|object| object.already_present),
        "{report:?}"
    );

    // A new run makes new provenance: write-once refuses to replace what was published.
    let again = run(&config, SECRET_KEY);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("write-once"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        fs::read(server.root.join("artifacts/releases").join(expected[0])).unwrap(),
        published_attestation
    );

    // No secret reached any file the run wrote.
    for entry in walk(&dir.path().join("project/out")) {
        let bytes = fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(SECRET_KEY) && !text.contains("canary-key-pass-77ad"),
            "a secret is in {}",
            entry.display()
        );
    }

    // Wrong credentials: a clear error that does not repeat the secret.
    let wrong = sealcraft_store::upload(
        &sealcraft_store::StoreConfig {
            secret_access_key: Some(sealcraft_secrets::Secret::new("not-the-secret")),
            ..store
        },
        &sboms,
    )
    .unwrap_err();
    let message = format!(
        "{wrong}: {}",
        std::error::Error::source(&wrong)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(
        message.contains("s3://artifacts/releases") && !message.contains("not-the-secret"),
        "{message}"
    );
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
