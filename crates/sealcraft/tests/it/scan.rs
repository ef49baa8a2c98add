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

#[test]
fn databases_import_from_directories_zips_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<PathBuf> = {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(database())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.sort();
        paths
    };
    // A zip laid out like osv.dev's all.zip, and the same records as JSON Lines, each with a bad record added.
    let zip_path = dir.path().join("all.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut lines = String::new();
    for path in &records {
        let bytes = std::fs::read(path).unwrap();
        zip.start_file(path.file_name().unwrap().to_string_lossy(), options)
            .unwrap();
        std::io::Write::write_all(&mut zip, &bytes).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        lines.push_str(&value.to_string());
        lines.push('\n');
    }
    zip.start_file("BROKEN-1.json", options).unwrap();
    std::io::Write::write_all(&mut zip, b"{\"id\": \"BROKEN-1\", \"affected\": 7}").unwrap();
    zip.finish().unwrap();
    lines.push_str("not json at all\n");
    let jsonl_path = dir.path().join("records.jsonl");
    std::fs::write(&jsonl_path, lines).unwrap();

    let image = import(dir.path(), "bookworm-aged.tar.gz");
    let truth = ground_truth();
    let known: BTreeSet<String> = truth["advisories"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (source, refused) in [
        (database(), 0),
        (zip_path.display().to_string(), 1),
        (jsonl_path.display().to_string(), 1),
    ] {
        let db = dir.path().join(format!(
            "db-{}",
            Path::new(&source).file_name().unwrap().to_string_lossy()
        ));
        let report = sealcraft_ok(&[
            "db",
            "import",
            &source,
            "--db",
            &db.display().to_string(),
            "--json",
        ]);
        assert_eq!(report["metadata"]["records"], 157, "{source}");
        assert_eq!(report["metadata"]["rejected"], refused, "{source}");
        let warnings = report["warnings"].as_array().unwrap();
        assert_eq!(
            warnings
                .iter()
                .filter(|warning| warning["code"] == "osv-malformed-record")
                .count(),
            refused
        );
        if refused > 0 {
            let named = warnings.iter().any(|warning| {
                warning["record"].as_str().unwrap().contains("BROKEN-1")
                    || warning["record"].as_str().unwrap().ends_with(":158")
            });
            assert!(named, "the bad record must be named: {warnings:?}");
        }
        let info = sealcraft_ok(&["db", "info", "--db", &db.display().to_string(), "--json"]);
        // 124 Debian records, 3 of them with no affected package (not affected in bookworm).
        assert_eq!(info["ecosystems"]["Debian"], 121);
        let output = sealcraft(
            &[
                "scan",
                "--db",
                &db.display().to_string(),
                &image,
                "--fail-on",
                "CRITICAL",
                "--json",
            ],
            &[],
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            matches(&report, &known),
            expected("aged"),
            "scan with the database imported from {source}"
        );
    }
    // Garbage in, clear error out; a directory that is no database is refused by name.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = sealcraft(
        &[
            "db",
            "import",
            &empty.display().to_string(),
            "--db",
            &dir.path().join("db-empty").display().to_string(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no valid OSV record"));
    let output = sealcraft(&["db", "info", "--db", &empty.display().to_string()], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a sealcraft advisory database"));
}

#[test]
fn sarif_reports_validate_against_the_sarif_schema() {
    let dir = tempfile::tempdir().unwrap();
    let image = import(dir.path(), "bookworm-aged.tar.gz");
    let sarif = dir.path().join("report.sarif");
    let output = sealcraft(
        &[
            "scan",
            "--db",
            &database(),
            &image,
            "--fail-on",
            "CRITICAL",
            "--sarif",
            &sarif.display().to_string(),
        ],
        &[],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let schema = std::env::var("SEALCRAFT_SARIF_SCHEMA")
        .unwrap_or_else(|_| "/opt/sealcraft-tools/sarif-2.1.0.json".to_owned());
    assert!(
        Path::new(&schema).is_file(),
        "the SARIF 2.1.0 schema is needed at {schema} (scripts/test installs it)"
    );
    let tool = std::env::var("SEALCRAFT_PYTHON_TOOLS").map_or_else(
        |_| "check-jsonschema".to_owned(),
        |directory| format!("{directory}/check-jsonschema"),
    );
    let validation = std::process::Command::new(&tool)
        .args(["--schemafile", &schema, &sarif.display().to_string()])
        .output()
        .expect("check-jsonschema is installed (scripts/test)");
    assert!(
        validation.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validation.stdout),
        String::from_utf8_lossy(&validation.stderr)
    );
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let results = document["runs"][0]["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        164 - 1,
        "one result per finding (two records of one urllib3 vulnerability are merged)"
    );
    assert!(
        results
            .iter()
            .all(|result| result["ruleIndex"].as_u64().is_some())
    );
}

#[test]
fn peer_sboms_of_the_aged_image_scan_to_the_ground_truth() {
    let truth = ground_truth();
    let known: BTreeSet<String> = truth["advisories"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let data = workspace().join("crates/sbom/tests/data");
    let (_, report) = scan(&[
        "--sbom",
        &data
            .join("trivy-0.59.1.aged.cdx.json")
            .display()
            .to_string(),
        "--fail-on",
        "CRITICAL",
    ]);
    assert_eq!(
        matches(&report, &known),
        expected("aged"),
        "trivy's SBOM of the aged image"
    );
    // syft 1.18.1 also lists perl and usrmerge, which dpkg has in state `rc` (removed):
    // its SBOM scans to the ground truth plus exactly the matches of perl itself.
    let (_, report) = scan(&[
        "--sbom",
        &data.join("syft-1.18.1.aged.cdx.json").display().to_string(),
        "--fail-on",
        "CRITICAL",
    ]);
    let found = matches(&report, &known);
    let expected = expected("aged");
    assert!(expected.is_subset(&found));
    let extra: BTreeSet<&str> = found
        .difference(&expected)
        .map(|(_, package)| package.as_str())
        .collect();
    assert_eq!(
        extra,
        BTreeSet::from(["perl"]),
        "{:?}",
        found.difference(&expected).collect::<Vec<_>>()
    );
}
