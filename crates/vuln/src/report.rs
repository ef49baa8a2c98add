//! Reports rendered from findings: Trivy-compatible JSON (what Copacetic
//! reads), a severity summary and the gate.

use std::collections::BTreeMap;

use sealcraft_inventory::{Inventory, PackageType};
use serde_json::{Value, json};

use crate::osv::Finding;
use crate::severity::Severity;

/// Trivy's class and type for a package type.
fn class_and_type(kind: PackageType, os_family: &str) -> (&'static str, String, &'static str) {
    match kind {
        PackageType::Deb | PackageType::Apk | PackageType::Rpm => {
            ("os-pkgs", os_family.to_owned(), "")
        }
        PackageType::Pypi => ("lang-pkgs", "python-pkg".into(), "Python"),
        PackageType::Npm => ("lang-pkgs", "node-pkg".into(), "Node.js"),
        PackageType::Cargo => ("lang-pkgs", "rust-binary".into(), "Rust"),
        PackageType::Golang => ("lang-pkgs", "gobinary".into(), "Go"),
    }
}

/// Findings as Trivy's JSON report (SchemaVersion 2).
pub fn trivy_json(
    findings: &[Finding],
    inventory: &Inventory,
    artifact_name: &str,
    created: &str,
) -> Value {
    let (family, os_name) = inventory
        .os
        .as_ref()
        .map_or((String::new(), String::new()), |os| {
            (
                os.id.clone(),
                os.full_version
                    .clone()
                    .unwrap_or_else(|| os.version_id.clone()),
            )
        });
    let mut results: BTreeMap<(String, String), (String, Vec<Value>)> = BTreeMap::new();
    for finding in findings {
        let (class, kind, language) = class_and_type(finding.package_type, &family);
        let target = if class == "os-pkgs" {
            format!("{artifact_name} ({family} {os_name})")
        } else {
            language.to_owned()
        };
        let vulnerability = json!({
            "VulnerabilityID": finding.display_id(),
            "PkgID": format!("{}@{}", finding.package, finding.installed_version),
            "PkgName": finding.package,
            "PkgIdentifier": {"PURL": finding.purl},
            "InstalledVersion": finding.installed_version,
            "FixedVersion": finding.fixed_version.clone().unwrap_or_default(),
            "Status": if finding.fixed_version.is_some() { "fixed" } else { "affected" },
            "SeveritySource": "osv",
            "Severity": finding.severity.name(),
            "Title": finding.summary.clone().unwrap_or_default(),
            "References": finding.references,
            "VendorIDs": std::iter::once(&finding.id).chain(&finding.aliases).filter(|id| id.as_str() != finding.display_id()).collect::<Vec<_>>(),
        });
        results
            .entry((class.to_owned(), kind.clone()))
            .or_insert_with(|| (target, Vec::new()))
            .1
            .push(vulnerability);
    }
    let results: Vec<Value> = results
        .into_iter()
        .map(|((class, kind), (target, vulnerabilities))| json!({"Target": target, "Class": class, "Type": kind, "Vulnerabilities": vulnerabilities}))
        .collect();
    json!({
        "SchemaVersion": 2,
        "CreatedAt": created,
        "ArtifactName": artifact_name,
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": family, "Name": os_name}},
        "Results": results,
    })
}

/// Counts by severity.
pub fn summary(findings: &[Finding]) -> BTreeMap<Severity, usize> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.severity).or_insert(0) += 1;
    }
    counts
}

/// The findings that fail a gate of `levels` (unfixed ones skipped when asked).
pub fn gate<'a>(
    findings: &'a [Finding],
    levels: &[Severity],
    ignore_unfixed: bool,
) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|finding| {
            levels.contains(&finding.severity)
                && !(ignore_unfixed && finding.fixed_version.is_none())
        })
        .collect()
}

/// SARIF 2.1.0 for code-scanning dashboards: one rule per vulnerability,
/// one result per affected package.
pub fn sarif(findings: &[Finding], artifact_name: &str, tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut results = Vec::new();
    for finding in findings {
        let id = finding.display_id().to_owned();
        let level = match finding.severity {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Unknown => "note",
        };
        let index = *rule_index.entry(id.clone()).or_insert_with(|| {
            let title = finding.summary.clone().unwrap_or_else(|| id.clone());
            let mut rule = json!({
                "id": id,
                "name": if matches!(finding.package_type, PackageType::Deb | PackageType::Apk | PackageType::Rpm) { "OsPackageVulnerability" } else { "LanguageSpecificPackageVulnerability" },
                "shortDescription": {"text": title},
                "fullDescription": {"text": title},
                "defaultConfiguration": {"level": level},
                "properties": {
                    "tags": ["vulnerability", "security", finding.severity.name()],
                    "precision": "very-high",
                },
            });
            if let Some(score) = finding.cvss_score {
                rule["properties"]["security-severity"] = Value::String(format!("{score:.1}"));
            }
            if let Some(url) = finding.references.first().filter(|url| url.starts_with("https://") || url.starts_with("http://")) {
                rule["helpUri"] = Value::String(url.clone());
            }
            rules.push(rule);
            rules.len() - 1
        });
        let text = format!(
            "Package: {}\nInstalled Version: {}\nVulnerability {}\nSeverity: {}\nFixed Version: {}",
            finding.package,
            finding.installed_version,
            id,
            finding.severity.name(),
            finding.fixed_version.as_deref().unwrap_or("(none)")
        );
        let uri = finding.location.as_deref().map_or_else(
            || artifact_name.to_owned(),
            |location| location.trim_start_matches('/').to_owned(),
        );
        results.push(json!({
            "ruleId": id,
            "ruleIndex": index,
            "level": level,
            "message": {"text": text},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": uri, "uriBaseId": "ROOTPATH"},
                    "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
                },
                "message": {"text": format!("{artifact_name}: {}@{}", finding.package, finding.installed_version)},
            }],
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sealcraft", "version": tool_version, "rules": rules}},
            "results": results,
            "columnKind": "utf16CodeUnits",
        }],
    })
}
