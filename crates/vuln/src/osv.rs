//! OSV records and the OSV evaluation rules.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use sealcraft_inventory::{Inventory, Package, PackageType, normalize_python_name};
use serde::{Deserialize, Serialize};

use crate::version::{compare_rpm, parse_apk, parse_debian, parse_pep440, parse_semver};

/// An OSV record (the fields matching and reports use; others are ignored).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Advisory {
    /// The record id.
    pub id: String,
    /// Other ids of the same vulnerability.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer text.
    #[serde(default)]
    pub details: Option<String>,
    /// Set when the record was withdrawn.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Affected packages.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// CVSS vectors and the like.
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// Links.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Database-specific data (GHSA puts its severity here).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Affected {
    /// The package.
    pub package: AffectedPackage,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Explicit versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package severity.
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// Database-specific data.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    /// Ecosystem-specific data (Debian urgency).
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AffectedPackage {
    /// `Debian:12`, `PyPI`, `npm`, `crates.io`, `Go`, `Alpine:v3.19`, …
    pub ecosystem: String,
    /// The name in that ecosystem.
    pub name: String,
}

/// `ranges[]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One range event (exactly one field is set).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Event {
    /// Vulnerable from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// Fixed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Vulnerable up to and including here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// Upper limit of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// `severity[]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SeverityEntry {
    /// `CVSS_V3`, `CVSS_V4`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector or score.
    pub score: String,
}

/// `references[]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reference {
    /// Kind of link.
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL.
    pub url: String,
}

sealcraft_findings::codes! {
    /// Problems with advisory records; the rest of the database is still used.
    pub enum AdvisoryCode: domain "advisories", subject "record" {
        /// A record is not valid OSV JSON.
        MalformedRecord = "osv-malformed-record": "a record is not valid OSV JSON and was skipped",
        /// A range type other than ECOSYSTEM, SEMVER and GIT.
        UnknownRangeType = "osv-unknown-range-type": "a record uses a range type sealcraft does not evaluate",
        /// Versions a range names do not parse for its ecosystem.
        UnparsableVersion = "osv-unparsable-version": "a record's versions do not parse in their ecosystem's ordering",
    }
}

/// A problem with one record, named by id or file.
pub type RecordWarning = sealcraft_findings::Warning<AdvisoryCode>;

/// Two versions that cannot be ordered in an ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compare {first:?} and {second:?} as {ecosystem} versions")]
pub struct IncomparableVersions {
    /// The ecosystem.
    pub ecosystem: String,
    /// One version.
    pub first: String,
    /// The other.
    pub second: String,
}

/// The ecosystem and the name and version to match for a package.
pub fn match_key(package: &Package, inventory: &Inventory) -> Option<(String, String, String)> {
    Some(match package.kind {
        PackageType::Deb => {
            let os = inventory.os.as_ref()?;
            let ecosystem = match os.id.as_str() {
                "debian" => format!("Debian:{}", os.version_id.split('.').next().unwrap_or("")),
                "ubuntu" => format!("Ubuntu:{}", os.version_id),
                _ => return None,
            };
            // Debian advisories name source packages, as Debian's tracker and Trivy do.
            let (name, version) = package
                .source
                .as_ref()
                .map_or((package.name.clone(), package.version.clone()), |source| {
                    (source.name.clone(), source.version.clone())
                });
            (ecosystem, name, version)
        }
        PackageType::Apk => {
            let os = inventory.os.as_ref()?;
            let release: Vec<&str> = os.version_id.split('.').take(2).collect();
            (
                format!("Alpine:v{}", release.join(".")),
                package
                    .source
                    .as_ref()
                    .map_or(package.name.clone(), |source| source.name.clone()),
                package.version.clone(),
            )
        }
        PackageType::Pypi => (
            "PyPI".into(),
            normalize_python_name(&package.name),
            package.version.clone(),
        ),
        PackageType::Npm => ("npm".into(), package.name.clone(), package.version.clone()),
        PackageType::Cargo => (
            "crates.io".into(),
            package.name.clone(),
            package.version.clone(),
        ),
        PackageType::Golang => ("Go".into(), package.name.clone(), package.version.clone()),
        PackageType::Rpm => return None,
    })
}

/// The name an index keys a record's package by (PEP 503 for PyPI).
pub fn normalize_record_name(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" {
        normalize_python_name(name)
    } else {
        name.to_owned()
    }
}

/// Compares two versions of `ecosystem` (range type SEMVER forces SemVer).
pub fn compare(ecosystem: &str, range_kind: &str, a: &str, b: &str) -> Option<Ordering> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    if range_kind == "SEMVER" || matches!(base, "npm" | "crates.io" | "Go") {
        return Some(parse_semver(a).ok()?.cmp(&parse_semver(b).ok()?));
    }
    match base {
        "Debian" | "Ubuntu" => Some(parse_debian(a).ok()?.cmp(&parse_debian(b).ok()?)),
        "Alpine" => Some(parse_apk(a).ok()?.cmp(&parse_apk(b).ok()?)),
        "PyPI" => Some(parse_pep440(a).ok()?.cmp(&parse_pep440(b).ok()?)),
        "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" => Some(compare_rpm(a, b)),
        _ => (a == b).then_some(Ordering::Equal),
    }
}

/// The outcome of evaluating one `affected[]` entry against a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation {
    /// Not affected.
    NotAffected,
    /// Affected; the lowest fixed version above it, if any.
    Affected {
        /// The fix.
        fixed: Option<String>,
    },
}

/// OSV's evaluation: explicit versions, then each ECOSYSTEM/SEMVER range
/// with its events sorted by version (GIT ranges are ignored).
pub fn evaluate(affected: &Affected, version: &str) -> Result<Evaluation, IncomparableVersions> {
    let ecosystem = affected.package.ecosystem.as_str();
    let mut is_affected = affected.versions.iter().any(|listed| listed == version);
    let mut fixes: Vec<String> = Vec::new();
    for range in &affected.ranges {
        if range.kind != "ECOSYSTEM" && range.kind != "SEMVER" {
            continue;
        }
        let kind = range.kind.as_str();
        let order = |a: &str, b: &str| -> Result<Ordering, IncomparableVersions> {
            if a == "0" {
                return Ok(if b == "0" {
                    Ordering::Equal
                } else {
                    Ordering::Less
                });
            }
            if b == "0" {
                return Ok(Ordering::Greater);
            }
            compare(ecosystem, kind, a, b).ok_or_else(|| IncomparableVersions {
                ecosystem: ecosystem.to_owned(),
                first: a.to_owned(),
                second: b.to_owned(),
            })
        };
        let event_version = |event: &Event| {
            event
                .introduced
                .clone()
                .or_else(|| event.fixed.clone())
                .or_else(|| event.last_affected.clone())
                .or_else(|| event.limit.clone())
                .unwrap_or_default()
        };
        let mut events: Vec<&Event> = range.events.iter().collect();
        let mut failure = None;
        events.sort_by(|a, b| {
            order(&event_version(a), &event_version(b)).unwrap_or_else(|error| {
                failure.get_or_insert(error);
                Ordering::Equal
            })
        });
        if let Some(error) = failure {
            return Err(error);
        }
        let mut vulnerable = false;
        for event in &events {
            if let Some(introduced) = &event.introduced {
                if order(version, introduced)? != Ordering::Less {
                    vulnerable = true;
                }
            } else if let Some(fixed) = &event.fixed {
                if order(version, fixed)? != Ordering::Less {
                    vulnerable = false;
                }
            } else if let Some(last) = &event.last_affected
                && order(version, last)? == Ordering::Greater
            {
                vulnerable = false;
            }
        }
        if vulnerable {
            is_affected = true;
            for event in &events {
                if let Some(fixed) = &event.fixed
                    && order(fixed, version)? == Ordering::Greater
                {
                    fixes.push(fixed.clone());
                }
            }
        }
    }
    if !is_affected {
        return Ok(Evaluation::NotAffected);
    }
    let mut lowest: Option<String> = None;
    for fix in fixes {
        let lower = match &lowest {
            None => true,
            Some(current) => compare(ecosystem, "ECOSYSTEM", &fix, current) == Some(Ordering::Less),
        };
        if lower {
            lowest = Some(fix);
        }
    }
    Ok(Evaluation::Affected { fixed: lowest })
}

/// A set of advisories indexed by (ecosystem, normalised package name).
#[derive(Debug, Default)]
pub struct Database {
    advisories: Vec<Advisory>,
    index: HashMap<(String, String), Vec<usize>>,
}

impl Database {
    /// Indexes `advisories` (withdrawn ones are dropped).
    pub fn new(advisories: Vec<Advisory>) -> Self {
        let mut database = Self::default();
        for advisory in advisories {
            if advisory.withdrawn.is_some() {
                continue;
            }
            let position = database.advisories.len();
            let mut keys = BTreeSet::new();
            for affected in &advisory.affected {
                keys.insert((
                    affected.package.ecosystem.clone(),
                    normalize_record_name(&affected.package.ecosystem, &affected.package.name),
                ));
            }
            for key in keys {
                database.index.entry(key).or_default().push(position);
            }
            database.advisories.push(advisory);
        }
        database
    }

    /// Reads every `*.json` OSV file of a directory; bad files become warnings naming them.
    pub fn load_dir(directory: &Path) -> Result<(Self, Vec<RecordWarning>), std::io::Error> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(directory)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "json")
            })
            .collect();
        paths.sort();
        let mut advisories = Vec::new();
        let mut warnings = Vec::new();
        for path in paths {
            let bytes = std::fs::read(&path)?;
            match serde_json::from_slice::<Advisory>(&bytes) {
                Ok(advisory) => advisories.push(advisory),
                Err(error) => warnings.push(RecordWarning::new(
                    AdvisoryCode::MalformedRecord,
                    path.display().to_string(),
                    error.to_string(),
                )),
            }
        }
        Ok((Self::new(advisories), warnings))
    }

    /// Number of advisories.
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }
}

/// One vulnerability in one package.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The advisory id.
    pub id: String,
    /// Its aliases (merged across records of the same vulnerability).
    pub aliases: Vec<String>,
    /// The package as installed.
    pub package: String,
    /// The installed version.
    pub installed_version: String,
    /// The lowest fixed version, if a fix exists.
    pub fixed_version: Option<String>,
    /// The package type.
    pub package_type: PackageType,
    /// The package's purl.
    pub purl: String,
    /// The advisory's summary.
    pub summary: Option<String>,
    /// The severity level.
    pub severity: crate::severity::Severity,
    /// The highest CVSS v3 base score, when the advisory has a vector.
    pub cvss_score: Option<f64>,
    /// Reference URLs.
    pub references: Vec<String>,
    /// Where the package was found (its metadata file), when known.
    pub location: Option<String>,
}

impl Finding {
    /// The id reports lead with: a CVE alias when there is one (as Trivy does), else the record id.
    pub fn display_id(&self) -> &str {
        std::iter::once(&self.id)
            .chain(&self.aliases)
            .find(|id| id.starts_with("CVE-"))
            .unwrap_or(&self.id)
    }
}

/// Matches every package of `inventory` against `database`: one finding per
/// vulnerability per package, records that alias each other merged.
pub fn scan(inventory: &Inventory, database: &Database) -> (Vec<Finding>, Vec<RecordWarning>) {
    let mut findings: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    let mut warnings = Vec::new();
    for package in &inventory.packages {
        let Some((ecosystem, name, version)) = match_key(package, inventory) else {
            continue;
        };
        let Some(candidates) = database.index.get(&(ecosystem.clone(), name.clone())) else {
            continue;
        };
        for &position in candidates {
            let advisory = &database.advisories[position];
            for affected in advisory.affected.iter().filter(|affected| {
                affected.package.ecosystem == ecosystem
                    && normalize_record_name(&ecosystem, &affected.package.name) == name
            }) {
                let (severity, cvss_score) = crate::severity::of_advisory(advisory);
                match evaluate(affected, &version) {
                    Ok(Evaluation::NotAffected) => {}
                    Ok(Evaluation::Affected { fixed }) => {
                        // Records that share an id or alias describe one vulnerability.
                        let existing_key = findings
                            .iter()
                            .find(|((_, finding_package, finding_version), finding)| {
                                *finding_package == package.name
                                    && *finding_version == package.version
                                    && (finding.id == advisory.id
                                        || finding.aliases.contains(&advisory.id)
                                        || advisory.aliases.contains(&finding.id)
                                        || advisory
                                            .aliases
                                            .iter()
                                            .any(|alias| finding.aliases.contains(alias)))
                            })
                            .map(|(key, _)| key.clone());
                        match existing_key.and_then(|key| findings.get_mut(&key)) {
                            Some(finding) => {
                                for alias in
                                    advisory.aliases.iter().chain(std::iter::once(&advisory.id))
                                {
                                    if *alias != finding.id && !finding.aliases.contains(alias) {
                                        finding.aliases.push(alias.clone());
                                    }
                                }
                                finding.aliases.sort();
                                if finding.fixed_version.is_none() {
                                    finding.fixed_version = fixed;
                                }
                            }
                            None => {
                                findings.insert(
                                    (
                                        advisory.id.clone(),
                                        package.name.clone(),
                                        package.version.clone(),
                                    ),
                                    Finding {
                                        id: advisory.id.clone(),
                                        aliases: advisory.aliases.clone(),
                                        package: package.name.clone(),
                                        installed_version: package.version.clone(),
                                        fixed_version: fixed,
                                        package_type: package.kind,
                                        purl: package.purl.clone(),
                                        summary: advisory.summary.clone(),
                                        severity,
                                        cvss_score,
                                        references: advisory
                                            .references
                                            .iter()
                                            .map(|reference| reference.url.clone())
                                            .collect(),
                                        location: package.locations.first().cloned(),
                                    },
                                );
                            }
                        }
                    }
                    Err(error) => warnings.push(RecordWarning::new(
                        AdvisoryCode::UnparsableVersion,
                        advisory.id.clone(),
                        error.to_string(),
                    )),
                }
            }
        }
    }
    warnings.sort_by(|a, b| (&a.subject, &a.message).cmp(&(&b.subject, &b.message)));
    warnings.dedup();
    (findings.into_values().collect(), warnings)
}
