//! A real aged Debian bookworm image (older versions still on the Debian
//! mirror this machine's apt configuration names) scanned with the fixture
//! advisories, patched against that mirror, and read back by dpkg in a
//! chroot, runc, syft and trivy; its hardened variant patches the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sealcraft_oci::image::{Image, commit_image};
use sealcraft_oci::layout::Layout;
use serde_json::Value;

use super::aptrepo::dpkg_in;
use super::support::{run_tool, sealcraft, sealcraft_ok, umoci_unpack, workspace_root};

/// Packages moved back to older bookworm versions, `name=version`.
const DOWNGRADES: [&str; 8] = [
    "libc6=2.36-9+deb12u7",
    "libc-bin=2.36-9+deb12u7",
    "curl=7.88.1-10+deb12u5",
    "libcurl4=7.88.1-10+deb12u5",
    "openssl=3.0.17-1~deb12u2",
    "libssl3=3.0.17-1~deb12u2",
    "libsystemd0=252.38-1~deb12u1",
    "libudev1=252.38-1~deb12u1",
];

/// The archive URIs of this machine's deb822 apt sources, in order.
fn host_mirrors() -> Vec<(String, Vec<String>)> {
    let mut mirrors = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files
        .iter()
        .filter(|file| file.extension().is_some_and(|e| e == "sources"))
    {
        for paragraph in fs::read_to_string(file).unwrap().split("\n\n") {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|value| {
                        value
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            for uri in field("URIs:") {
                mirrors.push((uri, field("Suites:")));
            }
        }
    }
    assert!(
        !mirrors.is_empty(),
        "this test needs the machine's apt sources (deb822)"
    );
    mirrors
}

/// The aged rootfs tarball, built once per target directory (mmdebstrap, ~1 min).
fn aged_rootfs() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bookworm-aged-patch.tar");
    if path.exists() {
        return path;
    }
    let mut args: Vec<String> = [
        "--quiet",
        "--variant=minbase",
        "--include=ca-certificates,curl",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!(
        "--customize-hook=chroot \"$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades {}",
        DOWNGRADES.join(" ")
    ));
    args.push("--customize-hook=chroot \"$1\" apt-get clean".into());
    args.push(
        "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/etc/resolv.conf \"$1\"/etc/hostname"
            .into(),
    );
    args.push("--format=tar".into());
    args.push("bookworm".into());
    let partial = path.with_extension("partial");
    args.push(partial.display().to_string());
    for (uri, suites) in host_mirrors() {
        for suite in suites {
            args.push(format!("deb {uri} {suite} main"));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("mmdebstrap", &args);
    fs::rename(&partial, &path).unwrap();
    path
}

/// Imports the aged rootfs as `oci:DIR:aged` with `curl --version` as its entrypoint.
fn aged_image(layout_dir: &Path) {
    sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", aged_rootfs().display()),
        "--arch",
        "amd64",
        "-o",
        &format!("oci:{}:imported", layout_dir.display()),
    ]);
    let layout = Layout::open(layout_dir).unwrap();
    let image = Image::load(&layout, Some("imported"), None).unwrap();
    let mut config = image.config.clone();
    config.edit_runtime_config(|runtime| {
        runtime.entrypoint = Some(vec!["/usr/bin/curl".into(), "--version".into()]);
        runtime.env = Some(vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()]);
    });
    let descriptor = commit_image(
        &layout,
        &config,
        image.manifest.layers.clone(),
        BTreeMap::new(),
    )
    .unwrap();
    layout.tag("aged", &descriptor).unwrap();
}

/// The Trivy-format report of a scan with the fixture advisories (the gate's verdict is not the point).
fn scan(image: &str, report: &Path) -> Value {
    let db = workspace_root().join("crates/vuln/tests/data/osv");
    let output = sealcraft(
        &[
            "scan",
            image,
            "--db",
            &db.display().to_string(),
            "--output",
            &report.display().to_string(),
        ],
        &[],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&fs::read(report).unwrap()).unwrap()
}

/// `(vulnerability, package)` pairs.
type FindingKeys = BTreeSet<(String, String)>;

/// The os-pkgs findings, split into fixable and unfixed.
fn os_findings(report: &Value) -> (FindingKeys, FindingKeys) {
    let mut fixable = BTreeSet::new();
    let mut unfixed = BTreeSet::new();
    for result in report["Results"].as_array().into_iter().flatten() {
        if result["Class"] != "os-pkgs" {
            continue;
        }
        for vulnerability in result["Vulnerabilities"].as_array().into_iter().flatten() {
            let key = (
                vulnerability["VulnerabilityID"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                vulnerability["PkgName"].as_str().unwrap().to_owned(),
            );
            if vulnerability["FixedVersion"]
                .as_str()
                .unwrap_or("")
                .is_empty()
            {
                unfixed.insert(key);
            } else {
                fixable.insert(key);
            }
        }
    }
    (fixable, unfixed)
}

fn peer(variable: &str, name: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| name.to_owned())
}

/// `name version` of every deb package in a CycloneDX SBOM.
fn sbom_debs(path: &Path) -> BTreeMap<String, String> {
    let document: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    document["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|component| {
            component["purl"]
                .as_str()
                .is_some_and(|purl| purl.starts_with("pkg:deb/"))
        })
        .map(|component| {
            (
                component["name"].as_str().unwrap().to_owned(),
                component["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Patches `tag` with `report` against the image's or the machine's sources.
fn patch(layout: &Path, tag: &str, report: &Path, output: &str, cache: &Path) -> Value {
    sealcraft_ok(&[
        "patch",
        &format!("oci:{}:{tag}", layout.display()),
        "--report",
        &report.display().to_string(),
        "--output",
        &format!("oci:{}:{output}", layout.display()),
        "--cache-dir",
        &cache.display().to_string(),
        "--json",
    ])
}

fn updated_versions(patched: &Value) -> BTreeMap<String, String> {
    patched["report"]["updated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            (
                package["name"].as_str().unwrap().to_owned(),
                package["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_aged_bookworm_image_is_patched_against_the_debian_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    aged_image(&layout);
    let cache = dir.path().join("cache");

    let before = scan(
        &format!("oci:{}:aged", layout.display()),
        &dir.path().join("before.json"),
    );
    let (fixable_before, unfixed_before) = os_findings(&before);
    assert!(
        fixable_before.len() >= 5,
        "the aged image has fixable findings: {fixable_before:?}"
    );
    let patched = patch(
        &layout,
        "aged",
        &dir.path().join("before.json"),
        "patched",
        &cache,
    );
    assert_eq!(
        patched["report"]["sources"], "image",
        "{}",
        patched["report"]
    );
    let versions = updated_versions(&patched);
    for downgraded in DOWNGRADES {
        let name = downgraded.split('=').next().unwrap();
        assert!(
            versions.contains_key(name),
            "{name} was not updated: {versions:?}"
        );
    }

    // Rescanned: every fixable finding is gone, the unfixed ones stay.
    let after = scan(
        &format!("oci:{}:patched", layout.display()),
        &dir.path().join("after.json"),
    );
    let (fixable_after, unfixed_after) = os_findings(&after);
    assert!(fixable_after.is_empty(), "still fixable: {fixable_after:?}");
    assert_eq!(unfixed_after, unfixed_before);
    let fixed: BTreeSet<(String, String)> = patched["report"]["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fixed| {
            (
                fixed["id"].as_str().unwrap().to_owned(),
                fixed["package"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(fixed, fixable_before, "the report names every fix it made");

    // In a chroot, the image's own dpkg agrees with the patch.
    let root = umoci_unpack(&layout, "patched", &dir.path().join("bundle"));
    let audit = Command::new("chroot")
        .arg(&root)
        .args(["dpkg", "--audit"])
        .output()
        .unwrap();
    assert!(
        audit.status.success() && audit.stdout.is_empty(),
        "dpkg --audit: {}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    let listed = Command::new("chroot")
        .arg(&root)
        .args([
            "dpkg-query",
            "--show",
            "--showformat=${Package} ${Version} ${db:Status-Abbrev}\\n",
        ])
        .output()
        .unwrap();
    let listed: BTreeMap<String, (String, String)> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((
                parts.next()?.to_owned(),
                (
                    parts.next()?.to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                ),
            ))
        })
        .collect();
    for (name, version) in &versions {
        let name = name.split(':').next().unwrap();
        assert_eq!(
            listed.get(name),
            Some(&(version.clone(), "ii".to_owned())),
            "dpkg -l disagrees about {name}"
        );
    }
    let status = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let installed_in_status = status
        .split("\n\n")
        .filter(|paragraph| paragraph.contains("Status: install ok installed"))
        .count();
    assert_eq!(
        installed_in_status,
        listed.values().filter(|(_, state)| state == "ii").count(),
        "dpkg -l lists what the status file holds"
    );
    let (verify_ok, verify) = dpkg_in(&root, &["--verify"]);
    assert!(verify_ok, "dpkg --verify: {verify}");

    // The image still runs its entrypoint, now with the patched libraries.
    let bundle = dir.path().join("bundle");
    let config_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    fs::write(&config_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let run = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(format!("sealcraft-patch-{}", std::process::id()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.starts_with("curl 7.88.1"),
        "curl --version under runc: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // syft (the image, through its layers) and trivy (the unpacked rootfs) see the new versions.
    let single = dir.path().join("single");
    run_tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("oci:{}:patched", layout.display()),
            &format!("oci:{}:patched", single.display()),
        ],
    );
    let syft_sbom = dir.path().join("syft.cdx.json");
    let syft = Command::new(peer("SEALCRAFT_SYFT", "syft"))
        .args(["scan", &format!("oci-dir:{}", single.display()), "-q", "-o"])
        .arg(format!("cyclonedx-json={}", syft_sbom.display()))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("syft is needed (scripts/test installs it)");
    assert!(
        syft.status.success(),
        "{}",
        String::from_utf8_lossy(&syft.stderr)
    );
    let trivy_sbom = dir.path().join("trivy.cdx.json");
    let trivy = Command::new(peer("SEALCRAFT_TRIVY", "trivy"))
        .args(["rootfs", "--quiet", "--format", "cyclonedx", "--output"])
        .arg(&trivy_sbom)
        .arg(&root)
        .env("TRIVY_CACHE_DIR", dir.path().join("trivy-cache"))
        .output()
        .expect("trivy is needed (scripts/test installs it)");
    assert!(
        trivy.status.success(),
        "{}",
        String::from_utf8_lossy(&trivy.stderr)
    );
    let from_syft = sbom_debs(&syft_sbom);
    let from_trivy = sbom_debs(&trivy_sbom);
    for (name, version) in &versions {
        let name = name.split(':').next().unwrap();
        assert_eq!(from_syft.get(name), Some(version), "syft on {name}");
        assert_eq!(from_trivy.get(name), Some(version), "trivy on {name}");
    }

    // The hardened image (no apt, no dpkg) patches to the same versions.
    sealcraft_ok(&[
        "harden",
        &format!("oci:{}:aged", layout.display()),
        "--output",
        &format!("oci:{}:hardened", layout.display()),
    ]);
    let hardened_scan = scan(
        &format!("oci:{}:hardened", layout.display()),
        &dir.path().join("hardened.json"),
    );
    let hardened = patch(
        &layout,
        "hardened",
        &dir.path().join("hardened.json"),
        "hardened-patched",
        &cache,
    );
    let hardened_root = umoci_unpack(
        &layout,
        "hardened-patched",
        &dir.path().join("hardened-bundle"),
    );
    assert!(
        !hardened_root.join("usr/bin/dpkg").exists(),
        "hardening removed dpkg"
    );
    let hardened_versions = updated_versions(&hardened);
    for (name, version) in &hardened_versions {
        assert_eq!(
            versions.get(name),
            Some(version),
            "{name} differs from the unhardened patch"
        );
    }
    let (fixable_hardened, _) = os_findings(&hardened_scan);
    assert!(!fixable_hardened.is_empty());
    let rescanned = scan(
        &format!("oci:{}:hardened-patched", layout.display()),
        &dir.path().join("hardened-after.json"),
    );
    assert!(
        os_findings(&rescanned).0.is_empty(),
        "the hardened image still has fixable findings"
    );
    let (audit_ok, audit) = dpkg_in(&hardened_root, &["--audit"]);
    assert!(
        audit_ok && audit.trim().is_empty(),
        "dpkg --audit of the hardened image: {audit}"
    );
}
