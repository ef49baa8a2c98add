//! The acceptance path end to end: a Debian base made by mmdebstrap,
//! examples/hello assembled on it as a non-root image, squashed, unpacked
//! by umoci and run by runc, answering HTTP.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{debian_rootfs, sealcraft_ok, serve_under_runc, workspace_root};

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

    let response = serve_under_runc(
        &run_dir.join("oci"),
        &tag,
        &dir.path().join("bundle"),
        10001,
    );
    assert!(
        response.contains("hello from sealcraft (uid 10001)"),
        "{response}"
    );
}
