use std::fs;

use crate::support::{make_base, sealcraft, skopeo_config, umoci_unpack};

fn write_project(dir: &std::path::Path, base_digest: &str) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("app/static")).unwrap();
    fs::write(dir.join("app/server"), b"#!/bin/sh\necho serving\n").unwrap();
    fs::write(dir.join("app/static/index.html"), b"<h1>hi</h1>").unwrap();
    let config = dir.join("sealcraft.toml");
    fs::write(
        &config,
        format!(
            r#"[project]
name = "demo"
version = "1.0.0"
registry = "registry.example.com/team"
architectures = ["amd64"]

[base]
image = "oci:base:base@{base_digest}"

[user]
name = "app"
uid = 10001

[[files]]
source = "app/server"
destination = "/usr/local/bin/server"
mode = "0755"

[[files]]
source = "app/static"
destination = "/srv/static"
owner = "app"

[config]
entrypoint = ["/usr/local/bin/server"]
cmd = ["--listen", ":8080"]
env = {{ PORT = "8080" }}
workdir = "/srv"
exposed_ports = ["8080/tcp"]
volumes = ["/data"]
stop_signal = "SIGTERM"
labels = {{ "org.opencontainers.image.source" = "https://example.com/demo" }}
"#
        ),
    )
    .unwrap();
    config
}

#[test]
fn assembly_is_reproducible_and_non_root() {
    let dir = tempfile::tempdir().unwrap();
    let base_digest = make_base(&dir.path().join("base"));
    let config = write_project(dir.path(), &base_digest);
    let config_arg = config.display().to_string();
    let assemble = |output: &str, epoch: &str| {
        let out = dir.path().join(output);
        let result = sealcraft(
            &[
                "assemble",
                "--config",
                &config_arg,
                "--output",
                &format!("oci:{}:img", out.display()),
                "--json",
            ],
            &[("SOURCE_DATE_EPOCH", epoch)],
        );
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
        value["digest"].as_str().unwrap().to_owned()
    };
    let first = assemble("one", "1700000000");
    let second = assemble("two", "1700000000");
    let other_epoch = assemble("three", "1700000001");
    assert_eq!(first, second, "same inputs must give the same digest");
    assert_ne!(
        first, other_epoch,
        "a different SOURCE_DATE_EPOCH must change the digest"
    );

    // Changing one input file changes the digest too.
    fs::write(
        dir.path().join("app/static/index.html"),
        b"<h1>changed</h1>",
    )
    .unwrap();
    assert_ne!(first, assemble("four", "1700000000"));

    let layout = dir.path().join("one");
    let config = skopeo_config(&layout, "img");
    assert_eq!(config["config"]["User"], "app");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/server"])
    );
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["--listen", ":8080"])
    );
    assert_eq!(config["config"]["WorkingDir"], "/srv");
    assert_eq!(config["config"]["StopSignal"], "SIGTERM");
    // Ports and volumes add to the base's; env and labels merge.
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "9090/udp": {}})
    );
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["PATH=/usr/bin:/bin", "MODE=test", "PORT=8080"])
    );
    assert_eq!(
        config["config"]["Volumes"],
        serde_json::json!({"/data": {}})
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");

    let rootfs = umoci_unpack(&layout, "img", &dir.path().join("bundle"));
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("app:x:10001:10001::/home/app:/usr/sbin/nologin"),
        "{passwd}"
    );
    assert!(
        fs::read_to_string(rootfs.join("etc/group"))
            .unwrap()
            .contains("app:x:10001:")
    );
    use std::os::unix::fs::MetadataExt;
    let server = fs::metadata(rootfs.join("usr/local/bin/server")).unwrap();
    assert_eq!(server.mode() & 0o7777, 0o755);
    assert_eq!(server.uid(), 0);
    let page = fs::metadata(rootfs.join("srv/static/index.html")).unwrap();
    assert_eq!((page.uid(), page.gid()), (10001, 10001));
    assert_eq!(fs::metadata(rootfs.join("home/app")).unwrap().uid(), 10001);
    assert_eq!(server.mtime(), 1_700_000_000);
    let bundle: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("bundle/config.json")).unwrap()).unwrap();
    assert_eq!(bundle["process"]["user"]["uid"], 10001);
}

#[test]
fn a_root_user_or_wrong_base_pin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base_digest = make_base(&dir.path().join("base"));
    let config = write_project(dir.path(), &base_digest);
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("[config]\n", "[config]\nuser = \"root\"\n"),
    )
    .unwrap();
    let output = sealcraft(
        &[
            "assemble",
            "--config",
            &config.display().to_string(),
            "--output",
            &format!("oci:{}:x", dir.path().join("o").display()),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("non-root"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    fs::write(&config, text.replace(&base_digest, wrong)).unwrap();
    let output = sealcraft(
        &[
            "assemble",
            "--config",
            &config.display().to_string(),
            "--output",
            &format!("oci:{}:x", dir.path().join("o").display()),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(wrong) && stderr.contains(&base_digest),
        "{stderr}"
    );
}
