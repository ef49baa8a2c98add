//! `sealcraft patch` against a signed apt repository built and served here:
//! the patched image is read back by the real dpkg, and every refusal
//! leaves no image behind.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::aptrepo::{
    CuttingProxy, DebSpec, Server, SigningKey, dpkg_in, install_root, write_suite,
};
use super::support::{run_tool, sealcraft, sealcraft_ok, umoci_unpack};

/// The packages of the image as it was built, and the archive's newer ones.
struct Archive {
    dir: tempfile::TempDir,
    server: Server,
    keyring: PathBuf,
    old: Vec<PathBuf>,
}

fn old_packages() -> Vec<DebSpec> {
    vec![
        DebSpec::new("libbar", "1.0-1").file("usr/lib/libbar.so.1", "bar 1.0\n"),
        DebSpec::new("libfoo", "1.0-1")
            .fields("Depends: libbar (>= 1.0)\n")
            .file("usr/lib/libfoo.so.1", "foo 1.0\n")
            .file("usr/share/foo/old-notes.txt", "only in 1.0\n")
            .conffile("etc/foo.conf", "setting=1\n"),
        DebSpec::new("app", "1.0-1")
            .fields("Depends: libfoo (>= 1.0)\n")
            .file("usr/bin/app", "#!/bin/sh\necho app\n"),
        DebSpec::new("tool", "1.0-1").file("usr/bin/tool", "tool 1.0\n"),
        DebSpec::new("broken", "1.0-1").file("usr/share/broken/data", "1.0\n"),
        DebSpec::new("docs", "1.0-1")
            .architecture("all")
            .file("usr/share/doc/docs/readme", "docs 1.0\n"),
    ]
}

fn new_packages() -> Vec<DebSpec> {
    vec![
        DebSpec::new("libbar", "2.0-1").file("usr/lib/libbar.so.1", "bar 2.0\n"),
        DebSpec::new("libnew", "1.0-1").file("usr/lib/libnew.so.1", "new 1.0\n"),
        DebSpec::new("libfoo", "1.1-1")
            .fields("Depends: libbar (>= 2.0), libnew | libnew-compat\n")
            .file("usr/lib/libfoo.so.1", "foo 1.1\n")
            .conffile("etc/foo.conf", "setting=1\nnew_setting=1\n")
            .script("postinst", "#!/bin/sh\nexit 0\n"),
        DebSpec::new("tool", "1.1-1").file("usr/bin/tool", "tool 1.1\n"),
        DebSpec::new("broken", "1.1-1")
            .fields("Depends: missing-package (>= 3)\n")
            .file("usr/share/broken/data", "1.1\n"),
    ]
}

impl Archive {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(dir.path(), "good");
        let keyring = dir.path().join("good.gpg");
        key.export(&keyring);
        let debs = dir.path().join("debs");
        fs::create_dir_all(&debs).unwrap();
        let old: Vec<PathBuf> = old_packages()
            .iter()
            .map(|spec| spec.build(&debs))
            .collect();
        let new: Vec<PathBuf> = new_packages()
            .iter()
            .map(|spec| spec.build(&debs))
            .collect();
        let repo = dir.path().join("repo");
        let mut all = old.clone();
        all.extend(new);
        write_suite(&repo, "stable", &all, &key);
        let server = Server::serve(&repo);
        Self {
            dir,
            server,
            keyring,
            old,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn source_line(&self, keyring: &Path) -> String {
        format!(
            "deb [signed-by={}] {} stable main",
            keyring.display(),
            self.server.url()
        )
    }

    /// The old packages installed by dpkg, the conffile edited, the image's
    /// apt sources pointing at the archive; imported as `oci:DIR:old`.
    fn image(&self, name: &str, with_sources: bool) -> PathBuf {
        let root = self.path().join(format!("{name}-root"));
        install_root(&root, &self.old);
        fs::write(root.join("etc/foo.conf"), "setting=2\n").unwrap();
        if with_sources {
            fs::create_dir_all(root.join("etc/apt/keyrings")).unwrap();
            fs::copy(&self.keyring, root.join("etc/apt/keyrings/archive.gpg")).unwrap();
            fs::write(
                root.join("etc/apt/sources.list"),
                format!(
                    "# the archive the image was built from\ndeb [signed-by=/etc/apt/keyrings/archive.gpg] {} stable main\n",
                    self.server.url()
                ),
            )
            .unwrap();
        }
        self.import(&root, name)
    }

    fn import(&self, root: &Path, name: &str) -> PathBuf {
        let tar = self.path().join(format!("{name}.tar"));
        run_tool(
            "tar",
            &[
                "--numeric-owner",
                "-C",
                &root.display().to_string(),
                "-cf",
                &tar.display().to_string(),
                ".",
            ],
        );
        let layout = self.path().join(format!("{name}-layout"));
        sealcraft_ok(&[
            "image",
            "import",
            &format!("rootfs:{}", tar.display()),
            "--arch",
            "amd64",
            "-o",
            &format!("oci:{}:old", layout.display()),
        ]);
        layout
    }

    fn cache(&self) -> String {
        self.path().join("cache").display().to_string()
    }
}

/// A Trivy-format report (SchemaVersion 2) with these os-pkgs findings
/// `(id, package, installed, fixed, severity)` and one lang-pkgs finding
/// the patch must ignore.
fn report(dir: &Path, name: &str, findings: &[(&str, &str, &str, &str, &str)]) -> PathBuf {
    let vulnerabilities: Vec<Value> = findings
        .iter()
        .map(|(id, package, installed, fixed, severity)| {
            json!({
                "VulnerabilityID": id,
                "PkgName": package,
                "InstalledVersion": installed,
                "FixedVersion": fixed,
                "Severity": severity,
            })
        })
        .collect();
    let document = json!({
        "SchemaVersion": 2,
        "ArtifactName": "test-image",
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.8"}},
        "Results": [
            {"Target": "test-image (debian 12.8)", "Class": "os-pkgs", "Type": "debian",
             "Vulnerabilities": vulnerabilities},
            {"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg",
             "Vulnerabilities": [{"VulnerabilityID": "CVE-2026-9999", "PkgName": "requests",
                                  "InstalledVersion": "2.0", "FixedVersion": "2.1", "Severity": "HIGH"}]}
        ]
    });
    let path = dir.join(format!("{name}.json"));
    fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    path
}

fn dpkg_query(root: &Path) -> Vec<String> {
    let output = run_tool(
        "dpkg-query",
        &[
            &format!("--admindir={}/var/lib/dpkg", root.display()),
            "--show",
            "--showformat=${Package} ${Version} ${db:Status-Abbrev}\\n",
        ],
    );
    output
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect()
}

fn layer_count(layout: &Path, tag: &str) -> usize {
    let inspected = sealcraft_ok(&[
        "image",
        "inspect",
        &format!("oci:{}:{tag}", layout.display()),
        "--json",
    ]);
    inspected["layers"].as_array().unwrap().len()
}

fn python_tool(name: &str) -> String {
    match std::env::var("SEALCRAFT_PYTHON_TOOLS") {
        Ok(directory) => Path::new(&directory).join(name).display().to_string(),
        Err(_) => name.to_owned(),
    }
}

#[test]
fn a_report_s_fixes_install_as_one_layer_that_dpkg_accepts() {
    let archive = Archive::new();
    let layout = archive.image("image", true);
    let scan = report(
        archive.path(),
        "scan",
        &[
            ("CVE-2026-0001", "libfoo", "1.0-1", "1.1-1", "HIGH"),
            (
                "CVE-2026-0002",
                "libfoo",
                "1.0-1",
                "1.0-3, 1.1-1",
                "CRITICAL",
            ),
            ("CVE-2026-0003", "tool", "1.0-1", "", "LOW"),
        ],
    );
    let image = format!("oci:{}:old", layout.display());
    let output = format!("oci:{}:patched", layout.display());
    let vex = archive.path().join("patch.vex.json");

    // A dry run resolves and reports, and writes nothing.
    let dry = sealcraft_ok(&[
        "patch",
        &image,
        "--report",
        &scan.display().to_string(),
        "--dry-run",
        "--cache-dir",
        &archive.cache(),
        "--json",
    ]);
    assert_eq!(dry["report"]["dry_run"], true);
    assert_eq!(
        dry["report"]["updated"].as_array().unwrap().len(),
        3,
        "{dry}"
    );
    assert!(dry["digest"].is_null());

    let patched = sealcraft_ok(&[
        "patch",
        &image,
        "--report",
        &scan.display().to_string(),
        "--output",
        &output,
        "--vex",
        &vex.display().to_string(),
        "--cache-dir",
        &archive.cache(),
        "--json",
    ]);
    let report = &patched["report"];
    assert_eq!(report["sources"], "image", "{report}");
    let updated: Vec<String> = report["updated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            format!(
                "{} {} -> {} ({})",
                package["name"].as_str().unwrap(),
                package["from"].as_str().unwrap_or("new"),
                package["to"].as_str().unwrap(),
                package["reason"]["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        updated,
        [
            "libbar 1.0-1 -> 2.0-1 (dependency)",
            "libfoo 1.0-1 -> 1.1-1 (requested)",
            "libnew new -> 1.0-1 (dependency)",
        ]
    );
    let fixed: Vec<&str> = report["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fixed| fixed["id"].as_str().unwrap())
        .collect();
    assert_eq!(fixed, ["CVE-2026-0001", "CVE-2026-0002"]);
    assert_eq!(
        report["fixed_by_severity"],
        json!({"HIGH": 1, "CRITICAL": 1})
    );
    assert_eq!(
        report["scripts_not_run"],
        json!([{"package": "libfoo", "scripts": ["postinst"]}])
    );
    assert_eq!(
        report["layer"]["summary"]["conffiles_kept"],
        json!(["/etc/foo.conf"])
    );
    assert_eq!(
        layer_count(&layout, "old") + 1,
        layer_count(&layout, "patched")
    );

    // The real dpkg reads the patched database as consistent.
    let bundle = archive.path().join("bundle");
    let root = umoci_unpack(&layout, "patched", &bundle);
    let (audit_ok, audit) = dpkg_in(&root, &["--audit"]);
    assert!(audit_ok && audit.trim().is_empty(), "dpkg --audit: {audit}");
    let (_, verify) = dpkg_in(&root, &["--verify"]);
    let problems: Vec<&str> = verify.lines().collect();
    // Only the conffile the image edited differs from what dpkg recorded.
    assert_eq!(
        problems,
        ["??5?????? c /etc/foo.conf"],
        "dpkg --verify: {verify}"
    );
    assert_eq!(
        dpkg_query(&root),
        [
            "app 1.0-1 ii",
            "broken 1.0-1 ii",
            "docs 1.0-1 ii",
            "libbar 2.0-1 ii",
            "libfoo 1.1-1 ii",
            "libnew 1.0-1 ii",
            "tool 1.0-1 ii",
        ]
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/lib/libfoo.so.1")).unwrap(),
        "foo 1.1\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/lib/libnew.so.1")).unwrap(),
        "new 1.0\n"
    );
    assert!(
        !root.join("usr/share/foo/old-notes.txt").exists(),
        "the dropped file is whited out"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/foo.conf")).unwrap(),
        "setting=2\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/foo.conf.dpkg-dist")).unwrap(),
        "setting=1\nnew_setting=1\n"
    );

    // The labels name the base and the layer; the VEX names only what was fixed.
    let inspected = sealcraft_ok(&["image", "inspect", &output, "--json"]);
    let labels = &inspected["config"]["Labels"];
    assert_eq!(
        labels["dev.sealcraft.patch.base"],
        patched["report"]["base_digest"]
    );
    assert!(
        labels["dev.sealcraft.patch.layer"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let document: Value = serde_json::from_slice(&fs::read(&vex).unwrap()).unwrap();
    let statements = document["statements"].as_array().unwrap();
    let names: Vec<&str> = statements
        .iter()
        .map(|statement| statement["vulnerability"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CVE-2026-0001", "CVE-2026-0002"]);
    let digest = patched["digest"].as_str().unwrap();
    for statement in statements {
        assert_eq!(statement["status"], "fixed");
        let product = &statement["products"][0];
        assert!(
            product["@id"]
                .as_str()
                .unwrap()
                .ends_with(&digest.replace(':', "%3A")),
            "{product}"
        );
        assert!(
            product["subcomponents"][0]["@id"]
                .as_str()
                .unwrap()
                .starts_with("pkg:deb/debian/libfoo@1.1-1?arch=amd64"),
            "{product}"
        );
    }
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openvex-0.2.0.schema.json");
    run_tool(
        &python_tool("check-jsonschema"),
        &[
            "--schemafile",
            &schema.display().to_string(),
            &vex.display().to_string(),
        ],
    );
}

#[test]
fn patching_a_patched_image_replaces_its_patch_layer() {
    let archive = Archive::new();
    let layout = archive.image("image", false);
    let source = archive.source_line(&archive.keyring);
    let first = report(
        archive.path(),
        "first",
        &[("CVE-2026-0001", "libfoo", "1.0-1", "1.1-1", "HIGH")],
    );
    sealcraft_ok(&[
        "patch",
        &format!("oci:{}:old", layout.display()),
        "--report",
        &first.display().to_string(),
        "--source",
        &source,
        "--output",
        &format!("oci:{}:first", layout.display()),
        "--cache-dir",
        &archive.cache(),
    ]);
    let second = report(
        archive.path(),
        "second",
        &[("CVE-2026-0004", "tool", "1.0-1", "1.1-1", "MEDIUM")],
    );
    let again = sealcraft_ok(&[
        "patch",
        &format!("oci:{}:first", layout.display()),
        "--report",
        &second.display().to_string(),
        "--source",
        &source,
        "--output",
        &format!("oci:{}:second", layout.display()),
        "--cache-dir",
        &archive.cache(),
        "--json",
    ]);
    assert_eq!(again["report"]["replaced_patch_layer"], true);
    assert_eq!(again["report"]["sources"], "configured");
    assert_eq!(
        layer_count(&layout, "old") + 1,
        layer_count(&layout, "second")
    );
    let old = sealcraft_ok(&[
        "image",
        "inspect",
        &format!("oci:{}:old", layout.display()),
        "--json",
    ]);
    assert_eq!(
        again["report"]["base_digest"], old["digest"],
        "the base stays the unpatched image"
    );
    let root = umoci_unpack(&layout, "second", &archive.path().join("bundle"));
    let installed = dpkg_query(&root);
    assert!(
        installed.contains(&"libfoo 1.1-1 ii".to_owned()),
        "the first patch carried forward: {installed:?}"
    );
    assert!(
        installed.contains(&"tool 1.1-1 ii".to_owned()),
        "{installed:?}"
    );
    let (audit_ok, audit) = dpkg_in(&root, &["--audit"]);
    assert!(audit_ok && audit.trim().is_empty(), "dpkg --audit: {audit}");
}

/// A patch that cannot be made leaves no tag in the output layout.
fn refused(archive: &Archive, layout: &Path, args: &[&str], expected: &str) {
    let output_layout = archive.path().join("refused-output");
    let output = format!("oci:{}:patched", output_layout.display());
    let image = format!("oci:{}:old", layout.display());
    let cache = archive.cache();
    let mut all = vec!["patch", image.as_str(), "--output", &output];
    if !args.contains(&"--cache-dir") {
        all.extend(["--cache-dir", cache.as_str()]);
    }
    all.extend_from_slice(args);
    let result = sealcraft(&all, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    let index = output_layout.join("index.json");
    if index.exists() {
        let index: Value = serde_json::from_slice(&fs::read(index).unwrap()).unwrap();
        assert_eq!(
            index["manifests"],
            json!([]),
            "a refused patch tagged an image"
        );
    }
}

#[test]
fn patches_that_cannot_be_made_are_refused_and_write_no_image() {
    let archive = Archive::new();
    let layout = archive.image("image", false);
    let source = archive.source_line(&archive.keyring);

    // A fix whose dependency no suite offers.
    let broken = report(
        archive.path(),
        "broken",
        &[("CVE-2026-0005", "broken", "1.0-1", "1.1-1", "HIGH")],
    );
    refused(
        &archive,
        &layout,
        &[
            "--report",
            &broken.display().to_string(),
            "--source",
            &source,
        ],
        "missing-package (>= 3)",
    );

    // A fix newer than anything offered.
    let ahead = report(
        archive.path(),
        "ahead",
        &[("CVE-2026-0006", "tool", "1.0-1", "9.0-1", "HIGH")],
    );
    refused(
        &archive,
        &layout,
        &[
            "--report",
            &ahead.display().to_string(),
            "--source",
            &source,
        ],
        "9.0-1 or later",
    );

    // A package whose maintainer scripts the configuration will not skip.
    let fix = report(
        archive.path(),
        "fix",
        &[("CVE-2026-0001", "libfoo", "1.0-1", "1.1-1", "HIGH")],
    );
    refused(
        &archive,
        &layout,
        &[
            "--report",
            &fix.display().to_string(),
            "--source",
            &source,
            "--refuse-scripts",
            "libfoo",
        ],
        "postinst",
    );

    // Release files signed by a key the source does not trust.
    let stranger = SigningKey::generate(archive.path(), "stranger");
    let stranger_keyring = archive.path().join("stranger.gpg");
    stranger.export(&stranger_keyring);
    refused(
        &archive,
        &layout,
        &[
            "--report",
            &fix.display().to_string(),
            "--source",
            &archive.source_line(&stranger_keyring),
        ],
        "InRelease",
    );

    // A .deb that is not the one the signed index describes.
    let repo = archive.path().join("repo");
    let pool_deb = repo.join("pool/main/stable/libfoo_1.1-1_amd64.deb");
    let mut bytes = fs::read(&pool_deb).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&pool_deb, bytes).unwrap();
    let fresh_cache = archive.path().join("fresh-cache");
    refused(
        &archive,
        &layout,
        &[
            "--report",
            &fix.display().to_string(),
            "--source",
            &source,
            "--cache-dir",
            &fresh_cache.display().to_string(),
        ],
        "libfoo_1.1-1_amd64.deb",
    );
}

#[test]
fn a_distroless_status_d_database_is_patched_in_its_own_form() {
    let archive = Archive::new();
    // Installed by dpkg, then rewritten as distroless images record packages:
    // one status.d/<name> paragraph and status.d/<name>.md5sums per package.
    let root = archive.path().join("distroless-root");
    install_root(&root, &archive.old);
    let dpkg = root.join("var/lib/dpkg");
    let status = fs::read_to_string(dpkg.join("status")).unwrap();
    fs::create_dir_all(dpkg.join("status.d")).unwrap();
    for paragraph in status
        .split("\n\n")
        .filter(|paragraph| !paragraph.trim().is_empty())
    {
        let name = paragraph
            .lines()
            .find_map(|line| line.strip_prefix("Package: "))
            .unwrap()
            .to_owned();
        fs::write(
            dpkg.join("status.d").join(&name),
            format!("{}\n", paragraph.trim_end()),
        )
        .unwrap();
        let info = dpkg.join("info");
        let md5sums = ["", ":amd64"]
            .iter()
            .map(|suffix| info.join(format!("{name}{suffix}.md5sums")))
            .find(|path| path.exists());
        if let Some(md5sums) = md5sums {
            fs::copy(
                md5sums,
                dpkg.join("status.d").join(format!("{name}.md5sums")),
            )
            .unwrap();
        }
    }
    fs::remove_file(dpkg.join("status")).unwrap();
    fs::remove_dir_all(dpkg.join("info")).unwrap();
    fs::remove_dir_all(dpkg.join("updates")).unwrap();
    let layout = archive.import(&root, "distroless");
    let fix = report(
        archive.path(),
        "fix",
        &[("CVE-2026-0001", "libfoo", "1.0-1", "1.1-1", "HIGH")],
    );
    sealcraft_ok(&[
        "patch",
        &format!("oci:{}:old", layout.display()),
        "--report",
        &fix.display().to_string(),
        "--source",
        &archive.source_line(&archive.keyring),
        "--output",
        &format!("oci:{}:patched", layout.display()),
        "--cache-dir",
        &archive.cache(),
    ]);
    let patched = umoci_unpack(&layout, "patched", &archive.path().join("bundle"));
    let status_d = patched.join("var/lib/dpkg/status.d");
    assert!(
        !patched.join("var/lib/dpkg/status").exists(),
        "no status file appears"
    );
    let libfoo = fs::read_to_string(status_d.join("libfoo")).unwrap();
    assert!(libfoo.contains("Version: 1.1-1\n"), "{libfoo}");
    assert!(
        fs::read_to_string(status_d.join("libnew"))
            .unwrap()
            .contains("Version: 1.0-1")
    );
    assert!(
        fs::read_to_string(status_d.join("libbar"))
            .unwrap()
            .contains("Version: 2.0-1")
    );
    let md5sums = fs::read_to_string(status_d.join("libfoo.md5sums")).unwrap();
    let expected = run_tool(
        "md5sum",
        &[&patched.join("usr/lib/libfoo.so.1").display().to_string()],
    );
    let hash = expected.split_whitespace().next().unwrap();
    assert!(
        md5sums.contains(&format!("{hash}  usr/lib/libfoo.so.1")),
        "{md5sums}"
    );
    assert!(
        !patched.join("var/lib/dpkg/info").exists(),
        "no info directory appears"
    );
}

#[test]
fn the_run_patches_before_squash_and_attests_what_it_installed() {
    let archive = Archive::new();
    let layout = archive.image("base", false);
    let project = archive.path();
    let digest = sealcraft_ok(&[
        "image",
        "inspect",
        &format!("oci:{}:old", layout.display()),
        "--json",
    ])["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    // An advisory written from the OSV schema: libfoo fixed in 1.1-1.
    let db = project.join("advisories");
    fs::create_dir_all(&db).unwrap();
    fs::write(
        db.join("TEST-2026-0001.json"),
        serde_json::to_vec_pretty(&json!({
            "schema_version": "1.6.0",
            "id": "TEST-2026-0001",
            "modified": "2026-11-01T00:00:00Z",
            "aliases": ["CVE-2026-0001"],
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": "libfoo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1-1"}]}]
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    fs::write(project.join("tool"), b"#!/bin/sh\n").unwrap();
    super::support::generate_keys(&project.join("keys"), "patch-pass");
    fs::write(
        project.join("sealcraft.toml"),
        format!(
            "[project]\nname = \"svc\"\nversion = \"1.0.0\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n\
             [base]\nimage = \"oci:base-layout:old@{digest}\"\n[user]\nname = \"svc\"\nuid = 2000\n\
             [[files]]\nsource = \"tool\"\ndestination = \"/usr/local/bin/tool\"\nmode = \"0755\"\n\
             [patch]\nsources = [\"deb [signed-by={}] {} stable main\"]\n\
             [scan]\ndb = \"advisories\"\nfail_on = [\"CRITICAL\"]\n\
             [publish]\nkey = \"keys/cosign.key\"\n",
            archive.keyring.display(),
            archive.server.url()
        ),
    )
    .unwrap();
    let cache = project.join("xdg-cache");
    let output = sealcraft(
        &[
            "run",
            "--config",
            &project.join("sealcraft.toml").display().to_string(),
            "--until",
            "attest",
        ],
        &[
            ("COSIGN_PASSWORD", "patch-pass"),
            ("XDG_CACHE_HOME", &cache.display().to_string()),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = project.join("out/svc-1.0.0-amd64");
    let record: Value =
        serde_json::from_slice(&fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    let stages: Vec<&str> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "preflight",
            "build",
            "patch",
            "squash",
            "sbom",
            "scan",
            "attest"
        ]
    );
    // Squash reads what patch wrote; the final scan no longer finds the fixed advisory.
    assert_eq!(
        record["stages"][3]["inputs"][0]["digest"],
        record["stages"][2]["outputs"][0]["digest"]
    );
    let scan: Value =
        serde_json::from_slice(&fs::read(run_dir.join("scan-svc-1.0.0-amd64.json")).unwrap())
            .unwrap();
    assert!(
        !scan.to_string().contains("CVE-2026-0001"),
        "the final scan still finds the fix"
    );
    let before: Value =
        serde_json::from_slice(&fs::read(run_dir.join("patch-scan-svc-1.0.0-amd64.json")).unwrap())
            .unwrap();
    assert!(
        before.to_string().contains("TEST-2026-0001")
            || before.to_string().contains("CVE-2026-0001")
    );

    // The completed event says what moved and what it fixed.
    let events = fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let completed: Value = events
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|event| event["stage"] == "patch" && event["event"] == "completed")
        .unwrap_or_else(|| panic!("no completed patch event in {events}"));
    let fields = completed.get("fields").unwrap_or(&completed);
    assert_eq!(fields["fixed"], 1, "{completed}");
    assert!(fields["bytes_added"].as_u64().unwrap() > 0);
    let moved: Vec<String> = fields["updated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            format!(
                "{} {} {}",
                package["package"].as_str().unwrap(),
                package["from"],
                package["to"]
            )
        })
        .collect();
    assert!(
        moved.contains(&"libfoo \"1.0-1\" \"1.1-1\"".to_owned()),
        "{moved:?}"
    );

    // The VEX is about the final (squashed) image; the provenance lists the Release file and every .deb.
    let vex: Value =
        serde_json::from_slice(&fs::read(run_dir.join("vex-svc-1.0.0-amd64.json")).unwrap())
            .unwrap();
    let final_digest = record["digest"].as_str().unwrap();
    assert!(
        vex["statements"][0]["products"][0]["@id"]
            .as_str()
            .unwrap()
            .contains(&final_digest.replace(':', "%3A")),
        "{vex}"
    );
    let attestation: Value = serde_json::from_slice(
        &fs::read(run_dir.join("attestation-svc-1.0.0-amd64.json")).unwrap(),
    )
    .unwrap();
    let dependencies = attestation["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let uris: Vec<&str> = dependencies
        .iter()
        .filter_map(|dependency| dependency["uri"].as_str())
        .collect();
    assert!(
        uris.contains(&format!("{}/dists/stable/InRelease", archive.server.url()).as_str()),
        "{uris:?}"
    );
    for deb in [
        "libfoo_1.1-1_amd64.deb",
        "libbar_2.0-1_amd64.deb",
        "libnew_1.0-1_amd64.deb",
    ] {
        assert!(
            dependencies
                .iter()
                .any(|dependency| dependency["name"] == deb
                    && dependency["digest"]["sha256"]
                        .as_str()
                        .is_some_and(|hex| hex.len() == 64)),
            "{deb} is not among {dependencies:#?}"
        );
    }
}

#[test]
fn a_download_cut_halfway_resumes_with_a_range_request() {
    let archive = Archive::new();
    let layout = archive.image("image", false);
    let proxy = CuttingProxy::start(archive.server.port);
    let fix = report(
        archive.path(),
        "fix",
        &[("CVE-2026-0004", "tool", "1.0-1", "1.1-1", "LOW")],
    );
    let patched = sealcraft_ok(&[
        "patch",
        &format!("oci:{}:old", layout.display()),
        "--report",
        &fix.display().to_string(),
        "--source",
        &format!(
            "deb [signed-by={}] http://127.0.0.1:{} stable main",
            archive.keyring.display(),
            proxy.port
        ),
        "--output",
        &format!("oci:{}:patched", layout.display()),
        "--cache-dir",
        &archive.cache(),
        "--json",
    ]);
    assert_eq!(patched["report"]["updated"][0]["to"], "1.1-1");
    let requests = proxy.requests.lock().unwrap().clone();
    let deb: Vec<&String> = requests
        .iter()
        .filter(|request| request.contains("tool_1.1-1_amd64.deb"))
        .collect();
    assert_eq!(deb.len(), 2, "{requests:#?}");
    assert!(
        !deb[0].to_ascii_lowercase().contains("range"),
        "{requests:#?}"
    );
    assert!(
        deb[1].to_ascii_lowercase().contains("[range: bytes="),
        "the second request resumes: {requests:#?}"
    );
    let root = umoci_unpack(&layout, "patched", &archive.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(root.join("usr/bin/tool")).unwrap(),
        "tool 1.1\n"
    );
}

#[test]
fn images_of_other_package_managers_get_a_clear_refusal() {
    use super::support::{Item, make_image};
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    make_image(
        &layout,
        "alpine",
        &[vec![
            Item::Dir("etc", 0o755, 0),
            Item::File(
                "etc/os-release",
                0o644,
                0,
                b"ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            ),
            Item::Dir("lib", 0o755, 0),
            Item::Dir("lib/apk", 0o755, 0),
            Item::Dir("lib/apk/db", 0o755, 0),
            Item::File(
                "lib/apk/db/installed",
                0o644,
                0,
                b"P:musl\nV:1.2.5-r0\nA:x86_64\n\n",
            ),
        ]],
    );
    let output = sealcraft(
        &[
            "patch",
            &format!("oci:{}:alpine", layout.display()),
            "--output",
            &format!("oci:{}:patched", layout.display()),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("patching alpine 3.20.3 images (apk packages) is not supported yet"),
        "{stderr}"
    );
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        1,
        "only the input is tagged"
    );
}

#[test]
fn a_suite_without_inrelease_is_read_through_release_gpg_and_never_unsigned() {
    let archive = Archive::new();
    let layout = archive.image("image", false);
    let dists = archive.path().join("repo/dists/stable");
    fs::remove_file(dists.join("InRelease")).unwrap();
    let fix = report(
        archive.path(),
        "fix",
        &[("CVE-2026-0004", "tool", "1.0-1", "1.1-1", "LOW")],
    );
    let source = archive.source_line(&archive.keyring);
    let patched = sealcraft_ok(&[
        "patch",
        &format!("oci:{}:old", layout.display()),
        "--report",
        &fix.display().to_string(),
        "--source",
        &source,
        "--output",
        &format!("oci:{}:patched", layout.display()),
        "--cache-dir",
        &archive.cache(),
        "--json",
    ]);
    assert!(
        patched["report"]["suites"][0]["release_url"]
            .as_str()
            .unwrap()
            .ends_with("/dists/stable/Release"),
        "{}",
        patched["report"]
    );
    // A Release file that is not what its detached signature signed.
    let release = fs::read_to_string(dists.join("Release")).unwrap();
    fs::write(
        dists.join("Release"),
        release.replace("Suite: stable", "Suite: stable\nLabel: edited"),
    )
    .unwrap();
    refused(
        &archive,
        &layout,
        &["--report", &fix.display().to_string(), "--source", &source],
        "signature",
    );
    // No signature at all.
    fs::write(dists.join("Release"), release).unwrap();
    fs::remove_file(dists.join("Release.gpg")).unwrap();
    refused(
        &archive,
        &layout,
        &["--report", &fix.display().to_string(), "--source", &source],
        "not signed",
    );
}

/// `sealcraft ARGS…` with `apt_dir` bind-mounted over this machine's
/// /etc/apt in a private mount namespace, so the host's sources are the
/// test's (the real /etc/apt is untouched).
fn sealcraft_with_host_apt(apt_dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/apt && exec \"$@\"",
        ])
        .arg(apt_dir)
        .arg(env!("CARGO_BIN_EXE_sealcraft"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("unshare (util-linux) runs")
}

#[test]
fn an_image_without_sources_patches_from_the_machine_s_apt_configuration() {
    let archive = Archive::new();
    let layout = archive.image("image", false);
    let fix = report(
        archive.path(),
        "fix",
        &[("CVE-2026-0004", "tool", "1.0-1", "1.1-1", "LOW")],
    );
    let apt = archive.path().join("host-apt");
    fs::create_dir_all(apt.join("sources.list.d")).unwrap();
    fs::write(
        apt.join("sources.list.d/archive.sources"),
        format!(
            "Types: deb\nURIs: {}\nSuites: stable\nComponents: main\nSigned-By: {}\n",
            archive.server.url(),
            archive.keyring.display()
        ),
    )
    .unwrap();
    let image = format!("oci:{}:old", layout.display());
    let cache = archive.cache();
    let fix_path = fix.display().to_string();
    let output = format!("oci:{}:patched", layout.display());
    let args = [
        "patch",
        image.as_str(),
        "--report",
        &fix_path,
        "--output",
        &output,
        "--cache-dir",
        &cache,
        "--json",
    ];
    let patched = sealcraft_with_host_apt(&apt, &args);
    assert!(
        patched.status.success(),
        "{}",
        String::from_utf8_lossy(&patched.stderr)
    );
    let report: Value = serde_json::from_slice(&patched.stdout).unwrap();
    assert_eq!(report["report"]["sources"], "host");
    assert_eq!(report["report"]["updated"][0]["to"], "1.1-1");

    // A broken file among the machine's sources is a warning; with no other source the patch then has none.
    fs::write(
        apt.join("sources.list.d/broken.list"),
        "deb [signed-by=relative.gpg] http://x stable main\n",
    )
    .unwrap();
    let refused = sealcraft_with_host_apt(&apt, &args);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("this machine's apt sources are not used")
            && stderr.contains("broken.list"),
        "{stderr}"
    );
    assert!(stderr.contains("no apt sources"), "{stderr}");
}
