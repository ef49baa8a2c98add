//! `sealcraft test`: verdicts against container-structure-test's tar driver
//! on the same spec files, command and service tests on busybox images
//! whose behaviour is known, the security suite, reports (JUnit validated
//! against its schema), the kept failure, and the run's test stage.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{debian_rootfs, run_tool, sealcraft, sealcraft_ok};

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/imagetest")
        .join(name)
}

/// A busybox root filesystem: the static busybox with its applets, an app
/// user, a document root and a data directory owned by the user.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let _ = fs::remove_dir_all(&root);
    for sub in ["bin", "etc", "tmp", "www", "data", "usr/local/bin"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("busybox is needed by this test (scripts/test installs busybox-static)");
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "ls", "cat", "echo", "id", "sleep", "httpd", "wget", "env", "touch", "chmod",
        "mkdir", "true",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    fs::write(root.join("www/index.html"), "hello\n").unwrap();
    fs::write(root.join("usr/local/bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    run_tool(
        "chmod",
        &["0744", root.join("usr/local/bin/tool").to_str().unwrap()],
    );
    run_tool("chmod", &["1777", root.join("tmp").to_str().unwrap()]);
    run_tool("chown", &["1000:1000", root.join("data").to_str().unwrap()]);
    let tarball = dir.join("busybox.tar");
    run_tool(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    tarball
}

const GOOD: &str = r#"FROM base
USER app
ENV PORT=8080 MODE=test
EXPOSE 8080/tcp
VOLUME /data
WORKDIR /www
LABEL org.opencontainers.image.title=busy
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:8080/index.html
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["trap 'exit 0' TERM; httpd -f -p $PORT -h /www & wait"]
"#;

const BROKEN: &str = r#"FROM base
RUN chmod 4755 /bin/busybox && chmod 0666 /www/index.html \
 && mkdir -p /usr/share/doc/bad && echo "GNU AFFERO GENERAL PUBLIC LICENSE (AGPL)" > /usr/share/doc/bad/copyright \
 && echo "a secret" >> /www/index.html && mkdir -m 0777 /cache
ENV PORT=9090 MODE=prod SECRET_TOKEN=ghp_8fK2mQ9xLz4Rt7Vb1Nc6Yd3Hs5Jw0Pa
EXPOSE 9090
VOLUME /cache
ENTRYPOINT ["httpd", "-f", "-p", "9090"]
"#;

/// The test images in one layout: `good` and `broken` (busybox) and
/// `hardened` (bookworm through `sealcraft harden`).
fn images() -> &'static PathBuf {
    static IMAGES: OnceLock<PathBuf> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = scratch("imagetest");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let layout = dir.join("oci");
        let tarball = busybox_rootfs(&dir);
        sealcraft_ok(&[
            "image",
            "import",
            &format!("rootfs:{}", tarball.display()),
            "--output",
            &format!("oci:{}:base", layout.display()),
            "--json",
        ]);
        for (tag, dockerfile) in [("good", GOOD), ("broken", BROKEN)] {
            let context = dir.join(format!("context-{tag}"));
            fs::create_dir_all(&context).unwrap();
            fs::write(context.join("Dockerfile"), dockerfile).unwrap();
            let base = format!("base=oci:{}:base", layout.display());
            let store = dir.join("store");
            let output = format!("oci:{}:{tag}", layout.display());
            let mut args = vec![
                "build",
                "--context",
                context.to_str().unwrap(),
                "--base",
                &base,
                "--cache-dir",
                store.to_str().unwrap(),
                "--output",
                &output,
                "--quiet",
            ];
            if tag == "broken" {
                args.push("--allow-root");
            }
            sealcraft_ok(&args);
        }
        sealcraft_ok(&[
            "image",
            "import",
            &format!("rootfs:{}", debian_rootfs().display()),
            "--output",
            &format!("oci:{}:debian", layout.display()),
            "--json",
        ]);
        sealcraft_ok(&[
            "harden",
            &format!("oci:{}:debian", layout.display()),
            "--output",
            &format!("oci:{}:hardened", layout.display()),
            "--json",
        ]);
        layout
    })
}

fn image(tag: &str) -> String {
    format!("oci:{}:{tag}", images().display())
}

/// `sealcraft test` with `args`: the JSON report and the exit code.
fn test_json(args: &[&str]) -> (serde_json::Value, i32) {
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    let output = sealcraft(&all, &[]);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "sealcraft {all:?} exited {code}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (report, code)
}

/// Name → (pass, errors) of a report.
fn verdicts(report: &serde_json::Value) -> BTreeMap<String, (bool, Vec<String>)> {
    report["Results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|result| {
                    (
                        result["Name"].as_str().unwrap().to_owned(),
                        (
                            result["Pass"].as_bool().unwrap(),
                            result["Errors"]
                                .as_array()
                                .map(|errors| {
                                    errors
                                        .iter()
                                        .map(|error| error.as_str().unwrap().to_owned())
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cst() -> String {
    std::env::var("SEALCRAFT_CST").unwrap_or_else(|_| "container-structure-test".to_owned())
}

#[test]
fn static_verdicts_equal_container_structure_tests_tar_driver() {
    let specs = [
        "files.yaml",
        "contents.yaml",
        "metadata-env.yaml",
        "metadata-ports.yaml",
        "metadata-process.yaml",
        "metadata-empty.yaml",
        "licenses.yaml",
    ];
    let mut compared = 0;
    let mut outcomes = BTreeMap::new();
    for tag in ["good", "broken", "hardened"] {
        let archive = scratch(&format!("imagetest-{tag}.tar"));
        let _ = fs::remove_file(&archive);
        run_tool(
            "skopeo",
            &[
                "copy",
                "--quiet",
                &image(tag),
                &format!("docker-archive:{}:test/{tag}:v1", archive.display()),
            ],
        );
        for spec in specs {
            let spec_path = data(spec);
            let reference = Command::new(cst())
                .args(["test", "--driver", "tar", "--image"])
                .arg(&archive)
                .arg("--config")
                .arg(&spec_path)
                .args(["--output", "json"])
                .output()
                .unwrap_or_else(|error| {
                    panic!("container-structure-test is needed (scripts/test installs it): {error}")
                });
            let reference: serde_json::Value = serde_json::from_slice(&reference.stdout)
                .unwrap_or_else(|error| {
                    panic!("{error}: {}", String::from_utf8_lossy(&reference.stderr))
                });
            let (ours, code) = test_json(&[&image(tag), "--config", spec_path.to_str().unwrap()]);
            let theirs: BTreeMap<String, bool> = verdicts(&reference)
                .into_iter()
                .map(|(name, (pass, _))| (name, pass))
                .collect();
            let mine: BTreeMap<String, bool> = verdicts(&ours)
                .into_iter()
                .map(|(name, (pass, _))| (name, pass))
                .collect();
            assert_eq!(
                mine, theirs,
                "{spec} on {tag}: sealcraft {ours} vs container-structure-test {reference}"
            );
            assert_eq!(
                code == 0,
                theirs.values().all(|pass| *pass),
                "{spec} on {tag}"
            );
            compared += theirs.len();
            for pass in theirs.values() {
                *outcomes.entry(*pass).or_insert(0) += 1;
            }
        }
    }
    // The matrix must exercise both verdicts, or the comparison says nothing.
    assert!(compared >= 60, "{compared} verdicts compared");
    assert!(
        outcomes[&true] >= 15 && outcomes[&false] >= 15,
        "{outcomes:?}"
    );
}

#[test]
fn command_tests_check_output_exit_codes_setup_and_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("bound");
    fs::create_dir_all(&bound).unwrap();
    fs::write(bound.join("note"), "from the host\n").unwrap();
    let env_file = dir.path().join("test.env");
    fs::write(&env_file, "# comment\nFROM_FILE=filed\n").unwrap();
    let spec = dir.path().join("commands.yaml");
    fs::write(
        &spec,
        format!(
            r#"schemaVersion: 2.0.0
globalEnvVars:
  - key: GREETING
    value: hi-$PORT
commandTests:
  - name: echo expands variables
    command: echo
    args: ["$GREETING", "${{MODE}}"]
    expectedOutput: ["^hi-8080 test\n$"]
  - name: the image user
    command: id
    args: ["-u"]
    expectedOutput: ["^1000\n$"]
  - name: stderr and an exit code
    command: sh
    args: ["-c", "echo oops >&2; exit 3"]
    exitCode: 3
    expectedError: ["oops"]
    excludedOutput: ["."]
  - name: a wrong exit code
    command: "false"
  - name: an excluded output that appears
    command: echo
    args: ["forbidden"]
    excludedOutput: ["forb"]
  - name: setup and teardown share the root
    setup: [["touch", "/tmp/marker"]]
    command: ls
    args: ["/tmp/marker"]
    teardown: [["rm", "/tmp/marker"]]
  - name: a fresh root per test
    command: ls
    args: ["/tmp/marker"]
    exitCode: 1
  - name: the test env
    envVars:
      - key: EXTRA
        value: given
    command: sh
    args: ["-c", "echo $EXTRA $FROM_FILE $FROM_HOST"]
    expectedOutput: ["^given filed host-value\n$"]
  - name: a bind mount
    command: cat
    args: ["/mnt/bound/note"]
    expectedOutput: ["from the host"]
  - name: runs too long
    command: sleep
    args: ["60"]
  - name: a missing program
    command: /no/such/program
containerRunOptions:
  envFile: {env_file}
  envVars: ["FROM_HOST"]
  bindMounts: ["{bound}:/mnt/bound:ro"]
"#,
            env_file = env_file.display(),
            bound = bound.display()
        ),
    )
    .unwrap();
    let output = sealcraft(
        &[
            "test",
            &image("good"),
            "--config",
            spec.to_str().unwrap(),
            "--timeout",
            "2",
            "--output",
            "json",
        ],
        &[("FROM_HOST", "host-value")],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let results = verdicts(&report);
    for passing in [
        "echo expands variables",
        "the image user",
        "stderr and an exit code",
        "setup and teardown share the root",
        "a fresh root per test",
        "the test env",
        "a bind mount",
    ] {
        let (pass, errors) = &results[&format!("Command Test: {passing}")];
        assert!(pass, "{passing}: {errors:?}");
    }
    let failing = |name: &str, needle: &str| {
        let (pass, errors) = &results[&format!("Command Test: {name}")];
        assert!(!pass, "{name} passed");
        assert!(
            errors.iter().any(|error| error.contains(needle)),
            "{name}: {errors:?} lacks {needle:?}"
        );
    };
    failing("a wrong exit code", "exited with 1, expected 0");
    failing(
        "an excluded output that appears",
        "excluded \"forb\" found in stdout",
    );
    failing("runs too long", "still running after 2s and was killed");
    failing("a missing program", "exited with");
    assert_eq!(report["Fail"], 4);
    // The failure left the image tagged and a runnable bundle behind.
    assert_eq!(report["Kept"]["Tag"], "good-failed");
    let bundle = PathBuf::from(report["Kept"]["Bundle"].as_str().unwrap());
    assert!(bundle.join("config.json").exists() && bundle.join("rootfs/bin/busybox").exists());
    let layout: serde_json::Value =
        serde_json::from_slice(&fs::read(images().join("index.json")).unwrap()).unwrap();
    assert!(layout.to_string().contains("good-failed"));
    fs::remove_dir_all(bundle.parent().unwrap().parent().unwrap()).unwrap();

    // --fail-fast stops at the first failure.
    let output = sealcraft(
        &[
            "test",
            &image("good"),
            "--config",
            spec.to_str().unwrap(),
            "--timeout",
            "2",
            "--fail-fast",
            "--output",
            "json",
        ],
        &[("FROM_HOST", "host-value")],
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["Fail"], 1, "{report}");
    assert_eq!(report["Skipped"], 7, "{report}");
    if let Some(bundle) = report["Kept"]["Bundle"].as_str() {
        let _ = fs::remove_dir_all(Path::new(bundle).parent().unwrap().parent().unwrap());
    }
}

#[test]
fn service_tests_tell_servers_apart() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("services.yaml");
    fs::write(
        &spec,
        r#"schemaVersion: 2.0.0
sealcraft:
  serviceTests:
    - name: answers and stops
      ready:
        http: {port: 8080, path: /index.html, status: 200}
      healthcheck: true
      stop: {within: 5}
    - name: never listens
      args: ["trap 'exit 0' TERM; sleep 1000 & wait"]
      ready: {tcp: 8080, timeout: 2}
    - name: ignores SIGTERM
      args: ["exec httpd -f -p 8080 -h /www"]
      ready: {tcp: 8080, timeout: 10}
      stop: {within: 2}
    - name: a chosen exit code
      args: ["trap 'exit 3' TERM; sleep 1000 & wait"]
      stop: {exitCode: 3, within: 5}
    - name: needs a writable root
      args: ["echo 1 > /run.pid || exit 7; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
      readOnlyRoot: true
      ready: {tcp: 8080, timeout: 5}
    - name: writes its volume under a read-only root
      args: ["touch /data/probe || exit 5; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
      readOnlyRoot: true
      ready: {tcp: 8080, timeout: 5}
    - name: a failing health check
      args: ["trap 'exit 0' TERM; httpd -f -p 8080 -h /tmp & wait"]
      ready: {tcp: 8080, timeout: 5}
      healthcheck: true
    - name: a wrong HTTP status
      ready:
        http: {port: 8080, path: /missing.html}
        timeout: 2
"#,
    )
    .unwrap();
    let (report, code) = test_json(&[&image("good"), "--config", spec.to_str().unwrap()]);
    assert_eq!(code, 1);
    let results = verdicts(&report);
    for passing in [
        "answers and stops",
        "a chosen exit code",
        "writes its volume under a read-only root",
    ] {
        let (pass, errors) = &results[&format!("Service Test: {passing}")];
        assert!(pass, "{passing}: {errors:?}");
    }
    for (name, needle) in [
        ("never listens", "not ready after 2s"),
        ("ignores SIGTERM", "still running 2s after SIGTERM"),
        ("needs a writable root", "exited with 7 before it was ready"),
        ("a failing health check", "the HEALTHCHECK"),
        ("a wrong HTTP status", "got HTTP 404, expected HTTP 200"),
    ] {
        let (pass, errors) = &results[&format!("Service Test: {name}")];
        assert!(!pass, "{name} passed");
        assert!(
            errors.iter().any(|error| error.contains(needle)),
            "{name}: {errors:?} lacks {needle:?}"
        );
    }
    if let Some(bundle) = report["Kept"]["Bundle"].as_str() {
        let _ = fs::remove_dir_all(Path::new(bundle).parent().unwrap().parent().unwrap());
    }
}

#[test]
fn the_security_suite_names_what_is_wrong() {
    let (good, code) = test_json(&[&image("good"), "--suite", "security"]);
    assert_eq!(code, 0, "{good}");
    assert_eq!(good["Total"], 7);
    let (broken, code) = test_json(&[&image("broken"), "--suite", "security"]);
    assert_eq!(code, 1);
    let results = broken["Results"].as_array().unwrap();
    let failed: BTreeMap<&str, Vec<String>> = results
        .iter()
        .filter(|result| result["Pass"] == false)
        .map(|result| {
            (
                result["Code"].as_str().unwrap(),
                result["Errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|error| error.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        failed.keys().copied().collect::<Vec<_>>(),
        [
            "security-root-user",
            "security-secret-env",
            "security-setuid",
            "security-world-writable"
        ],
        "{broken}"
    );
    assert!(failed["security-root-user"][0].contains("root"));
    assert!(failed["security-secret-env"][0].contains("SECRET_TOKEN"));
    assert!(failed["security-setuid"][0].contains("/bin/busybox is setuid"));
    let writable = failed["security-world-writable"].join("\n");
    assert!(
        writable.contains("/www/index.html") && writable.contains("/cache"),
        "{writable}"
    );
    // The secret's value is never repeated.
    assert!(!broken.to_string().contains("ghp_8fK2"));
    if let Some(bundle) = broken["Kept"]["Bundle"].as_str() {
        let _ = fs::remove_dir_all(Path::new(bundle).parent().unwrap().parent().unwrap());
    }
    // The Debian base runs as root and has its package managers.
    let (debian, code) = test_json(&[&image("debian"), "--suite", "security"]);
    assert_eq!(code, 1);
    let text = debian.to_string();
    assert!(
        text.contains("package manager /usr/bin/apt is in the image"),
        "{text}"
    );
    assert!(text.contains("/usr/bin/dpkg"), "{text}");
    if let Some(bundle) = debian["Kept"]["Bundle"].as_str() {
        let _ = fs::remove_dir_all(Path::new(bundle).parent().unwrap().parent().unwrap());
    }
}

#[test]
fn junit_and_text_reports_and_the_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let output = sealcraft(
        &[
            "test",
            &image("broken"),
            "--config",
            data("files.yaml").to_str().unwrap(),
            "--config",
            data("metadata-env.yaml").to_str().unwrap(),
            "--output",
            "junit",
            "--test-report",
            junit.to_str().unwrap(),
            "--junit-suite-name",
            "images <&> more",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(fs::read(&junit).unwrap(), output.stdout);
    let schema = std::env::var("SEALCRAFT_JUNIT_SCHEMA")
        .expect("SEALCRAFT_JUNIT_SCHEMA names the JUnit schema (scripts/test fetches it)");
    let check = Command::new("xmllint")
        .args(["--noout", "--schema", &schema])
        .arg(&junit)
        .output()
        .expect("xmllint is needed (scripts/test installs libxml2-utils)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let xml = String::from_utf8(output.stdout).unwrap();
    assert!(xml.contains("name=\"images &lt;&amp;&gt; more\""));
    assert!(
        xml.contains(
            "<failure message=\"env var PORT is &quot;9090&quot;, expected &quot;8080&quot;"
        ),
        "{xml}"
    );

    let text = sealcraft(
        &[
            "test",
            &image("good"),
            "--config",
            data("metadata-env.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("=== RUN: Metadata Test\n--- PASS"), "{text}");
    assert!(
        text.contains("passes:      1") && text.trim_end().ends_with("PASS"),
        "{text}"
    );
}

#[test]
fn spec_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needle) in [
        (
            "misspelled.yaml",
            "schemaVersion: 2.0.0\ncommandTests:\n  - name: x\n    command: echo\n    exitcode: 1\n",
            "misspelled.yaml:5:5: commandTests[0]: unknown field `exitcode`",
        ),
        (
            "noversion.yaml",
            "commandTests: []\n",
            "schemaVersion is missing",
        ),
        (
            "version.yaml",
            "schemaVersion: 3.0.0\n",
            "schemaVersion \"3.0.0\" is not supported",
        ),
        (
            "regex.yaml",
            "schemaVersion: 2.0.0\nfileContentTests:\n  - name: bad\n    path: /x\n    expectedContents: [\"(\"]\n",
            "test \"bad\": bad regular expression",
        ),
        (
            "v1only.yaml",
            "schemaVersion: 1.0.0\nmetadataTest:\n  user: x\n",
            "unknown field `metadataTest`",
        ),
        (
            "caps.yaml",
            "schemaVersion: 2.0.0\ncontainerRunOptions:\n  capabilities: [CAP_FLY]\n",
            "CAP_FLY is not a Linux capability",
        ),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        let output = sealcraft(
            &["test", &image("good"), "--config", path.to_str().unwrap()],
            &[],
        );
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{name}: {stderr}");
    }
    let output = sealcraft(&["test", &image("good")], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to test"));
}

#[test]
fn a_run_stops_at_a_failing_test_before_the_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let layout = images();
    let digest = sealcraft_ok(&["image", "inspect", &image("good"), "--json"])["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    fs::write(
        dir.path().join("sealcraft.toml"),
        format!(
            r#"[project]
name = "busy"
version = "1.0.0"
registry = "registry.example.com/demo"
architectures = ["amd64"]

[base]
image = "oci:{layout}:good@{digest}"

[test]
configs = ["spec.yaml"]

[output]
dir = "out"
"#,
            layout = layout.display()
        ),
    )
    .unwrap();
    fs::copy(data("files.yaml"), dir.path().join("spec.yaml")).unwrap();
    let config = dir.path().join("sealcraft.toml");
    let output = sealcraft(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = dir.path().join("out/busy-1.0.0-amd64");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "failed");
    let stages: Vec<&str> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages.last(), Some(&"test"), "{stages:?}");
    assert!(!stages.contains(&"sbom"));
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join("test-busy-1.0.0-amd64.json")).unwrap())
            .unwrap();
    assert_eq!(report["Kept"]["Tag"], "1.0.0-amd64-failed");
    assert!(report["Fail"].as_u64().unwrap() >= 2, "{report}");
    assert!(run_dir.join("test-busy-1.0.0-amd64.junit.xml").exists());
    let index = fs::read_to_string(run_dir.join("oci/index.json")).unwrap();
    assert!(index.contains("1.0.0-amd64-failed"));
    // The final tag names only an image that passed.
    assert!(!index.contains("\"1.0.0-amd64\""), "{index}");
    let events = fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"stage\":\"test\""));

    // A spec that does not parse stops the run before anything is built.
    fs::write(
        dir.path().join("spec.yaml"),
        "schemaVersion: 2.0.0\nmetadataTests: {}\n",
    )
    .unwrap();
    let output = sealcraft(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("test.configs") && stderr.contains("metadataTests"),
        "{stderr}"
    );
}
