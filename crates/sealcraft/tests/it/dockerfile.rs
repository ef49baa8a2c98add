//! Dockerfile builds: the reference example under runc, against buildah,
//! reproducibility, layer conversion, secrets, native hardening, runtimes
//! and errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use sha2::Digest as _;

use crate::support::{
    debian_rootfs, read_tree, run_tool, sbom_names, sealcraft, sealcraft_ok, serve_under_runc,
    skopeo_config, workspace_root,
};

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The bookworm base as an OCI layout, imported once per test process: (layout, digest).
fn debian_base() -> &'static (PathBuf, String) {
    static BASE: OnceLock<(PathBuf, String)> = OnceLock::new();
    BASE.get_or_init(|| {
        let layout = scratch("dockerfile-base");
        let _ = fs::remove_dir_all(&layout);
        let imported = sealcraft_ok(&[
            "image",
            "import",
            &format!("rootfs:{}", debian_rootfs().display()),
            "--output",
            &format!("oci:{}:bookworm", layout.display()),
            "--json",
        ]);
        (layout, imported["digest"].as_str().unwrap().to_owned())
    })
}

/// `NAME=oci:BASE@DIGEST`, the pinned base standing in for `name`.
fn base_mapping(name: &str) -> String {
    let (layout, digest) = debian_base();
    format!("{name}=oci:{}:bookworm@{digest}", layout.display())
}

/// One build store for the tests that share work, emptied when the process starts.
fn shared_store() -> &'static PathBuf {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = scratch("build-store");
        let _ = fs::remove_dir_all(&store);
        store
    })
}

/// Runs `sealcraft build` of `context` into the image `output` with the
/// build store `store`, plus `extra` arguments and `env`.
fn run_build(
    context: &Path,
    output: &str,
    store: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "build",
        "--context",
        context.to_str().unwrap(),
        "--cache-dir",
        store.to_str().unwrap(),
        "--output",
        output,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    sealcraft(&args, env)
}

/// `sealcraft build` of `context` into `oci:OUTPUT:TAG`; the JSON result.
fn build(
    context: &Path,
    output: &Path,
    tag: &str,
    store: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let base = base_mapping("base");
    let mut args = vec!["--base", &base, "--json"];
    args.extend_from_slice(extra);
    let outcome = run_build(
        context,
        &format!("oci:{}:{tag}", output.display()),
        store,
        &args,
        &[],
    );
    assert!(
        outcome.status.success(),
        "sealcraft build {args:?} failed: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    serde_json::from_slice(&outcome.stdout).unwrap()
}

/// A context holding only `dockerfile`, built with the shared store into a
/// fresh layout (tag `v1`): the directory holding it, the layout, the result.
fn build_dockerfile(
    dockerfile: &str,
    extra: &[&str],
) -> (tempfile::TempDir, PathBuf, serde_json::Value) {
    let context = write_context(&[("Dockerfile", dockerfile)]);
    let output = tempfile::tempdir().unwrap();
    let layout = output.path().join("oci");
    let result = build(context.path(), &layout, "v1", shared_store(), extra);
    (output, layout, result)
}

/// The reference example built once, target `hardened`: its layout (tag `hardened`).
fn reference() -> &'static PathBuf {
    static REFERENCE: OnceLock<PathBuf> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let layout = scratch("reference-oci");
        let _ = fs::remove_dir_all(&layout);
        let base = base_mapping("debian:bookworm-slim");
        sealcraft_ok(&[
            "build",
            "--context",
            workspace_root()
                .join("examples/webserver")
                .to_str()
                .unwrap(),
            "--target",
            "hardened",
            "--base",
            &base,
            "--require-pinned",
            "--cache-dir",
            shared_store().to_str().unwrap(),
            "--output",
            &format!("oci:{}:hardened", layout.display()),
            "--quiet",
        ]);
        layout
    })
}

fn write_context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

/// The manifest of the only image in a layout.
fn manifest(layout: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    blob_json(layout, digest)
}

fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(blob_path(layout, digest)).unwrap()).unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn layer_digests(layout: &Path) -> Vec<String> {
    manifest(layout)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Every ELF in `rootfs` whose dependencies the image's own loader cannot all find.
fn unresolved_elf(rootfs: &Path) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut missing = Vec::new();
    for entry in walkdir(rootfs) {
        let Ok(metadata) = fs::symlink_metadata(&entry) else {
            continue;
        };
        if !metadata.is_file() || metadata.len() < 64 {
            continue;
        }
        let mut magic = [0u8; 4];
        if fs::File::open(&entry)
            .and_then(|mut file| file.read_exact(&mut magic))
            .is_err()
            || &magic != b"\x7fELF"
        {
            continue;
        }
        checked += 1;
        let inside = format!("/{}", entry.strip_prefix(rootfs).unwrap().display());
        let output = Command::new("chroot")
            .arg(rootfs)
            .args(["/lib64/ld-linux-x86-64.so.2", "--list", &inside])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        for line in text.lines().filter(|line| line.contains("not found")) {
            missing.push(format!("{inside}: {}", line.trim()));
        }
    }
    (checked, missing)
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

fn dpkg_packages(rootfs: &Path) -> BTreeSet<String> {
    fs::read_to_string(rootfs.join("var/lib/dpkg/status"))
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("Package: "))
        .map(str::to_owned)
        .collect()
}

fn package_manager_binaries(rootfs: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for directory in ["usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin"] {
        let Ok(entries) = fs::read_dir(rootfs.join(directory)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with("apt") || name.starts_with("dpkg") || name == "apk" {
                found.push(format!("{directory}/{name}"));
            }
        }
    }
    found
}

#[test]
fn the_reference_dockerfile_builds_and_runs_as_non_root() {
    let layout = reference();
    let dir = tempfile::tempdir().unwrap();
    let response = serve_under_runc(layout, "hardened", &dir.path().join("bundle"), 10001);
    assert!(
        response.contains("hello from sealcraft (uid 10001)"),
        "{response}"
    );
    // The hardened stage removed apt and dpkg, and dpkg's database says so.
    let rootfs = dir.path().join("bundle/rootfs");
    assert_eq!(package_manager_binaries(&rootfs), Vec::<String>::new());
    let packages = dpkg_packages(&rootfs);
    assert!(
        !packages.contains("apt") && !packages.contains("dpkg"),
        "{packages:?}"
    );
    assert!(packages.contains("libc6") && packages.contains("passwd"));
    let config = skopeo_config(layout, "hardened");
    assert_eq!(config["config"]["User"], "app");
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/server"])
    );
}

/// `sealcraft test` of the reference image `tag` with its spec and the
/// security suite: the JSON report and the exit code.
fn reference_tests(layout: &Path, tag: &str) -> (serde_json::Value, i32) {
    let spec = workspace_root().join("examples/webserver/tests.yaml");
    let output = sealcraft(
        &[
            "test",
            &format!("oci:{}:{tag}", layout.display()),
            "--config",
            spec.to_str().unwrap(),
            "--suite",
            "security",
            "--output",
            "json",
        ],
        &[],
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stderr)));
    if let Some(bundle) = report["Kept"]["Bundle"].as_str() {
        let _ = fs::remove_dir_all(Path::new(bundle).parent().unwrap().parent().unwrap());
    }
    (report, output.status.code().unwrap_or(-1))
}

#[test]
fn the_reference_spec_and_the_security_suite_pass_only_the_hardened_stage() {
    let layout = reference();
    let (report, code) = reference_tests(layout, "hardened");
    assert_eq!(code, 0, "{report}");
    assert!(report["Total"].as_u64().unwrap() >= 27, "{report}");
    // The runtime stage still has apt, dpkg and setuid programs.
    let base = base_mapping("debian:bookworm-slim");
    sealcraft_ok(&[
        "build",
        "--context",
        workspace_root()
            .join("examples/webserver")
            .to_str()
            .unwrap(),
        "--target",
        "runtime",
        "--base",
        &base,
        "--cache-dir",
        shared_store().to_str().unwrap(),
        "--output",
        &format!("oci:{}:runtime", layout.display()),
        "--quiet",
    ]);
    let (report, code) = reference_tests(layout, "runtime");
    assert_eq!(code, 1);
    let failed: Vec<(String, String)> = report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|result| result["Pass"] == false)
        .map(|result| {
            (
                result["Name"].as_str().unwrap().to_owned(),
                result["Errors"].to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = failed.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.contains(&"Security Test: no package managers"),
        "{names:?}"
    );
    assert!(
        names.contains(&"Security Test: no setuid or setgid files"),
        "{names:?}"
    );
    assert!(names.contains(&"File Existence Test: no dpkg"), "{names:?}");
    assert!(
        !names.contains(&"Security Test: runs as non-root"),
        "{names:?}"
    );
    let errors: String = failed.iter().map(|(_, errors)| errors.as_str()).collect();
    assert!(
        errors.contains("package manager /usr/bin/apt-get is in the image"),
        "{errors}"
    );
    assert!(errors.contains("/usr/bin/su is setuid"), "{errors}");
}

/// A symbolic link at a lowercase path, removed when dropped.
struct LowercaseLink(PathBuf);

impl LowercaseLink {
    fn to(target: &Path) -> Self {
        let link = std::env::temp_dir().join(format!("sealcraft-it-{}", std::process::id()));
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        Self(link)
    }
}

impl Drop for LowercaseLink {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn buildah_builds_the_same_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    // buildah derives an image name from an oci: path and wants it lowercase,
    // which neither a checkout's path nor a temporary directory's name promises.
    let base_layout = LowercaseLink::to(&debian_base().0);
    let base_layout = &base_layout.0;
    let storage = [
        "--root".to_owned(),
        dir.path().join("storage").display().to_string(),
        "--runroot".to_owned(),
        dir.path().join("run").display().to_string(),
        "--storage-driver".to_owned(),
        "vfs".to_owned(),
    ];
    let context = workspace_root().join("examples/webserver");
    let mut bud: Vec<String> = storage.to_vec();
    bud.extend(
        [
            "bud",
            "--isolation",
            "chroot",
            "--pull=never",
            "--target",
            "hardened",
            "--build-arg",
            &format!("BASE=oci:{}:bookworm", base_layout.display()),
            "-t",
            "localhost/webserver:reference",
            "-f",
            context.join("Dockerfile").to_str().unwrap(),
            context.to_str().unwrap(),
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = bud.iter().map(String::as_str).collect();
    run_tool("buildah", &args);
    let buildah_layout = dir.path().join("buildah-oci");
    let mut push: Vec<String> = storage.to_vec();
    push.extend([
        "push".to_owned(),
        "localhost/webserver:reference".to_owned(),
        format!("oci:{}:reference", buildah_layout.display()),
    ]);
    let args: Vec<&str> = push.iter().map(String::as_str).collect();
    run_tool("buildah", &args);

    let ours = crate::support::umoci_unpack(reference(), "hardened", &dir.path().join("ours"));
    let theirs =
        crate::support::umoci_unpack(&buildah_layout, "reference", &dir.path().join("theirs"));
    let (ours, _) = read_tree(&ours);
    let (theirs, _) = read_tree(&theirs);
    // What may differ, and why.
    let allowed: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "etc/hostname",
            "buildah leaves its mount-point placeholder behind; sealcraft does not",
        ),
        (
            "etc/hosts",
            "buildah leaves its mount-point placeholder behind; sealcraft does not",
        ),
        (
            "etc/resolv.conf",
            "buildah leaves its mount-point placeholder behind; sealcraft does not",
        ),
        (
            "var/cache/ldconfig/aux-cache",
            "ldconfig records inode numbers and times",
        ),
        (
            "etc/group-",
            "useradd's backup file comes out differently under buildah's chroot isolation",
        ),
    ]);
    let paths: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    let mut differences = Vec::new();
    for path in paths {
        if ours.get(path) != theirs.get(path) && !allowed.contains_key(path.as_str()) {
            differences.push(format!(
                "{path}: sealcraft {:?}, buildah {:?}",
                ours.get(path),
                theirs.get(path)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "the filesystems differ:\n{}",
        differences.join("\n")
    );
    assert!(
        ours.len() > 3000,
        "the comparison saw only {} paths",
        ours.len()
    );
    for placeholder in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        assert!(
            !ours.contains_key(placeholder),
            "{placeholder} is a mount point sealcraft must leave out"
        );
    }
    let (ours, theirs) = (
        skopeo_config(reference(), "hardened"),
        skopeo_config(&buildah_layout, "reference"),
    );
    for field in [
        "User",
        "Env",
        "Entrypoint",
        "ExposedPorts",
        "WorkingDir",
        "Cmd",
    ] {
        assert_eq!(
            ours["config"][field], theirs["config"][field],
            "config.{field}"
        );
    }
}

#[test]
fn rebuilds_give_the_same_digest_and_a_change_stays_in_its_layer() {
    let dockerfile = "FROM base\n\
        COPY first.txt /data/first.txt\n\
        COPY second.txt /data/second.txt\n\
        RUN mkdir -p /out && cat /data/first.txt > /out/combined && echo done >> /out/combined\n\
        USER 1000\n";
    let context = write_context(&[
        ("Dockerfile", dockerfile),
        ("first.txt", "one\n"),
        ("second.txt", "two\n"),
    ]);
    let stores = tempfile::tempdir().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let store = stores.path().join("store");
    let first = build(context.path(), &outputs.path().join("a"), "v1", &store, &[]);
    let again = build(
        context.path(),
        &outputs.path().join("b"),
        "v1",
        &store,
        &["--no-cache"],
    );
    let elsewhere = build(
        context.path(),
        &outputs.path().join("c"),
        "v1",
        &stores.path().join("other"),
        &[],
    );
    let digest = crate::support::digest_field;
    assert_eq!(
        digest(&first),
        digest(&again),
        "--no-cache must rebuild to the same digest"
    );
    assert_eq!(
        digest(&first),
        digest(&elsewhere),
        "a fresh store must build the same digest"
    );
    assert!(
        again["report"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["cached"] == false)
    );

    fs::write(context.path().join("second.txt"), "changed\n").unwrap();
    let changed = build(context.path(), &outputs.path().join("d"), "v1", &store, &[]);
    assert_ne!(digest(&first), digest(&changed));
    let before = layer_digests(&outputs.path().join("a"));
    let after = layer_digests(&outputs.path().join("d"));
    assert_eq!(before.len(), 4);
    assert_eq!(before[0], after[0], "the base layer");
    assert_eq!(
        before[1], after[1],
        "the first COPY does not depend on second.txt"
    );
    assert_ne!(before[2], after[2], "the second COPY carries the change");
    assert_eq!(
        before[3], after[3],
        "the RUN ran again and made the same layer"
    );
    let steps = changed["report"]["steps"].as_array().unwrap();
    let cached: Vec<bool> = steps
        .iter()
        .map(|step| step["cached"].as_bool().unwrap())
        .collect();
    assert_eq!(cached, [true, false, false]);
}

#[test]
fn run_steps_become_oci_changes() {
    let dockerfile = "FROM base\n\
        RUN rm /etc/motd \\\n\
         && rm -rf /var/log/apt && mkdir /var/log/apt && touch /var/log/apt/new.log \\\n\
         && chmod 600 /etc/issue \\\n\
         && mv /usr/share/doc/bash /usr/share/doc/bash-renamed \\\n\
         && echo linked > /linked-a && ln /linked-a /linked-b\n\
        USER 1000\n";
    let (output, layout, _) = build_dockerfile(dockerfile, &["--compression", "none"]);
    // GNU tar, an independent reader, lists the last layer.
    let last = layer_digests(&layout).pop().unwrap();
    let listing = run_tool(
        "tar",
        &["-tvf", blob_path(&layout, &last).to_str().unwrap()],
    );
    let names: Vec<String> = listing
        .lines()
        .map(|line| {
            line.split_whitespace()
                .skip(5)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for expected in [
        "etc/.wh.motd",
        "var/log/apt/.wh..wh..opq",
        "var/log/apt/new.log",
        "etc/issue",
        "usr/share/doc/.wh.bash",
        "usr/share/doc/bash-renamed/copyright",
        "linked-a",
        "linked-b link to linked-a",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from:\n{listing}"
        );
    }
    let whiteouts: Vec<&String> = names.iter().filter(|name| name.contains(".wh.")).collect();
    assert_eq!(whiteouts.len(), 3, "{whiteouts:?}");
    let issue = listing
        .lines()
        .find(|line| line.ends_with(" etc/issue"))
        .unwrap();
    assert!(
        issue.starts_with("-rw-------"),
        "a chmod-only change is the whole file with its new mode: {issue}"
    );
    for placeholder in [
        "etc/resolv.conf",
        "etc/hosts",
        "etc/hostname",
        "proc/",
        "dev/",
        "sys/",
    ] {
        assert!(
            !names.iter().any(|name| name == placeholder),
            "{placeholder} is a mount point, not content"
        );
    }
    // umoci applies the layer the way the runtime will see it.
    let rootfs = crate::support::umoci_unpack(&layout, "v1", &output.path().join("bundle"));
    assert!(!rootfs.join("etc/motd").exists());
    let apt_logs: Vec<_> = fs::read_dir(rootfs.join("var/log/apt"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(apt_logs, ["new.log"]);
    assert!(
        !rootfs.join("usr/share/doc/bash").exists()
            && rootfs.join("usr/share/doc/bash-renamed/copyright").exists()
    );
    let (tree, links) = read_tree(&rootfs);
    assert_eq!(tree["etc/issue"].mode, 0o600);
    assert!(
        links.contains(&vec!["linked-a".to_owned(), "linked-b".to_owned()]),
        "{links:?}"
    );
}

#[test]
fn secrets_and_build_arguments_reach_no_layer_history_or_process_argument() {
    let secret = "secret-canary-7f3a9c1e5b";
    let token = "token-canary-2d8e4b6a0c";
    let dockerfile = "FROM base\n\
        ARG TOKEN\n\
        RUN --mount=type=secret,id=api,required sh -c 'sha256sum < /run/secrets/api | cut -c1-64 > /secret.sha256 && printf %s \"$TOKEN\" | sha256sum | cut -c1-64 > /token.sha256'\n\
        USER 1000\n";
    let context = write_context(&[("Dockerfile", dockerfile)]);
    let secret_file = context.path().join("api.secret");
    fs::write(&secret_file, secret).unwrap();
    // The secret file is not part of the context's content: keep it out.
    fs::write(context.path().join(".dockerignore"), "api.secret\n").unwrap();
    let output = tempfile::tempdir().unwrap();
    let layout = output.path().join("oci");
    let store = output.path().join("store");
    // Sample every process's arguments while the build runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(arguments) = fs::read(entry.path().join("cmdline")) {
                        seen.push(String::from_utf8_lossy(&arguments).replace('\0', " "));
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            seen
        })
    };
    // The secret by file, the build argument's value from the environment: neither is in any argv.
    let secret_argument = format!("id=api,src={}", secret_file.display());
    let base = base_mapping("base");
    let outcome = run_build(
        context.path(),
        &format!("oci:{}:v1", layout.display()),
        &store,
        &[
            "--base",
            &base,
            "--json",
            "--secret",
            &secret_argument,
            "--build-arg",
            "TOKEN",
        ],
        &[("TOKEN", token)],
    );
    assert!(
        outcome.status.success(),
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&outcome.stdout).unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let commands = sampler.join().unwrap();
    assert!(
        commands.iter().any(|command| command.contains("runc")),
        "the sampler saw the build run"
    );
    // The step saw both.
    let rootfs = crate::support::umoci_unpack(&layout, "v1", &output.path().join("bundle"));
    let digest_of = |text: &str| hex::encode(sha2::Sha256::digest(text.as_bytes()));
    assert_eq!(
        fs::read_to_string(rootfs.join("secret.sha256"))
            .unwrap()
            .trim(),
        digest_of(secret)
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("token.sha256"))
            .unwrap()
            .trim(),
        digest_of(token)
    );
    // Only this test builds with secrets: none of their in-memory copies may outlive the step.
    // The builder keeps secrets in /dev/shm when there is one; this host has one.
    let left_in_memory: Vec<_> = fs::read_dir("/dev/shm")
        .expect("listing /dev/shm")
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name.to_string_lossy().starts_with("sealcraft-"))
        .collect();
    assert!(
        left_in_memory.is_empty(),
        "secret copies left in /dev/shm: {left_in_memory:?}"
    );
    assert!(
        !rootfs.join("run/secrets").exists(),
        "the secret's mount point is not image content"
    );
    // And nothing kept them: not a blob (decompressed), not the store, not the history, not an argument.
    let mut searched = 0;
    for root in [&layout, &store] {
        for path in walkdir(root) {
            if !fs::symlink_metadata(&path).unwrap().is_file() {
                continue;
            }
            let mut bytes = fs::read(&path).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(bytes.as_slice())
                    .read_to_end(&mut plain)
                    .unwrap();
                bytes = plain;
            }
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret) && !text.contains(token),
                "{} holds a canary",
                path.display()
            );
            searched += 1;
        }
    }
    assert!(searched > 10, "only {searched} files searched");
    let history = serde_json::to_string(&skopeo_config(&layout, "v1")["history"]).unwrap();
    assert!(history.contains("--mount=type=secret,id=api"), "{history}");
    assert!(!result.to_string().contains(token) && !result.to_string().contains(secret));
    for command in commands {
        assert!(
            !command.contains(secret) && !command.contains(token),
            "a process argument holds a canary: {command}"
        );
    }
}

#[test]
fn native_hardening_of_the_reference_runtime_keeps_what_runs_and_tells_the_truth() {
    // The build store is shared with the reference build, whose runtime stage this reuses.
    let _ = reference();
    let dir = tempfile::tempdir().unwrap();
    let (base_layout, digest) = debian_base();
    let example = workspace_root().join("examples/webserver");
    let config = fs::read_to_string(example.join("sealcraft.toml")).unwrap();
    let placeholder = "oci:../../out/base:bookworm@BASE_DIGEST";
    assert!(
        config.contains(placeholder),
        "examples/webserver/sealcraft.toml lost the placeholder this test fills in"
    );
    let config = config
        .replace(
            placeholder,
            &format!("oci:{}:bookworm@{digest}", base_layout.display()),
        )
        .replace(
            "dockerfile = \"Dockerfile\"",
            &format!(
                "dockerfile = \"{}\"\ncache_dir = \"{}\"",
                example.join("Dockerfile").display(),
                shared_store().display()
            ),
        )
        .replace(
            "dir = \"../../out\"",
            &format!("dir = \"{}\"", dir.path().join("out").display()),
        )
        .replace(
            "configs = [\"tests.yaml\"]",
            &format!("configs = [\"{}\"]", example.join("tests.yaml").display()),
        );
    // Signed and published to a layout, so the provenance of a Dockerfile build is written too.
    crate::support::generate_keys(dir.path(), "pipeline-password");
    let config = format!(
        "{config}\n[publish]\nkey = \"{}\"\ntarget = \"oci:{}\"\n",
        dir.path().join("cosign.key").display(),
        dir.path().join("published").display()
    );
    let config_path = dir.path().join("sealcraft.toml");
    fs::write(&config_path, config).unwrap();
    let outcome = sealcraft(
        &["run", "--config", config_path.to_str().unwrap(), "--json"],
        &[("COSIGN_PASSWORD", "pipeline-password")],
    );
    assert!(
        outcome.status.success(),
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&outcome.stdout).unwrap();
    let run_dir = PathBuf::from(summary["run_dirs"][0].as_str().unwrap());
    let tag = "1.0.0-amd64";
    // The provenance names the Dockerfile, its target and the base the build resolved, by digest.
    let attestation: serde_json::Value = serde_json::from_slice(
        &fs::read(run_dir.join("attestation-webserver-1.0.0-amd64.json")).unwrap(),
    )
    .unwrap();
    let definition = &attestation["predicate"]["buildDefinition"];
    let dockerfile_digest = hex::encode(sha2::Sha256::digest(
        fs::read(example.join("Dockerfile")).unwrap(),
    ));
    assert_eq!(
        definition["externalParameters"]["dockerfile"]["digest"]["sha256"],
        dockerfile_digest.as_str()
    );
    assert_eq!(definition["externalParameters"]["target"], "runtime");
    assert_eq!(
        definition["externalParameters"]["buildArgs"],
        serde_json::json!({})
    );
    let base = definition["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|dependency| dependency["name"] == "base-image:debian:bookworm-slim")
        .expect("the base image is a resolved dependency");
    assert_eq!(
        base["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    // Each stage's input is the output of the stage that fed it (squash's
    // input was once labelled "build" although hardening produced it).
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    let stage = |name: &str| {
        record["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|stage| stage["stage"] == name)
            .unwrap_or_else(|| panic!("no {name} stage in {record:#}"))
            .clone()
    };
    for (producer, consumer) in [("build", "harden"), ("harden", "squash")] {
        let produced = &stage(producer)["outputs"][0];
        let consumed = &stage(consumer)["inputs"][0];
        assert_eq!(
            (&consumed["name"], &consumed["digest"]),
            (&produced["name"], &produced["digest"]),
            "{consumer} must name {producer}'s output"
        );
    }
    assert_eq!(
        stage("squash")["inputs"][0]["name"],
        format!("oci:{tag}-harden")
    );
    // The reference spec and the security suite passed on the squashed image.
    assert_eq!(
        stage("test")["inputs"][0]["name"],
        format!("oci:{tag}-squash")
    );
    let tests: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("test-webserver-1.0.0-amd64.json")).unwrap())
            .unwrap();
    assert_eq!(tests["Fail"], 0, "{tests}");
    assert!(tests["Total"].as_u64().unwrap() >= 27, "{tests}");
    let events = fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let harden: serde_json::Value = events
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["stage"] == "harden" && event["event"] == "completed")
        .expect("a harden stage ran");
    let removed: BTreeSet<String> = harden["fields"]["packages_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    for expected in ["apt", "dpkg", "libapt-pkg6.0"] {
        assert!(
            removed.contains(expected),
            "{expected} not removed: {removed:?}"
        );
    }
    assert!(harden["fields"]["libraries_pruned"].as_u64().unwrap() > 0);

    let bundle = dir.path().join("bundle");
    let response = serve_under_runc(&run_dir.join("oci"), tag, &bundle, 10001);
    assert!(
        response.contains("hello from sealcraft (uid 10001)"),
        "{response}"
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(package_manager_binaries(&rootfs), Vec::<String>::new());
    let (checked, missing) = unresolved_elf(&rootfs);
    assert!(checked > 100, "only {checked} ELF objects checked");
    assert!(
        missing.is_empty(),
        "the loader cannot resolve:\n{}",
        missing.join("\n")
    );
    let packages = dpkg_packages(&rootfs);
    let listed_removed: Vec<&String> = packages.intersection(&removed).collect();
    assert!(
        listed_removed.is_empty(),
        "dpkg still lists removed packages: {listed_removed:?}"
    );
    assert!(!rootfs.join("usr/share/man").exists() && !rootfs.join("var/lib/apt").exists());
    // The SBOM of the hardened image lists exactly the packages that remain.
    let sbom_path = fs::read_dir(&run_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with("cyclonedx.json"))
        .unwrap();
    let in_sbom = sbom_names(&sbom_path, "pkg:deb/");
    assert_eq!(in_sbom, packages);
    let inspected: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &[
            "inspect",
            &format!("oci:{}:{tag}", run_dir.join("oci").display()),
        ],
    ))
    .unwrap();
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        1,
        "the image is squashed after hardening"
    );
}

#[test]
fn crun_and_network_isolation_work_for_run_steps() {
    let dockerfile = "FROM base\n\
        RUN id -u > /built-by && test -w /tmp\n\
        RUN --network=none sh -c 'ls /sys/class/net > /interfaces'\n\
        RUN sh -c 'ls /sys/class/net > /default-interfaces'\n\
        USER 1000\n";
    let (output, layout, _) = build_dockerfile(dockerfile, &["--runtime", "crun", "--no-cache"]);
    let rootfs = crate::support::umoci_unpack(&layout, "v1", &output.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("built-by")).unwrap().trim(),
        "0"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("interfaces"))
            .unwrap()
            .trim(),
        "lo"
    );
    // Without the flag a step has the host's network, as the builder's apt needs.
    let host: BTreeSet<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let seen: BTreeSet<String> = fs::read_to_string(rootfs.join("default-interfaces"))
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(seen, host);
}

#[test]
fn dockerfile_errors_name_the_line_and_leave_no_image() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "FROM base\nFROBNICATE all\n",
            &[],
            "Dockerfile:2: unknown instruction FROBNICATE",
        ),
        (
            "FROM base\nRUN echo before && exit 3\nUSER 1000\n",
            &[],
            "exit code 3",
        ),
        (
            "FROM base\nCOPY missing.txt /\n",
            &[],
            "missing.txt: not found in the build context",
        ),
        ("FROM base\nUSER root\n", &[], "non-root"),
        (
            "FROM base AS one\n",
            &["--target", "two"],
            "no stage named \"two\"",
        ),
        (
            "FROM base\nRUN --mount=type=secret,id=absent,required true\nUSER 1000\n",
            &[],
            "the secret \"absent\" is required",
        ),
    ];
    let (base_layout, _) = debian_base();
    for (dockerfile, extra, expected) in cases {
        let context = write_context(&[("Dockerfile", dockerfile)]);
        let output = context.path().join("never-made");
        let (code, stderr) = failing_build(context.path(), &output, &base_mapping("base"), extra);
        assert_eq!(code, Some(2), "{dockerfile:?}: {stderr}");
        assert!(stderr.contains(expected), "{dockerfile:?}: {stderr}");
        assert!(
            !output.exists(),
            "{dockerfile:?} left an output layout behind"
        );
    }
    // The RUN failure shows the step's own output.
    let context = write_context(&[(
        "Dockerfile",
        "FROM base\nRUN echo the-step-said-this && false\n",
    )]);
    let output = context.path().join("out");
    let (_, stderr) = failing_build(context.path(), &output, &base_mapping("base"), &[]);
    assert!(
        stderr.contains("Dockerfile:2") && stderr.contains("| the-step-said-this"),
        "{stderr}"
    );
    // Unpinned bases are refused when pins are required.
    let unpinned = format!("base=oci:{}:bookworm", base_layout.display());
    let (code, stderr) = failing_build(context.path(), &output, &unpinned, &["--require-pinned"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("Dockerfile:1") && stderr.contains("is not pinned"),
        "{stderr}"
    );
}

/// A build expected to fail: its exit code and stderr.
fn failing_build(
    context: &Path,
    output: &Path,
    base: &str,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut args = vec!["--base", base];
    args.extend_from_slice(extra);
    let result = run_build(
        context,
        &format!("oci:{}:v1", output.display()),
        shared_store(),
        &args,
        &[],
    );
    (
        result.status.code(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

#[test]
fn only_the_stages_the_target_needs_are_built() {
    let dockerfile = "FROM base AS broken\n\
        RUN echo this stage is not needed && false\n\
        FROM base AS needed\n\
        RUN echo ok > /ok\n\
        FROM needed AS final\n\
        USER 1000\n";
    let (_output, _, result) = build_dockerfile(dockerfile, &[]);
    assert_eq!(
        result["report"]["stages"],
        serde_json::json!(["needed", "final"])
    );
    assert_eq!(result["report"]["target"], "final");
}

#[test]
fn an_entrypoint_drops_an_inherited_cmd_but_not_one_of_its_own_stage() {
    let dockerfile = "FROM base AS parent\n\
        CMD [\"--inherited\"]\n\
        USER 1000\n\
        FROM parent AS replaced\n\
        ENTRYPOINT [\"/bin/app\"]\n\
        FROM parent AS kept\n\
        CMD [\"--own\"]\n\
        ENTRYPOINT [\"/bin/app\"]\n\
        EXPOSE 80 80/tcp 53/udp\n\
        EXPOSE 80\n";
    let context = write_context(&[("Dockerfile", dockerfile)]);
    let output = tempfile::tempdir().unwrap();
    let layout = output.path().join("oci");
    let config_of = |target: &str| {
        build(
            context.path(),
            &layout,
            target,
            shared_store(),
            &["--target", target],
        );
        let manifest = crate::support::skopeo_config(&layout, target);
        manifest["config"].clone()
    };
    let replaced = config_of("replaced");
    assert_eq!(replaced["Entrypoint"], serde_json::json!(["/bin/app"]));
    assert!(
        replaced.get("Cmd").is_none_or(serde_json::Value::is_null),
        "{replaced}"
    );
    let kept = config_of("kept");
    assert_eq!(kept["Cmd"], serde_json::json!(["--own"]));
    // Ports accumulate once each, `80` and `80/tcp` being the same port.
    assert_eq!(
        kept["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "80/tcp": {}})
    );
}

#[test]
fn every_instruction_reaches_the_config_and_the_filesystem() {
    let dockerfile = r#"# escape=\
ARG VERSION=1.2.3
FROM base AS tools
RUN mkdir -p /opt/tools && echo tool > /opt/tools/t.txt

FROM base
ARG VERSION
ARG NAME
ENV APP_HOME=/srv/app \
    APP_NAME=${NAME:-fallback} \
    GREETING="hello world"
LABEL org.opencontainers.image.version=$VERSION maintainer="team@example.com"
WORKDIR $APP_HOME
WORKDIR data
COPY --chown=nobody:nogroup --chmod=0750 app.sh ./bin/
ADD bundle.tar.gz /srv/app/extracted/
ADD notes.txt /srv/app/notes.txt
COPY --from=tools /opt/tools/t.txt /srv/app/t.txt
COPY --from=image /etc/debian_version /srv/app/debian_version
COPY . /srv/context/
SHELL ["/bin/bash", "-c"]
RUN [[ -n "$BASH_VERSION" ]] && echo "$APP_NAME $GREETING" > /srv/app/shell.txt
EXPOSE 8080 53/udp
VOLUME ["/srv/app/cache"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=2 CMD ["/srv/app/data/bin/app.sh", "--check"]
USER nobody
ENTRYPOINT ["/srv/app/data/bin/app.sh"]
CMD ["--serve"]
"#;
    let context = write_context(&[
        ("Dockerfile", dockerfile),
        ("app.sh", "#!/bin/sh\necho app\n"),
        ("notes.txt", "plain notes\n"),
        ("debug.log", "left out\n"),
        (".dockerignore", "*.log\n"),
        ("bundle/dir/inside.txt", "inside\n"),
    ]);
    run_tool(
        "tar",
        &[
            "-C",
            context.path().join("bundle").to_str().unwrap(),
            "-czf",
            context.path().join("bundle.tar.gz").to_str().unwrap(),
            ".",
        ],
    );
    fs::remove_dir_all(context.path().join("bundle")).unwrap();
    let output = tempfile::tempdir().unwrap();
    let layout = output.path().join("oci");
    let image = base_mapping("image");
    build(
        context.path(),
        &layout,
        "v1",
        shared_store(),
        &["--base", &image, "--build-arg", "VERSION=2.0.0"],
    );
    // The raw blob: skopeo's parsed view drops Docker's own fields (Shell, Healthcheck).
    let raw = run_tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let config = serde_json::from_str::<serde_json::Value>(&raw).unwrap()["config"].clone();
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap())
        .collect();
    for expected in [
        "APP_HOME=/srv/app",
        "APP_NAME=fallback",
        "GREETING=hello world",
    ] {
        assert!(env.contains(&expected), "{expected} not in {env:?}");
    }
    assert_eq!(
        config["Labels"]["org.opencontainers.image.version"],
        "2.0.0"
    );
    assert_eq!(config["Labels"]["maintainer"], "team@example.com");
    assert_eq!(config["WorkingDir"], "/srv/app/data");
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(config["Volumes"], serde_json::json!({"/srv/app/cache": {}}));
    assert_eq!(config["StopSignal"], "SIGINT");
    assert_eq!(config["User"], "nobody");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/srv/app/data/bin/app.sh"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["--serve"]));
    assert_eq!(config["Shell"], serde_json::json!(["/bin/bash", "-c"]));
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/srv/app/data/bin/app.sh", "--check"])
    );
    assert_eq!(config["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(config["Healthcheck"]["Retries"], 2);

    let rootfs = crate::support::umoci_unpack(&layout, "v1", &output.path().join("bundle"));
    let (tree, _) = read_tree(&rootfs);
    let script = &tree["srv/app/data/bin/app.sh"];
    assert_eq!((script.uid, script.gid, script.mode), (65534, 65534, 0o750));
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/app/extracted/dir/inside.txt")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/app/notes.txt")).unwrap(),
        "plain notes\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/app/t.txt")).unwrap(),
        "tool\n"
    );
    assert!(
        fs::read_to_string(rootfs.join("srv/app/debian_version"))
            .unwrap()
            .starts_with("12.")
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/app/shell.txt")).unwrap(),
        "fallback hello world\n"
    );
    assert!(
        rootfs.join("srv/context/app.sh").exists()
            && rootfs.join("srv/context/Dockerfile").exists()
    );
    assert!(
        !rootfs.join("srv/context/debug.log").exists(),
        ".dockerignore keeps debug.log out"
    );
    assert_eq!(
        tree["srv/context/app.sh"].uid, 0,
        "COPY without --chown gives 0:0"
    );
}

#[test]
fn bases_come_from_a_registry_by_digest() {
    use crate::registry::{PASSWORD, TestRegistry, USER};
    let registry = TestRegistry::tls_with_auth();
    // skopeo, not sealcraft, puts the base there.
    let certs = registry.dir.path().join("certs.d");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&registry.ca, certs.join("ca.crt")).unwrap();
    let (base_layout, _) = debian_base();
    let remote = format!("{}/library/debian:bookworm", registry.address);
    let creds = format!("{USER}:{PASSWORD}");
    run_tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            "--dest-creds",
            &creds,
            &format!("oci:{}:bookworm", base_layout.display()),
            &format!("docker://{remote}"),
        ],
    );
    let inspected: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &[
            "inspect",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--creds",
            &creds,
            &format!("docker://{remote}"),
        ],
    ))
    .unwrap();
    let digest = inspected["Digest"].as_str().unwrap().to_owned();
    let pinned = write_context(&[(
        "Dockerfile",
        &format!("FROM {remote}@{digest}\nRUN echo pulled > /pulled\nUSER 1000\n"),
    )]);
    let output = tempfile::tempdir().unwrap();
    let built = registry_build(
        &registry,
        PASSWORD,
        pinned.path(),
        &output.path().join("pinned"),
        &["--require-pinned"],
    );
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    assert_eq!(report["report"]["bases"][0]["digest"], digest.as_str());
    let rootfs = crate::support::umoci_unpack(
        &output.path().join("pinned"),
        "v1",
        &output.path().join("bundle"),
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("pulled")).unwrap(),
        "pulled\n"
    );
    // A tag alone: refused under the pin policy, otherwise resolved once and recorded by digest.
    let tagged = write_context(&[("Dockerfile", &format!("FROM {remote}\nUSER 1000\n"))]);
    let refused = registry_build(
        &registry,
        PASSWORD,
        tagged.path(),
        &output.path().join("refused"),
        &["--require-pinned"],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not pinned"));
    let resolved = registry_build(
        &registry,
        PASSWORD,
        tagged.path(),
        &output.path().join("tagged"),
        &[],
    );
    assert!(
        resolved.status.success(),
        "{}",
        String::from_utf8_lossy(&resolved.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&resolved.stdout).unwrap();
    assert_eq!(report["report"]["bases"][0]["digest"], digest.as_str());
    assert_eq!(report["report"]["bases"][0]["requested"], remote.as_str());
    // A wrong password is a clear error that names the registry, not the password.
    let wrong = registry_build(
        &registry,
        "not-the-password",
        tagged.path(),
        &output.path().join("wrong"),
        &[],
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("authentication failed") && stderr.contains(&registry.address),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"));
}

/// `sealcraft build` with access to the test registry, using `password`.
fn registry_build(
    registry: &crate::registry::TestRegistry,
    password: &str,
    context: &Path,
    output: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--ca-bundle",
        registry.ca.to_str().unwrap(),
        "--registry-username",
        crate::registry::USER,
        "--registry-password-from",
        "env:BASE_REGISTRY_PASSWORD",
        "--json",
    ];
    args.extend_from_slice(extra);
    run_build(
        context,
        &format!("oci:{}:v1", output.display()),
        shared_store(),
        &args,
        &[("BASE_REGISTRY_PASSWORD", password)],
    )
}

/// Sets the modification time of everything under `root` (not following
/// links) to `age` ago, as if no build had used it since.
fn age_tree(root: &Path, age: Duration) {
    let then = std::time::SystemTime::now() - age;
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = fs::symlink_metadata(&path).unwrap();
        if metadata.is_dir() {
            pending.extend(
                fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
        }
        if metadata.is_dir() || metadata.is_file() {
            fs::File::open(&path).unwrap().set_modified(then).unwrap();
        }
    }
}

fn prune_store(store: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "cache",
        "prune",
        "--cache-dir",
        store.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    sealcraft(&args, &[])
}

fn pruned(store: &Path, extra: &[&str]) -> serde_json::Value {
    let output = prune_store(store, extra);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn all_cached(result: &serde_json::Value) -> Vec<bool> {
    result["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["cached"].as_bool().unwrap())
        .collect()
}

#[test]
fn prune_removes_what_no_build_used_and_builds_go_on() {
    let first = write_context(&[(
        "Dockerfile",
        "FROM base\n\
         RUN --mount=type=cache,target=/var/cache/first sh -c 'echo first > /first'\n\
         USER 1000\n",
    )]);
    let second = write_context(&[(
        "Dockerfile",
        "FROM base\nRUN echo second > /second\nUSER 1000\n",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let outputs = dir.path().join("out");
    let build_into =
        |context: &Path, name: &str| build(context, &outputs.join(name), "v1", &store, &[]);
    let digest = crate::support::digest_field;
    let first_digest = digest(&build_into(first.path(), "a"));
    let second_digest = digest(&build_into(second.path(), "b"));

    // Everything was just used: nothing goes.
    let report = pruned(&store, &["--unused-for", "1h"]);
    for field in [
        "steps",
        "base_images",
        "layer_directories",
        "blobs",
        "cache_mounts",
    ] {
        assert_eq!(report[field], 0, "{field}: {report}");
    }

    // Two days later only the first Dockerfile is built again (from cache).
    age_tree(&store, Duration::from_secs(2 * 86_400));
    let again = build_into(first.path(), "a2");
    assert_eq!(all_cached(&again), [true]);
    let report = pruned(&store, &["--unused-for", "1d"]);
    assert_eq!(report["steps"], 1, "the second RUN step: {report}");
    assert_eq!(report["layer_directories"], 1, "{report}");
    assert_eq!(
        report["blobs"], 2,
        "its layer and the layer's gzip copy: {report}"
    );
    assert_eq!(report["cache_mounts"], 1, "the mount no RUN used: {report}");
    assert_eq!(report["base_images"], 0, "the base was used: {report}");
    assert!(report["bytes"].as_u64().unwrap() > 0);

    // The first still comes from the cache; the second is rebuilt, identically.
    let again = build_into(first.path(), "a3");
    assert_eq!(all_cached(&again), [true]);
    assert_eq!(digest(&again), first_digest);
    let rebuilt = build_into(second.path(), "b2");
    assert_eq!(all_cached(&rebuilt), [false]);
    assert_eq!(digest(&rebuilt), second_digest);

    // --all empties the store, which then works as a new one.
    let report = pruned(&store, &["--all"]);
    assert_eq!(report["steps"], 2, "{report}");
    assert_eq!(report["base_images"], 1, "{report}");
    let fresh = build_into(first.path(), "a4");
    assert_eq!(all_cached(&fresh), [false]);
    assert_eq!(digest(&fresh), first_digest);

    // Never under a running build: the store lock is held shared while one runs.
    let mut holder = Command::new("flock")
        .arg("--shared")
        .arg(store.join("store.lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let busy = prune_store(&store, &["--all"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(busy.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("in use by a running build"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    assert_eq!(all_cached(&build_into(first.path(), "a5")), [true]);

    // A directory that is not a store is left alone.
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("keep.txt"), "mine\n").unwrap();
    let refused = prune_store(&elsewhere, &["--all"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a build store"));
    assert!(elsewhere.join("keep.txt").exists());

    // Ages that would remove everything by accident, or mean nothing, are refused.
    for bad in ["0", "soon"] {
        let output = prune_store(&store, &["--unused-for", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
    }
    assert_eq!(all_cached(&build_into(first.path(), "a6")), [true]);
}

/// The common pattern `ARG BASE=host/repo@digest` then `FROM ${BASE}`: the
/// registry to reach is the one the global ARG names, so `--allow-http`
/// for it is enough (it used to fail: registries were guessed from the raw
/// FROM text, and one holding `$` was skipped).
#[test]
fn a_base_named_through_a_global_arg_is_pulled_from_its_registry() {
    let registry = crate::registry::TestRegistry::plain();
    let (base_layout, _) = debian_base();
    let remote = format!("{}/team/base:bookworm", registry.address);
    run_tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{}:bookworm", base_layout.display()),
            &format!("docker://{remote}"),
        ],
    );
    let inspected: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ],
    ))
    .unwrap();
    let digest = inspected["Digest"].as_str().unwrap().to_owned();
    let pinned = format!("{}/team/base@{digest}", registry.address);
    let context = write_context(&[(
        "Dockerfile",
        &format!("ARG BASE={pinned}\nFROM ${{BASE}}\nUSER 1000\n"),
    )]);
    let output = tempfile::tempdir().unwrap();
    let built = run_build(
        context.path(),
        &format!("oci:{}:v1", output.path().join("image").display()),
        shared_store(),
        &[
            "--allow-http",
            &registry.address,
            "--require-pinned",
            "--json",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    assert_eq!(report["report"]["bases"][0]["digest"], digest.as_str());
    assert_eq!(report["report"]["bases"][0]["requested"], pinned.as_str());
    assert!(
        registry
            .requests()
            .iter()
            .any(|request| request.contains(&format!("/v2/team/base/manifests/{digest}"))),
        "the base was pulled from the registry the ARG names: {:?}",
        registry.requests()
    );
}
