//! `scan --vex`: OpenVEX statements (written here from the OpenVEX v0.2.0
//! specification) suppress exactly the findings they name, for the image
//! they name, and the report says which and why.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{sealcraft, sealcraft_ok, workspace_root};

fn statement(vulnerability: &str, product: &str, subcomponents: &[&str], status: &str) -> Value {
    let mut statement = json!({
        "vulnerability": {"name": vulnerability},
        "products": [{
            "@id": product,
            "subcomponents": subcomponents.iter().map(|purl| json!({"@id": purl})).collect::<Vec<_>>(),
        }],
        "status": status,
    });
    match status {
        "not_affected" => statement["justification"] = "vulnerable_code_not_in_execute_path".into(),
        "affected" => statement["action_statement"] = "upgrade when the next release lands".into(),
        _ => {}
    }
    statement
}

fn document(statements: Vec<Value>) -> Value {
    json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://vex.example.invalid/statements/1",
        "author": "Platform Security <security@example.invalid>",
        "timestamp": "2026-11-30T12:00:00Z",
        "version": 1,
        "statements": statements,
    })
}

/// `(id, package)` of every finding in a Trivy-format report.
fn findings(report: &Value) -> Vec<(String, String)> {
    report["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|result| {
            result["Vulnerabilities"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|finding| {
            (
                finding["VulnerabilityID"].as_str().unwrap().to_owned(),
                finding["PkgName"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn scan(image: &str, vex: &[&Path]) -> Value {
    let db = workspace_root().join("crates/vuln/tests/data/osv");
    let mut args = vec![
        "scan".to_owned(),
        image.to_owned(),
        "--db".into(),
        db.display().to_string(),
        "--json".into(),
    ];
    for path in vex {
        args.push("--vex".into());
        args.push(path.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = sealcraft(&args, &[]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn vex_statements_suppress_what_they_name_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = workspace_root().join("crates/inventory/tests/data/bookworm-aged.tar.gz");
    let layout = dir.path().join("layout");
    let image = format!("oci:{}:aged", layout.display());
    let imported = sealcraft_ok(&[
        "image",
        "import",
        &format!("rootfs:{}", rootfs.display()),
        "--arch",
        "amd64",
        "-o",
        &image,
        "--json",
    ]);
    let digest = crate::support::field(&imported, "digest");
    let product = format!("pkg:oci/aged@{}", digest.replace(':', "%3A"));
    let other =
        "pkg:oci/aged@sha256%3A0000000000000000000000000000000000000000000000000000000000000000";
    let plain = scan(&image, &[]);
    let before = findings(&plain);
    for expected in [
        ("CVE-2025-9230", "libssl3"),
        ("CVE-2025-9230", "openssl"),
        ("CVE-2024-2004", "curl"),
        ("CVE-2024-2004", "libcurl4"),
        ("CVE-2025-4802", "libc6"),
        ("CVE-2025-0395", "libc6"),
    ] {
        assert!(
            before.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "the unsuppressed scan finds {expected:?}"
        );
    }
    assert!(
        plain.get("VexSuppressed").is_none(),
        "no VEX, no suppression list"
    );

    let vex = dir.path().join("team.openvex.json");
    fs::write(
        &vex,
        serde_json::to_vec_pretty(&document(vec![
            // Only the library's finding, by its purl.
            statement(
                "CVE-2025-9230",
                &product,
                &["pkg:deb/debian/libssl3"],
                "not_affected",
            ),
            // Every package of the image.
            statement("CVE-2024-2004", &product, &[], "fixed"),
            // Another image: does not apply here.
            statement("CVE-2025-4802", other, &[], "not_affected"),
            // Affected suppresses nothing.
            statement("CVE-2025-0395", &product, &[], "affected"),
        ]))
        .unwrap(),
    )
    .unwrap();
    let filtered = scan(&image, &[&vex]);
    let after = findings(&filtered);
    let gone: Vec<(String, String)> = before
        .iter()
        .filter(|finding| !after.contains(finding))
        .cloned()
        .collect();
    let expected: Vec<(String, String)> = [
        ("CVE-2024-2004", "curl"),
        ("CVE-2024-2004", "libcurl4"),
        ("CVE-2025-9230", "libssl3"),
    ]
    .iter()
    .map(|(id, package)| ((*id).to_owned(), (*package).to_owned()))
    .collect();
    let mut gone_sorted = gone.clone();
    gone_sorted.sort();
    assert_eq!(gone_sorted, expected);
    let suppressed: Vec<(String, String, String)> = filtered["VexSuppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["vulnerability"].as_str().unwrap().to_owned(),
                entry["package"].as_str().unwrap().to_owned(),
                entry["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(suppressed.len(), 3, "{suppressed:?}");
    assert!(
        suppressed
            .iter()
            .any(|(id, package, reason)| id == "CVE-2025-9230"
                && package == "libssl3"
                && reason.contains("vulnerable_code_not_in_execute_path")),
        "{suppressed:?}"
    );

    // A document that is not OpenVEX is an error, not an empty set of statements.
    let bad = dir.path().join("bad.json");
    fs::write(
        &bad,
        br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": "none"}"#,
    )
    .unwrap();
    let db = workspace_root().join("crates/vuln/tests/data/osv");
    let output = sealcraft(
        &[
            "scan",
            &image,
            "--db",
            &db.display().to_string(),
            "--vex",
            &bad.display().to_string(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.json"));
}
