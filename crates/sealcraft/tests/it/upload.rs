//! Artifacts uploaded to a real S3 server (s3s-fs, real SigV4), in the
//! guide's layout, write-once and verified; failures retried and reported.

use std::fs;
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::support::{generate_keys, make_base, sealcraft};

pub(crate) const ACCESS_KEY: &str = "AKIASEALCRAFTTEST";
pub(crate) const SECRET_KEY: &str = "canary-s3-secret-8b1f2c";

pub(crate) struct S3Server {
    pub(crate) root: PathBuf,
    child: Option<Child>,
}

impl S3Server {
    pub(crate) fn start(root: &Path, port: u16) -> Self {
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
    generate_keys(&dir.join("keys"), "canary-key-pass-77ad");
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
        credentials: sealcraft_store::Credentials::S3 {
            access_key_id: sealcraft_secrets::Secret::new(ACCESS_KEY),
            secret_access_key: sealcraft_secrets::Secret::new(SECRET_KEY),
        },
        allow_http: true,
        retries: 1,
        environment: Vec::new(),
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
            credentials: sealcraft_store::Credentials::S3 {
                access_key_id: sealcraft_secrets::Secret::new(ACCESS_KEY),
                secret_access_key: sealcraft_secrets::Secret::new("not-the-secret"),
            },
            ..store
        },
        &sboms,
    )
    .unwrap_err();
    let message = error_chain(&wrong);
    assert!(
        message.contains("s3://artifacts/releases") && !message.contains("not-the-secret"),
        "{message}"
    );
}

/// An error and all its causes, as the command line prints them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        message.push_str(&format!(": {error}"));
        cause = error.source();
    }
    message
}

pub(crate) fn walk(root: &Path) -> Vec<PathBuf> {
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

/// A TCP proxy in front of the S3 server: each of the first `cut` connections
/// forwards `after` bytes of the request and is then torn down in both
/// directions, as when a server dies in the middle of a body.
fn cutting_proxy(target: u16, cut: usize, after: u64) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let limit = if counter.fetch_add(1, Ordering::SeqCst) < cut {
                after
            } else {
                u64::MAX
            };
            let (client_read, mut server_write, client_kill) = (
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                client.try_clone().unwrap(),
            );
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_read.take(limit), &mut server_write);
                let _ = server_write.shutdown(Shutdown::Both);
                let _ = client_kill.shutdown(Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
                let _ = client_write.shutdown(Shutdown::Both);
            });
        }
    });
    (port, connections)
}

/// Every object in the bucket is absent or byte-identical to the local file:
/// an interrupted upload never leaves a truncated object behind.
fn assert_no_partial_objects(s3_root: &Path, run_dir: &Path) -> usize {
    let mut complete = 0;
    for stored in walk(&s3_root.join("artifacts")) {
        let name = stored.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with("json") && !name.ends_with(".sig") {
            continue;
        }
        assert_eq!(
            fs::read(&stored).unwrap(),
            fs::read(run_dir.join(&name)).unwrap(),
            "{} is not the local file",
            stored.display()
        );
        complete += 1;
    }
    complete
}

#[test]
fn a_server_dying_mid_upload_leaves_no_partial_object_and_the_retry_completes() {
    let dir = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    let s3_root = dir.path().join("s3");
    let _server = S3Server::start(&s3_root, s3_port);
    let run_dir = dir.path().join("project/out/up-1.2.3-amd64");

    // Every connection dies 1500 bytes in (past the headers, inside the first
    // body, the attestation's):
    // the run fails after its retries, names the location, publishes nothing.
    let (dead_port, dead_seen) = cutting_proxy(s3_port, usize::MAX, 1500);
    let config = project(&dir.path().join("project"), dead_port, "TEST_S3_SECRET");
    let failed = run(&config, SECRET_KEY);
    assert_eq!(failed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("uploading") && stderr.contains("s3://artifacts/releases"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET_KEY), "{stderr}");
    let attestation = fs::metadata(run_dir.join("attestation-up-1.2.3-amd64.json")).unwrap();
    assert!(
        attestation.len() > 1500,
        "the cut must fall inside the body"
    );
    assert!(
        dead_seen.load(Ordering::SeqCst) > 1,
        "the upload was not retried"
    );
    assert!(!dir.path().join("project/published").exists());
    assert_eq!(assert_no_partial_objects(&s3_root, &run_dir), 0);

    // The first two connections die mid-body, later ones go through: the
    // retries complete the upload and every object is whole.
    let (flaky_port, flaky_seen) = cutting_proxy(s3_port, 2, 1500);
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace(&format!(":{dead_port}\""), &format!(":{flaky_port}\"")),
    )
    .unwrap();
    let output = run(&config, SECRET_KEY);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(flaky_seen.load(Ordering::SeqCst) > 2);
    assert_eq!(assert_no_partial_objects(&s3_root, &run_dir), 6);
    assert!(dir.path().join("project/published").exists());
}

/// Talks to Azurite with the emulator's well-known shared key: creates a
/// container (`create NAME`) or prints a blob (`get NAME/PATH`), independently
/// of the client under test.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key for that account.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const AZURITE_CLIENT: &str = r#"
import base64, email.utils, hashlib, hmac, sys, urllib.request
endpoint, action, target = sys.argv[1:4]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date, version = email.utils.formatdate(usegmt=True), "2021-08-06"
headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
if action == "create":
    method, content_type, query, suffix = "PUT", "application/octet-stream", "?restype=container", "\nrestype:container"
else:
    method, content_type, query, suffix = "GET", "", "", ""
to_sign = f"{method}\n\n\n\n\n{content_type}" + "\n" * 7 + headers + f"/{account}/{account}/{target}{suffix}"
signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
request = urllib.request.Request(f"{endpoint}/{account}/{target}{query}", method=method, data=b"" if method == "PUT" else None)
if content_type:
    request.add_header("Content-Type", content_type)
request.add_header("x-ms-date", date)
request.add_header("x-ms-version", version)
request.add_header("Authorization", f"SharedKey {account}:{signature}")
sys.stdout.buffer.write(urllib.request.urlopen(request).read())
"#;

fn azurite_client(endpoint: &str, action: &str, target: &str) -> Vec<u8> {
    let output = Command::new("python3")
        .args(["-c", AZURITE_CLIENT, endpoint, action, target])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "azurite {action} {target}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn artifacts_reach_azure_blob_storage_through_azurite() {
    let program = std::env::var("SEALCRAFT_AZURITE").unwrap_or_else(|_| {
        "/opt/sealcraft-tools/azurite/node_modules/.bin/azurite-blob".to_owned()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(&program);
    command
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir.path().join("azurite"))
        .args(["--silent", "--skipApiVersionCheck"]);
    let _azurite = Emulator::start(command, port, "azurite");
    let endpoint = format!("http://127.0.0.1:{port}");
    azurite_client(&endpoint, "create", "artifacts");

    // The account key comes through a secret reference, as for a real account;
    // the endpoint is Azurite's path-style account URL.
    let account_url = format!("{endpoint}/{AZURITE_ACCOUNT}");
    let config = project(&dir.path().join("project"), port, "TEST_S3_SECRET");
    let text = fs::read_to_string(&config).unwrap();
    let (before_upload, _) = text.split_once("[upload]").unwrap();
    fs::write(
        &config,
        format!(
            "{before_upload}[upload]\nurl = \"az://artifacts/releases\"\nendpoint = \"{account_url}\"\nallow_http = true\naccount = \"{AZURITE_ACCOUNT}\"\naccess_key = \"env:TEST_AZURE_KEY\"\n"
        ),
    )
    .unwrap();
    let output = sealcraft(
        &["run", "--config", &config.display().to_string()],
        &[
            ("COSIGN_PASSWORD", "canary-key-pass-77ad"),
            ("TEST_AZURE_KEY", AZURITE_KEY),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let run_dir = dir.path().join("project/out/up-1.2.3-amd64");
    let uploads = sealcraft_store::release_layout(&run_dir, "amd64");
    assert_eq!(uploads.len(), 6);
    // Azurite, read by a client of its own, holds exactly the local bytes.
    for upload in uploads {
        let stored = azurite_client(
            &endpoint,
            "get",
            &format!("artifacts/releases/{}", upload.key),
        );
        assert_eq!(stored, fs::read(&upload.local).unwrap(), "{}", upload.key);
    }

    // Another account key: Azurite refuses the signature, and the error says
    // where without repeating the key.
    let wrong_key = "d3Jvbmcta2V5LW5vdC10aGUtYWNjb3VudHMta2V5LTAwMDAwMDAwMDAwMDAwMDA=";
    let store = sealcraft_store::StoreConfig {
        url: "az://artifacts/elsewhere".into(),
        endpoint: Some(account_url),
        region: None,
        credentials: sealcraft_store::Credentials::Azure {
            account: AZURITE_ACCOUNT.into(),
            access_key: sealcraft_secrets::Secret::new(wrong_key),
        },
        allow_http: true,
        retries: 0,
        environment: Vec::new(),
    };
    let wrong = sealcraft_store::upload(
        &store,
        &sealcraft_store::release_layout(&run_dir, "amd64")[..1],
    )
    .unwrap_err();
    let message = error_chain(&wrong);
    assert!(
        message.starts_with("uploading az://artifacts/elsewhere/") && message.contains("403"),
        "{message}"
    );
    assert!(!message.contains(wrong_key), "{message}");
}

/// An emulator process listening on a port, stopped when dropped.
struct Emulator(Child);

impl Emulator {
    fn start(mut command: Command, port: u16, install_hint: &str) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{command:?} is needed (scripts/test installs {install_hint}): {error}")
            });
        let emulator = Self(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{install_hint} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain-HTTP endpoint without `allow_http` is refused when the config is
/// read, before anything is built, with the setting to change (it used to
/// fail at upload time with the same "builder error" six times).
#[test]
fn a_plain_http_endpoint_without_allow_http_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path(), crate::registry::free_port(), "TEST_S3_SECRET");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace("allow_http = true\n", "")).unwrap();
    let output = run(&config, SECRET_KEY);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("upload.endpoint")
            && stderr.contains("set `allow_http = true` in [upload]"),
        "{stderr}"
    );
    assert!(!stderr.contains("builder error"), "{stderr}");
    assert!(
        !dir.path().join("out").exists(),
        "nothing ran: the config was refused first"
    );
}
