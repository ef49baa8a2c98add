//! Reading Trivy-format JSON reports (sealcraft's own or trivy's), as the
//! patch stage reads them: the OS, and per OS package the vulnerabilities
//! with a fixed version.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::severity::Severity;
use crate::version;

/// Why a report cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// It is not a Trivy report.
    #[error("not a Trivy JSON report")]
    NotJson(#[source] serde_json::Error),
    /// Its schema version is one sealcraft does not read.
    #[error("Trivy report SchemaVersion {0} (only 2 is read)")]
    Schema(u32),
    /// A version cannot be ordered.
    #[error("package {package}")]
    BadVersion {
        /// The package.
        package: String,
        /// Why.
        #[source]
        source: version::InvalidVersion,
    },
    /// A package name is not a Debian/Alpine/RPM package name.
    #[error("the report names a package {0:?} that is not a valid package name")]
    BadName(String),
}

/// A Trivy report, the parts that matter here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyReport {
    /// Format version (2).
    #[serde(default)]
    pub schema_version: u32,
    /// What was scanned.
    #[serde(default)]
    pub artifact_name: String,
    /// The OS and the image config.
    #[serde(default)]
    pub metadata: TrivyMetadata,
    /// One result per target and class.
    #[serde(default)]
    pub results: Vec<TrivyResult>,
}

/// `Metadata`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyMetadata {
    /// `OS`.
    #[serde(rename = "OS", default)]
    pub os: Option<TrivyOs>,
}

/// `Metadata.OS`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyOs {
    /// `debian`, `ubuntu`, `alpine`, …
    #[serde(default)]
    pub family: String,
    /// `12.8`.
    #[serde(default)]
    pub name: String,
}

/// One entry of `Results`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyResult {
    /// `os-pkgs`, `lang-pkgs`.
    #[serde(default)]
    pub class: String,
    /// Its vulnerabilities.
    #[serde(default)]
    pub vulnerabilities: Vec<TrivyVulnerability>,
}

/// One vulnerability of a package.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrivyVulnerability {
    /// `CVE-…`.
    #[serde(rename = "VulnerabilityID", default)]
    pub vulnerability_id: String,
    /// The binary package.
    #[serde(default)]
    pub pkg_name: String,
    /// As installed.
    #[serde(default)]
    pub installed_version: String,
    /// Empty when there is no fix.
    #[serde(default)]
    pub fixed_version: String,
    /// `CRITICAL`, `HIGH`, …
    #[serde(default)]
    pub severity: String,
    /// The package's identifiers.
    #[serde(default)]
    pub pkg_identifier: Option<TrivyIdentifier>,
}

/// `PkgIdentifier`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrivyIdentifier {
    /// The package's purl.
    #[serde(rename = "PURL", default)]
    pub purl: Option<String>,
}

/// A vulnerability of an OS package that has a fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FixableVulnerability {
    /// The vulnerability.
    pub id: String,
    /// The binary package.
    pub package: String,
    /// As installed when scanned.
    pub installed_version: String,
    /// The version that fixes it (Trivy may list several, comma-separated; the highest counts).
    pub fixed_version: String,
    /// Its severity.
    pub severity: Severity,
    /// The package's purl, when the report has one.
    pub purl: Option<String>,
}

/// What a report asks to update: per package the highest fixed version,
/// and every fixable vulnerability; how many findings have no fix.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpdateRequest {
    /// Package → the highest fixed version any of its vulnerabilities needs.
    pub packages: BTreeMap<String, String>,
    /// Every vulnerability with a fix.
    pub fixable: Vec<FixableVulnerability>,
    /// OS-package findings without a fix (nothing to patch).
    pub unfixed: usize,
}

/// Whether `name` is a package name a patcher may act on (Debian's rules,
/// which also cover apk and RPM names).
pub fn valid_package_name(name: &str) -> bool {
    name.len() <= 256
        && name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "+-.:~_".contains(ch))
}

impl TrivyReport {
    /// Parses a report.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        let report: Self = serde_json::from_slice(bytes).map_err(ReportError::NotJson)?;
        if report.schema_version != 2 {
            return Err(ReportError::Schema(report.schema_version));
        }
        Ok(report)
    }

    /// What the report asks to update: its `os-pkgs` vulnerabilities with
    /// a fixed version, the highest fixed version per package in the OS's
    /// version ordering; a version that cannot be ordered is an error.
    pub fn update_request(&self) -> Result<UpdateRequest, ReportError> {
        let family = self
            .metadata
            .os
            .as_ref()
            .map(|os| os.family.as_str())
            .unwrap_or_default();
        let mut request = UpdateRequest::default();
        for result in self
            .results
            .iter()
            .filter(|result| result.class == "os-pkgs")
        {
            for vulnerability in &result.vulnerabilities {
                if !valid_package_name(&vulnerability.pkg_name) {
                    return Err(ReportError::BadName(vulnerability.pkg_name.clone()));
                }
                let bad = |source| ReportError::BadVersion {
                    package: vulnerability.pkg_name.clone(),
                    source,
                };
                // Trivy writes "1.2-3, 1.3-1" when several releases fix it; the highest wins.
                let mut fixed: Option<&str> = None;
                for candidate in vulnerability
                    .fixed_version
                    .split(',')
                    .map(str::trim)
                    .filter(|version| !version.is_empty())
                {
                    if fixed.is_none_or(|best| {
                        compare_os_versions(family, candidate, best)
                            .is_ok_and(|order| order.is_gt())
                    }) {
                        compare_os_versions(family, candidate, candidate).map_err(bad)?;
                        fixed = Some(candidate);
                    }
                }
                let Some(fixed) = fixed else {
                    request.unfixed += 1;
                    continue;
                };
                match request.packages.get_mut(&vulnerability.pkg_name) {
                    Some(entry) => {
                        if compare_os_versions(family, fixed, entry)
                            .map_err(bad)?
                            .is_gt()
                        {
                            *entry = fixed.to_owned();
                        }
                    }
                    None => {
                        request
                            .packages
                            .insert(vulnerability.pkg_name.clone(), fixed.to_owned());
                    }
                }
                request.fixable.push(FixableVulnerability {
                    id: vulnerability.vulnerability_id.clone(),
                    package: vulnerability.pkg_name.clone(),
                    installed_version: vulnerability.installed_version.clone(),
                    fixed_version: fixed.to_owned(),
                    severity: Severity::parse(&vulnerability.severity).unwrap_or(Severity::Unknown),
                    purl: vulnerability
                        .pkg_identifier
                        .as_ref()
                        .and_then(|identifier| identifier.purl.clone()),
                });
            }
        }
        request.fixable.sort_by(|a, b| {
            (&a.package, &a.id, &a.installed_version).cmp(&(
                &b.package,
                &b.id,
                &b.installed_version,
            ))
        });
        request
            .fixable
            .dedup_by(|a, b| a.package == b.package && a.id == b.id);
        Ok(request)
    }
}

/// Orders versions with the ordering of the OS `family` (dpkg's unless
/// the family is an apk or RPM distribution).
pub fn compare_os_versions(
    family: &str,
    a: &str,
    b: &str,
) -> Result<std::cmp::Ordering, version::InvalidVersion> {
    Ok(match family {
        "alpine" | "wolfi" | "chainguard" => version::parse_apk(a)?.cmp(&version::parse_apk(b)?),
        "redhat" | "centos" | "rocky" | "alma" | "fedora" | "amazon" | "oracle" | "suse"
        | "opensuse" | "photon" | "azurelinux" | "cbl-mariner" => version::compare_rpm(a, b),
        _ => version::parse_debian(a)?.cmp(&version::parse_debian(b)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixable_os_packages_become_an_update_request() {
        let report = TrivyReport::parse(
            br#"{"SchemaVersion":2,"ArtifactName":"img","Metadata":{"OS":{"Family":"debian","Name":"12.5"}},
            "Results":[
              {"Target":"img (debian 12.5)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[
                {"VulnerabilityID":"CVE-1","PkgName":"libssl3","InstalledVersion":"3.0.11-1~deb12u1","FixedVersion":"3.0.11-1~deb12u2","Severity":"HIGH"},
                {"VulnerabilityID":"CVE-2","PkgName":"libssl3","InstalledVersion":"3.0.11-1~deb12u1","FixedVersion":"3.0.13-1~deb12u1, 3.0.9-1","Severity":"CRITICAL"},
                {"VulnerabilityID":"CVE-3","PkgName":"zlib1g","InstalledVersion":"1:1.2.13.dfsg-1","FixedVersion":"","Severity":"LOW"}]},
              {"Target":"Python","Class":"lang-pkgs","Vulnerabilities":[
                {"VulnerabilityID":"CVE-4","PkgName":"requests","InstalledVersion":"2.0","FixedVersion":"2.32.0"}]}]}"#,
        )
        .unwrap();
        let request = report.update_request().unwrap();
        assert_eq!(
            request.packages,
            BTreeMap::from([("libssl3".to_owned(), "3.0.13-1~deb12u1".to_owned())])
        );
        assert_eq!(request.fixable.len(), 2);
        assert_eq!(request.fixable[1].severity, Severity::Critical);
        assert_eq!(request.unfixed, 1);

        assert!(matches!(
            TrivyReport::parse(br#"{"SchemaVersion":1}"#),
            Err(ReportError::Schema(1))
        ));
        assert!(TrivyReport::parse(b"[]").is_err());
        let hostile = TrivyReport::parse(
            br#"{"SchemaVersion":2,"Results":[{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"x; rm -rf /","FixedVersion":"1"}]}]}"#,
        )
        .unwrap();
        assert!(matches!(
            hostile.update_request(),
            Err(ReportError::BadName(_))
        ));
    }
}
