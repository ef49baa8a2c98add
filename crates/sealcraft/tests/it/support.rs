//! Shared helpers: running the binary, making test images, and reading
//! unpacked trees through independent tools (umoci, skopeo).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sealcraft_oci::image::{LayerOptions, commit_image, rfc3339, write_layer};
use sealcraft_oci::layer::{EntryKind, EntryMeta};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{Descriptor, HistoryEntry, ImageConfig, RuntimeConfig};
use sha2::Digest as _;

pub(crate) const EPOCH: &str = "1700000000";

/// One error case: arguments, environment, and text the error must contain.
pub(crate) type ErrorCase<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);

/// Runs sealcraft with `args`; SOURCE_DATE_EPOCH is fixed unless `env` overrides it.
pub(crate) fn sealcraft(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealcraft"));
    command.args(args).env("SOURCE_DATE_EPOCH", EPOCH);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("sealcraft runs")
}

/// Writes cosign.key (encrypted with `password`) and cosign.pub into `dir`.
/// Runs git in `dir` with a fixed identity; its trimmed standard output.
pub(crate) fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub(crate) fn generate_keys(dir: &Path, password: &str) {
    let output = sealcraft(
        &[
            "key",
            "generate",
            "--output-dir",
            &dir.display().to_string(),
        ],
        &[("COSIGN_PASSWORD", password)],
    );
    assert!(
        output.status.success(),
        "key generate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs sealcraft and fails the test unless it exits 0; returns stdout as JSON when `--json` was passed.
pub(crate) fn sealcraft_ok(args: &[&str]) -> serde_json::Value {
    let output = sealcraft(args, &[]);
    assert!(
        output.status.success(),
        "sealcraft {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if args.contains(&"--json") {
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "sealcraft {args:?} printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    } else {
        serde_json::Value::Null
    }
}

/// A string field of a command's JSON output; a missing one fails the test
/// (comparing two missing fields would compare `null` with `null`).
pub(crate) fn field(value: &serde_json::Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value:#}"))
        .to_owned()
}

/// The `digest` field of a command's JSON output, checked to be one.
pub(crate) fn digest_field(value: &serde_json::Value) -> String {
    let digest = field(value, "digest");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest:?} is not a sha256 digest"
    );
    digest
}

pub(crate) fn run_tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("{program} is needed by this test (scripts/test installs it): {error}")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) enum Item {
    Dir(&'static str, u32, u64),
    File(&'static str, u32, u64, &'static [u8]),
    Symlink(&'static str, &'static str),
    HardLink(&'static str, &'static str),
    Whiteout(&'static str),
    Opaque(&'static str),
}

fn meta_of(item: &Item) -> (EntryMeta, &'static [u8]) {
    let owned = |path: &str, kind, mode, owner: u64| EntryMeta {
        uid: owner,
        gid: owner,
        mtime: 1_600_000_000,
        ..EntryMeta::new(path, kind, mode)
    };
    match item {
        Item::Dir(path, mode, owner) => (owned(path, EntryKind::Directory, *mode, *owner), b""),
        Item::File(path, mode, owner, content) => (
            EntryMeta {
                size: content.len() as u64,
                ..owned(path, EntryKind::File, *mode, *owner)
            },
            content,
        ),
        Item::Symlink(path, target) => (
            owned(path, EntryKind::Symlink(PathBuf::from(target)), 0o777, 0),
            b"",
        ),
        Item::HardLink(path, target) => (
            owned(path, EntryKind::HardLink(PathBuf::from(target)), 0o644, 0),
            b"",
        ),
        Item::Whiteout(path) => (EntryMeta::new(*path, EntryKind::Whiteout, 0), b""),
        Item::Opaque(path) => (EntryMeta::new(*path, EntryKind::OpaqueWhiteout, 0), b""),
    }
}

/// Writes an image of the given layers (items in tar order) with a config
/// that sets every runtime field, and tags it.
pub(crate) fn make_image(layout_dir: &Path, tag: &str, layers: &[Vec<Item>]) -> Descriptor {
    let layout = Layout::open_or_create(layout_dir).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (index, items) in layers.iter().enumerate() {
        let written = write_layer(&layout, &LayerOptions::default(), |writer| {
            for item in items {
                let (meta, content) = meta_of(item);
                writer.append(&meta, &mut &content[..])?;
            }
            Ok(items.len() as u64)
        })
        .unwrap();
        descriptors.push(written.descriptor);
        diff_ids.push(written.diff_id);
        history.push(HistoryEntry {
            created: Some(rfc3339(1_600_000_000)),
            created_by: Some(format!("layer {index}")),
            ..HistoryEntry::default()
        });
        history.push(HistoryEntry {
            created_by: Some(format!("config step {index}")),
            empty_layer: true,
            ..HistoryEntry::default()
        });
    }
    let mut config = ImageConfig::new("amd64", "linux");
    config.set_created(&rfc3339(1_600_000_000));
    config.set_runtime_config(&RuntimeConfig {
        user: Some("1000:1000".into()),
        exposed_ports: Some(vec!["8080/tcp".into(), "9090/udp".into()]),
        env: Some(vec!["PATH=/usr/bin:/bin".into(), "MODE=test".into()]),
        entrypoint: Some(vec!["/bin/app".into(), "--serve".into()]),
        cmd: Some(vec!["--port".into(), "8080".into()]),
        volumes: Some(vec!["/data".into()]),
        working_dir: Some("/srv".into()),
        labels: Some(BTreeMap::from([(
            "org.opencontainers.image.title".into(),
            "fixture".into(),
        )])),
        stop_signal: Some("SIGINT".into()),
    });
    config.set_diff_ids(&diff_ids);
    config.set_history(&history);
    let descriptor = commit_image(&layout, &config, descriptors, BTreeMap::new()).unwrap();
    layout.tag(tag, &descriptor).unwrap();
    descriptor
}

/// A small base image: passwd, group and a few directories.
pub(crate) fn make_base(layout_dir: &Path) -> String {
    let descriptor = make_image(
        layout_dir,
        "base",
        &[vec![
            Item::Dir("etc", 0o755, 0),
            Item::File("etc/passwd", 0o644, 0, b"root:x:0:0:root:/root:/bin/sh\n"),
            Item::File("etc/group", 0o644, 0, b"root:x:0:\n"),
            Item::Dir("usr", 0o755, 0),
            Item::Dir("usr/bin", 0o755, 0),
            Item::File("usr/bin/tool", 0o755, 0, b"#!/bin/sh\necho tool\n"),
        ]],
    );
    descriptor.digest.to_string()
}

/// One path of an unpacked tree, as the filesystem reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeNode {
    pub(crate) kind: &'static str,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) content: String,
}

/// Every path under `root` with type, mode, owner and content (sha256 or link target),
/// plus the groups of paths that share an inode (hard links).
pub(crate) fn read_tree(root: &Path) -> (BTreeMap<String, TreeNode>, Vec<Vec<String>>) {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let file_type = metadata.file_type();
            let (kind, content) = if file_type.is_symlink() {
                (
                    "symlink",
                    fs::read_link(&path).unwrap().to_string_lossy().into_owned(),
                )
            } else if file_type.is_dir() {
                stack.push(path.clone());
                ("dir", String::new())
            } else if file_type.is_file() {
                if metadata.nlink() > 1 {
                    inodes
                        .entry(metadata.ino())
                        .or_default()
                        .push(relative.clone());
                }
                (
                    "file",
                    hex::encode(sha2::Sha256::digest(fs::read(&path).unwrap())),
                )
            } else {
                ("special", String::new())
            };
            nodes.insert(
                relative,
                TreeNode {
                    kind,
                    mode: metadata.mode() & 0o7777,
                    uid: metadata.uid(),
                    gid: metadata.gid(),
                    content,
                },
            );
        }
    }
    let mut groups: Vec<Vec<String>> = inodes
        .into_values()
        .map(|mut group| {
            group.sort();
            group
        })
        .collect();
    groups.sort();
    (nodes, groups)
}

/// `umoci unpack` of `oci:DIR:TAG` into `bundle`; returns the rootfs path.
pub(crate) fn umoci_unpack(layout_dir: &Path, tag: &str, bundle: &Path) -> PathBuf {
    let image = format!("{}:{tag}", layout_dir.display());
    run_tool(
        "umoci",
        &["unpack", "--image", &image, &bundle.display().to_string()],
    );
    bundle.join("rootfs")
}

/// `skopeo inspect --config` of `oci:DIR:TAG`.
pub(crate) fn skopeo_config(layout_dir: &Path, tag: &str) -> serde_json::Value {
    let text = run_tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci:{}:{tag}", layout_dir.display()),
        ],
    );
    serde_json::from_str(&text).unwrap()
}

/// The reference cosign: `SEALCRAFT_COSIGN` (scripts/test installs it) or `cosign` on PATH.
pub(crate) fn cosign(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let program = std::env::var("SEALCRAFT_COSIGN").unwrap_or_else(|_| "cosign".to_owned());
    let mut command = Command::new(&program);
    // cosign keeps a TUF cache in $HOME; keep it in the test's directory.
    command
        .args(args)
        .env("HOME", home)
        .env_remove("COSIGN_PASSWORD");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap_or_else(|error| {
        panic!("{program} is needed by this test (scripts/test installs it): {error}")
    })
}

/// The bookworm rootfs tarball: `SEALCRAFT_TEST_ROOTFS` when set (scripts/test
/// builds and caches it), otherwise built here with mmdebstrap.
pub(crate) fn debian_rootfs() -> PathBuf {
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

/// A runc container, killed and deleted when dropped.
pub(crate) struct Container(pub(crate) String);

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

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn http_get(port: u16, deadline: Duration) -> String {
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

/// Unpacks `oci:LAYOUT:TAG` with umoci into `bundle`, checks the image runs
/// as `uid`, starts it detached under runc on the host network with `PORT`
/// set, and returns the HTTP response it gives.
pub(crate) fn serve_under_runc(layout: &Path, tag: &str, bundle: &Path, uid: u32) -> String {
    run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", layout.display()),
            &bundle.display().to_string(),
        ],
    );
    let port = free_port();
    let config_path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(
        spec["process"]["user"]["uid"], uid,
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
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "sealcraft-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // A detached container inherits runc's stdio, so give it files rather than pipes nobody drains.
    let log_path = bundle.with_extension("log");
    let log = fs::File::create(&log_path).unwrap();
    let status = Command::new("runc")
        .args(["run", "--detach", "--bundle"])
        .arg(bundle)
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
    response
}

/// The workspace's root directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The names of the components of a CycloneDX file whose purl starts with `prefix`.
pub(crate) fn sbom_names(path: &Path, prefix: &str) -> std::collections::BTreeSet<String> {
    let sbom: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|component| component["purl"].as_str().unwrap_or("").starts_with(prefix))
        .map(|component| component["name"].as_str().unwrap().to_owned())
        .collect()
}
