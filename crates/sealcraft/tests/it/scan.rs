//! Scanning against the real advisories: images, directories and SBOMs
//! (sealcraft's, syft's, trivy's) give the ground-truth matches, and the
//! Trivy-format report yields Copacetic's update list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::{sealcraft, sealcraft_ok};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn database() -> String {
    workspace()
        .join("crates/vuln/tests/data/osv")
        .display()
        .to_string()
}

fn ground_truth() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(workspace().join("crates/vuln/tests/data/expected-matches.json")).unwrap(),
    )
    .unwrap()
}

fn expected(inventory: &str) -> BTreeSet<(String, String)> {
    let truth = ground_truth();
    let mut set = BTreeSet::new();
    for (id, advisory) in truth["advisories"].as_object().unwrap() {
        for matched in advisory["matches"][inventory]
            .as_array()
            .into_iter()
            .flatten()
        {
            set.insert((
                id.clone(),
                matched["package"].as_str().unwrap().to_lowercase(),
            ));
        }
    }
    set
}

/// (record id, package) pairs in a Trivy-format report: a vulnerability stands for its id and vendor ids.
fn matches(report: &serde_json::Value, known_ids: &BTreeSet<String>) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for result in report["Results"].as_array().unwrap() {
        for vulnerability in result["Vulnerabilities"].as_array().unwrap() {
            let package = vulnerability["PkgName"].as_str().unwrap().to_lowercase();
            let ids = std::iter::once(&vulnerability["VulnerabilityID"])
                .chain(vulnerability["VendorIDs"].as_array().unwrap());
            for id in ids
                .filter_map(serde_json::Value::as_str)
                .filter(|id| known_ids.contains(*id))
            {
                set.insert((id.to_owned(), package.clone()));
            }
        }
    }
    set
}

fn import(dir: &Path, tarball: &str) -> String {
    let layout = dir.join(tarball);
    let source = workspace()
        .join("crates/inventory/tests/data")
        .join(tarball);
    sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", source.display()),
        "--output",
        &format!("oci:{}:fixture", layout.display()),
        "--json",
    ]);
    format!("oci:{}:fixture", layout.display())
}

fn scan(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut full = vec!["scan", "--db"];
    let db = database();
    full.push(&db);
    full.extend(args);
    full.push("--json");
    let output = sealcraft(&full, &[]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "scan {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code(),
        serde_json::from_slice(&output.stdout).unwrap(),
    )
}

#[test]
fn images_and_sboms_give_the_ground_truth_matches() {
    let dir = tempfile::tempdir().unwrap();
    let truth = ground_truth();
    let known: BTreeSet<String> = truth["advisories"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (inventory, tarball) in [
        ("current", "bookworm-current.tar.gz"),
        ("aged", "bookworm-aged.tar.gz"),
    ] {
        let image = import(dir.path(), tarball);
        let (code, report) = scan(&[&image, "--fail-on", "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"]);
        assert_eq!(
            matches(&report, &known),
            expected(inventory),
            "{inventory}: image scan"
        );
        assert_eq!(
            code,
            Some(1),
            "findings at every level must fail an all-levels gate"
        );
        assert_eq!(report["SchemaVersion"], 2);
        assert_eq!(report["Metadata"]["OS"]["Family"], "debian");

        // The SBOM sealcraft writes for the image scans to the same matches.
        let out = dir.path().join(format!("sbom-{inventory}"));
        sealcraft_ok(&[
            "sbom",
            &image,
            "--name",
            "fixture",
            "-o",
            &out.display().to_string(),
            "--json",
        ]);
        for format in ["cyclonedx", "spdx"] {
            let sbom = out
                .join(format!("sbom-fixture-{format}.json"))
                .display()
                .to_string();
            let (_, report) = scan(&["--sbom", &sbom, "--fail-on", "CRITICAL"]);
            assert_eq!(
                matches(&report, &known),
                expected(inventory),
                "{inventory}: scan of sealcraft's {format} SBOM"
            );
        }
    }
    // syft's and trivy's SBOMs of the current fixture.
    for file in ["syft-1.18.1.dir.cdx.json", "trivy-0.59.1.rootfs.cdx.json"] {
        let sbom = workspace()
            .join("crates/sbom/tests/data")
            .join(file)
            .display()
            .to_string();
        let (_, report) = scan(&["--sbom", &sbom, "--fail-on", "CRITICAL"]);
        assert_eq!(
            matches(&report, &known),
            expected("current"),
            "scan of {file}"
        );
    }
}

#[test]
fn the_gate_follows_the_levels_and_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let image = import(dir.path(), "bookworm-current.tar.gz");
    let (code, report) = scan(&[&image, "--fail-on", "CRITICAL"]);
    let severities: Vec<&str> = report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|result| result["Vulnerabilities"].as_array().unwrap())
        .map(|vulnerability| vulnerability["Severity"].as_str().unwrap())
        .collect();
    let critical = severities
        .iter()
        .filter(|severity| **severity == "CRITICAL")
        .count();
    assert_eq!(
        code,
        Some(if critical > 0 { 1 } else { 0 }),
        "{severities:?}"
    );
    // On the current image every Debian finding is unfixed: ignoring unfixed ones keeps only language findings.
    let (_, report) = scan(&[&image, "--fail-on", "CRITICAL", "--ignore-unfixed"]);
    assert!(
        report["Results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|result| result["Class"] == "os-pkgs"),
        "the report still lists unfixed findings"
    );
    let output = sealcraft(
        &["scan", "--db", &dir.path().display().to_string(), &image],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no OSV records"));
}

#[test]
fn copacetic_rules_on_the_report_give_the_right_update_list() {
    let dir = tempfile::tempdir().unwrap();
    let image = import(dir.path(), "bookworm-aged.tar.gz");
    let (_, report) = scan(&[&image, "--fail-on", "CRITICAL"]);
    // Copacetic: os-pkgs results, non-empty FixedVersion, the highest fixed version per package.
    let mut updates: BTreeMap<String, String> = BTreeMap::new();
    for result in report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|result| result["Class"] == "os-pkgs")
    {
        for vulnerability in result["Vulnerabilities"].as_array().unwrap() {
            let fixed = vulnerability["FixedVersion"].as_str().unwrap();
            if fixed.is_empty() {
                continue;
            }
            let package = vulnerability["PkgName"].as_str().unwrap().to_owned();
            let higher = updates
                .get(&package)
                .is_none_or(|current| dpkg_greater(fixed, current));
            if higher {
                updates.insert(package, fixed.to_owned());
            }
        }
    }
    // The same list from the ground truth, computed with dpkg itself: per match the lowest
    // fix (what a report's FixedVersion is), per package the highest of those.
    let truth = ground_truth();
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (id, advisory) in truth["advisories"].as_object().unwrap() {
        if !id.starts_with("DEBIAN-") {
            continue;
        }
        for matched in advisory["matches"]["aged"].as_array().into_iter().flatten() {
            let fixes: Vec<&str> = matched["fixed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            let Some(lowest) = fixes
                .iter()
                .copied()
                .reduce(|a, b| if dpkg_greater(a, b) { b } else { a })
            else {
                continue;
            };
            let package = matched["package"].as_str().unwrap().to_owned();
            if expected
                .get(&package)
                .is_none_or(|current| dpkg_greater(lowest, current))
            {
                expected.insert(package, lowest.to_owned());
            }
        }
    }
    assert_eq!(updates, expected);
    assert!(updates.contains_key("libssl3"), "{updates:?}");
}

/// `dpkg --compare-versions a gt b`, from the real dpkg.
fn dpkg_greater(a: &str, b: &str) -> bool {
    std::process::Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .unwrap()
        .success()
}
