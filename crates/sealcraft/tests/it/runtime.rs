//! The acceptance path end to end: a Debian base made by mmdebstrap,
//! examples/hello assembled on it as a non-root image, squashed, unpacked
//! by umoci and run by runc, answering HTTP.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{run_tool, sealcraft_ok};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The bookworm rootfs tarball: `SEALCRAFT_TEST_ROOTFS` when set (scripts/test
/// builds and caches it), otherwise built here with mmdebstrap.
fn debian_rootfs() -> PathBuf {
    if let Ok(path) = std::env::var("SEALCRAFT_TEST_ROOTFS") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bookworm-minbase.tar");
    if !path.exists() {
        let partial = path.with_extension("partial");
        run_tool(
            "mmdebstrap",
            &[
                "--quiet",
                "--variant=minbase",
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                "--customize-hook=rm \"$1\"/etc/resolv.conf \"$1\"/etc/hostname",
                "--format=tar",
                "bookworm",
                &partial.display().to_string(),
            ],
        );
        fs::rename(&partial, &path).unwrap();
    }
    path
}

fn hello_binary() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hello-target");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(workspace_root().join("examples/hello/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "building examples/hello failed");
    target.join("release/hello")
}

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .args(["kill", &self.0, "KILL"])
            .output();
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("runc")
            .args(["delete", "--force", &self.0])
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, deadline: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if !response.is_empty() {
                return response;
            }
        }
        assert!(
            start.elapsed() < deadline,
            "the container did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hello_runs_under_runc_as_non_root_and_answers_http() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let imported = sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", debian_rootfs().display()),
        "--output",
        &format!("oci:{}:bookworm", base.display()),
        "--json",
    ]);
    let base_digest = imported["digest"].as_str().unwrap();
    fs::create_dir_all(dir.path().join("app")).unwrap();
    fs::copy(hello_binary(), dir.path().join("app/hello")).unwrap();
    let config =
        fs::read_to_string(workspace_root().join("examples/hello/sealcraft.toml")).unwrap();
    let config = config
        .replace(
            "oci:../../out/base:bookworm@BASE_DIGEST",
            &format!("oci:base:bookworm@{base_digest}"),
        )
        .replace("../../target/release/hello", "app/hello");
    assert!(
        config.contains(base_digest),
        "examples/hello/sealcraft.toml no longer has the placeholders this test fills in"
    );
    fs::write(dir.path().join("sealcraft.toml"), config).unwrap();
    let summary = sealcraft_ok(&[
        "run",
        "--config",
        &dir.path().join("sealcraft.toml").display().to_string(),
        "--json",
    ]);
    let run_dir = PathBuf::from(summary["run_dirs"][0].as_str().unwrap());
    let tag = summary["runs"][0]["image"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();

    let bundle = dir.path().join("bundle");
    run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", run_dir.join("oci").display()),
            &bundle.display().to_string(),
        ],
    );
    let port = free_port();
    let config_path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(
        spec["process"]["user"]["uid"], 10001,
        "the image must run as its non-root user"
    );
    spec["process"]["terminal"] = false.into();
    spec["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(format!("PORT={port}").into());
    // Share the host's network namespace so the test can reach the server on loopback.
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|namespace| namespace["type"] != "network");
    fs::write(&config_path, serde_json::to_vec(&spec).unwrap()).unwrap();

    let id = format!("sealcraft-test-{}", std::process::id());
    // A detached container inherits runc's stdio, so give it files rather than pipes nobody drains.
    let log_path = dir.path().join("container.log");
    let log = fs::File::create(&log_path).unwrap();
    let status = Command::new("runc")
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let _container = Container(id);
    assert!(
        status.success(),
        "runc run failed: {}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );
    let response = http_get(port, Duration::from_secs(20));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("hello from sealcraft (uid 10001)"),
        "{response}"
    );
}
