//! OpenVEX v0.2.0: documents written (one `fixed` statement per
//! vulnerability a patch fixed) and applied to findings (`not_affected`
//! and `fixed` statements suppress what they name, and say why).
//!
//! A statement applies to a finding when its vulnerability names the
//! finding's id or one of its aliases, one of its products is the scanned
//! artifact (the image digest in a `pkg:oci` purl or a `sha-256` hash, or,
//! for a product without a version, the same name), and, when the product
//! lists subcomponents, one of them is the finding's package. Of the
//! statements that apply, the latest decides; `affected` and
//! `under_investigation` keep the finding.

use std::collections::{BTreeMap, BTreeSet};

use sealcraft_inventory::Purl;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::osv::Finding;

/// The context of v0.2.0 documents.
pub const CONTEXT: &str = "https://openvex.dev/ns/v0.2.0";

/// Why a VEX document cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VexError {
    /// Not an OpenVEX document of a version sealcraft reads.
    #[error("not an OpenVEX v0.2.0 document")]
    NotVex(#[source] serde_json::Error),
    /// The `@context` is another specification or version.
    #[error("@context {0:?} is not OpenVEX v0.2.0 ({CONTEXT})")]
    Context(String),
    /// A `not_affected` statement without a justification or an impact statement.
    #[error(
        "the not_affected statement about {0} has neither a justification nor an impact_statement"
    )]
    Unjustified(String),
    /// A document without statements.
    #[error("the document has no statements")]
    NoStatements,
    /// A timestamp is not RFC 3339.
    #[error("timestamp {0:?} is not an RFC 3339 date-time")]
    BadTimestamp(String),
}

/// A VEX document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VexDocument {
    /// `https://openvex.dev/ns/v0.2.0`.
    #[serde(rename = "@context")]
    pub context: String,
    /// The document's IRI.
    #[serde(rename = "@id")]
    pub id: String,
    /// Who wrote it.
    pub author: String,
    /// The author's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// When it was written (RFC 3339).
    pub timestamp: String,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Its version (1 and up).
    pub version: u64,
    /// What wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tooling: Option<String>,
    /// Its statements.
    pub statements: Vec<VexStatement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VexStatement {
    /// Its IRI.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The vulnerability.
    pub vulnerability: VexVulnerability,
    /// When it was made (the document's timestamp otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// What it is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<VexProduct>,
    /// The status.
    pub status: VexStatus,
    /// Who supplies the product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// Notes on the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_notes: Option<String>,
    /// Why it is not affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<VexJustification>,
    /// How it is not affected, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_statement: Option<String>,
    /// What to do, when affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_statement: Option<String>,
    /// When that was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_statement_timestamp: Option<String>,
}

/// The vulnerability of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VexVulnerability {
    /// Its IRI.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `CVE-2024-1234`.
    pub name: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A product or subcomponent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VexProduct {
    /// Its IRI (often a purl).
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `purl`, `cpe22`, `cpe23`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identifiers: BTreeMap<String, String>,
    /// `sha-256` and the other algorithms.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hashes: BTreeMap<String, String>,
    /// Components inside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcomponents: Vec<VexProduct>,
}

/// A statement's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    /// Not affected (with a justification).
    NotAffected,
    /// Affected (with an action statement).
    Affected,
    /// Fixed.
    Fixed,
    /// Not known yet.
    UnderInvestigation,
}

impl VexStatus {
    /// The name the specification uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotAffected => "not_affected",
            Self::Affected => "affected",
            Self::Fixed => "fixed",
            Self::UnderInvestigation => "under_investigation",
        }
    }
}

/// Why a product is not affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexJustification {
    /// The component is not there.
    ComponentNotPresent,
    /// The vulnerable code is not there.
    VulnerableCodeNotPresent,
    /// It never runs.
    VulnerableCodeNotInExecutePath,
    /// An adversary cannot reach it.
    VulnerableCodeCannotBeControlledByAdversary,
    /// Mitigations exist.
    InlineMitigationsAlreadyExist,
}

impl VexDocument {
    /// Parses and checks a document.
    pub fn parse(bytes: &[u8]) -> Result<Self, VexError> {
        let document: Self = serde_json::from_slice(bytes).map_err(VexError::NotVex)?;
        if document.context != CONTEXT {
            return Err(VexError::Context(document.context));
        }
        if document.statements.is_empty() {
            return Err(VexError::NoStatements);
        }
        unix_seconds(&document.timestamp)?;
        for statement in &document.statements {
            if let Some(timestamp) = &statement.timestamp {
                unix_seconds(timestamp)?;
            }
            if statement.status == VexStatus::NotAffected
                && statement.justification.is_none()
                && statement.impact_statement.is_none()
            {
                return Err(VexError::Unjustified(statement.vulnerability.name.clone()));
            }
        }
        Ok(document)
    }

    /// `https://openvex.dev/docs/public/vex-<sha256>` of the document's
    /// canonical form: the timestamp, version and author, then each
    /// statement (vulnerability, aliases, status, justification, time and
    /// products, every list sorted), so equal content gets an equal id.
    pub fn canonical_id(&self) -> String {
        let document_time = unix_seconds(&self.timestamp).unwrap_or(0);
        let mut text = format!("{document_time}:{}:{}", self.version, self.author);
        let mut statements: Vec<String> = self
            .statements
            .iter()
            .map(|statement| {
                let mut aliases = statement.vulnerability.aliases.clone();
                aliases.sort();
                let time = statement
                    .timestamp
                    .as_deref()
                    .and_then(|timestamp| unix_seconds(timestamp).ok())
                    .unwrap_or(document_time);
                let mut part = format!(
                    ":{}:{}:{}:{}:{}:{time}",
                    statement.vulnerability.id.as_deref().unwrap_or(""),
                    statement.vulnerability.name,
                    aliases.join(":"),
                    statement.status.name(),
                    statement
                        .justification
                        .and_then(|justification| serde_json::to_value(justification).ok())
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
                let mut products: Vec<String> =
                    statement.products.iter().map(product_key).collect();
                products.sort();
                for product in products {
                    part.push_str(&product);
                }
                part
            })
            .collect();
        statements.sort();
        for statement in statements {
            text.push_str(&statement);
        }
        format!(
            "https://openvex.dev/docs/public/vex-{}",
            hex::encode(Sha256::digest(text.as_bytes()))
        )
    }
}

fn product_key(product: &VexProduct) -> String {
    let mut key = format!(":{}", product.id.as_deref().unwrap_or(""));
    for (algorithm, hash) in &product.hashes {
        key.push_str(&format!(":{algorithm}@{hash}"));
    }
    for (kind, identifier) in &product.identifiers {
        key.push_str(&format!(":{kind}@{identifier}"));
    }
    let mut subcomponents: Vec<String> = product.subcomponents.iter().map(product_key).collect();
    subcomponents.sort();
    for subcomponent in subcomponents {
        key.push_str(&subcomponent);
    }
    key
}

fn unix_seconds(timestamp: &str) -> Result<i64, VexError> {
    time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .map(|moment| moment.unix_timestamp())
        .map_err(|_| VexError::BadTimestamp(timestamp.to_owned()))
}

/// `pkg:oci/<name>@sha256%3A<hex>?repository_url=<registry/repository>`:
/// the purl of an image by digest (no repository for an image in a layout).
pub fn oci_purl(repository: Option<&str>, digest: &str) -> String {
    let name = repository
        .and_then(|repository| repository.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .unwrap_or("image");
    let mut purl = format!(
        "pkg:oci/{}@{}",
        sealcraft_inventory::purl_encode(name),
        sealcraft_inventory::purl_encode(digest).replace(':', "%3A")
    );
    if let Some(repository) = repository {
        purl.push_str("?repository_url=");
        purl.push_str(&sealcraft_inventory::purl_encode(repository).replace("%2F", "/"));
    }
    purl
}

/// One fixed vulnerability, for the document a patch writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedComponent {
    /// The vulnerability.
    pub vulnerability: String,
    /// The purl of the package as installed after the fix.
    pub purl: String,
}

/// Who writes a document and when.
#[derive(Debug, Clone)]
pub struct VexAuthorship {
    /// The author (an IRI, an email or a name).
    pub author: String,
    /// The tool (`sealcraft 0.1.0`).
    pub tooling: String,
    /// RFC 3339.
    pub timestamp: String,
}

/// The document saying that the image `product_purl` has each of `fixed`
/// fixed, one statement per vulnerability with its packages as
/// subcomponents; `None` when nothing was fixed.
pub fn fixed_document(
    product_purl: &str,
    image_sha256: &str,
    fixed: &[FixedComponent],
    authorship: &VexAuthorship,
) -> Option<VexDocument> {
    let mut by_vulnerability: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for component in fixed {
        by_vulnerability
            .entry(&component.vulnerability)
            .or_default()
            .insert(&component.purl);
    }
    if by_vulnerability.is_empty() {
        return None;
    }
    let statements = by_vulnerability
        .into_iter()
        .map(|(vulnerability, purls)| VexStatement {
            id: None,
            version: None,
            vulnerability: VexVulnerability {
                id: None,
                name: vulnerability.to_owned(),
                description: None,
                aliases: Vec::new(),
            },
            timestamp: None,
            last_updated: None,
            products: vec![VexProduct {
                id: Some(product_purl.to_owned()),
                identifiers: BTreeMap::from([("purl".to_owned(), product_purl.to_owned())]),
                hashes: BTreeMap::from([("sha-256".to_owned(), image_sha256.to_owned())]),
                subcomponents: purls
                    .into_iter()
                    .map(|purl| VexProduct {
                        id: Some(purl.to_owned()),
                        identifiers: BTreeMap::from([("purl".to_owned(), purl.to_owned())]),
                        hashes: BTreeMap::new(),
                        subcomponents: Vec::new(),
                    })
                    .collect(),
            }],
            status: VexStatus::Fixed,
            supplier: None,
            status_notes: Some("the package was updated to a version with the fix".into()),
            justification: None,
            impact_statement: None,
            action_statement: None,
            action_statement_timestamp: None,
        })
        .collect();
    let mut document = VexDocument {
        context: CONTEXT.to_owned(),
        id: String::new(),
        author: authorship.author.clone(),
        role: None,
        timestamp: authorship.timestamp.clone(),
        last_updated: None,
        version: 1,
        tooling: Some(authorship.tooling.clone()),
        statements,
    };
    document.id = document.canonical_id();
    Some(document)
}

/// The artifact a scan is about, as VEX products name it.
#[derive(Debug, Clone, Default)]
pub struct ScannedArtifact {
    /// Its manifest digest (`sha256:…`), when known.
    pub digest: Option<String>,
    /// Its name (the repository's last path segment, or the SBOM's name).
    pub name: Option<String>,
}

/// A finding a statement suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// The finding's id as reported.
    pub vulnerability: String,
    /// The package.
    pub package: String,
    /// Its installed version.
    pub installed_version: String,
    /// `not_affected` or `fixed`.
    pub status: VexStatus,
    /// The justification or impact statement, or the status notes.
    pub reason: String,
    /// The document it came from.
    pub document: String,
}

fn digest_of(product: &VexProduct) -> BTreeSet<String> {
    let mut digests = BTreeSet::new();
    if let Some(hash) = product.hashes.get("sha-256") {
        digests.insert(format!("sha256:{}", hash.to_ascii_lowercase()));
    }
    for text in product.id.iter().chain(product.identifiers.get("purl")) {
        if let Some(purl) = Purl::parse(text)
            && purl.kind == "oci"
            && let Some(version) = purl.version
        {
            digests.insert(version.to_ascii_lowercase());
        }
    }
    digests
}

fn names_artifact(product: &VexProduct, artifact: &ScannedArtifact) -> bool {
    let digests = digest_of(product);
    if let Some(digest) = &artifact.digest
        && digests.contains(&digest.to_ascii_lowercase())
    {
        return true;
    }
    if !digests.is_empty() {
        return false;
    }
    // A product without a digest names an image by name, whatever its version.
    product
        .id
        .iter()
        .chain(product.identifiers.get("purl"))
        .filter_map(|text| Purl::parse(text))
        .any(|purl| purl.kind == "oci" && artifact.name.as_deref() == Some(purl.name.as_str()))
}

fn names_package(subcomponent: &VexProduct, finding: &Finding) -> bool {
    let Some(package) = Purl::parse(&finding.purl) else {
        return false;
    };
    subcomponent
        .id
        .iter()
        .chain(subcomponent.identifiers.get("purl"))
        .filter_map(|text| Purl::parse(text))
        .any(|named| {
            named.kind == package.kind
                && named.namespace == package.namespace
                && named.name == package.name
                && named
                    .version
                    .as_ref()
                    .is_none_or(|version| Some(version) == package.version.as_ref())
                && named.qualifiers.get("arch").is_none_or(|arch| {
                    package
                        .qualifiers
                        .get("arch")
                        .is_none_or(|installed| installed == arch)
                })
        })
}

fn names_vulnerability(vulnerability: &VexVulnerability, finding: &Finding) -> bool {
    let ids: BTreeSet<&str> = std::iter::once(finding.id.as_str())
        .chain(finding.aliases.iter().map(String::as_str))
        .collect();
    std::iter::once(&vulnerability.name)
        .chain(&vulnerability.aliases)
        .chain(&vulnerability.id)
        .any(|name| {
            ids.contains(name.as_str())
                || ids.contains(name.rsplit('/').next().unwrap_or(name.as_str()))
        })
}

/// Applies `documents` to `findings`: what stays, and what was suppressed and why.
pub fn apply(
    findings: Vec<Finding>,
    documents: &[(String, VexDocument)],
    artifact: &ScannedArtifact,
) -> (Vec<Finding>, Vec<Suppression>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for finding in findings {
        let mut decision: Option<(i64, &VexStatement, &str)> = None;
        for (name, document) in documents {
            let document_time = unix_seconds(&document.timestamp).unwrap_or(0);
            for statement in &document.statements {
                if !names_vulnerability(&statement.vulnerability, &finding) {
                    continue;
                }
                let applies = statement.products.iter().any(|product| {
                    names_artifact(product, artifact)
                        && (product.subcomponents.is_empty()
                            || product
                                .subcomponents
                                .iter()
                                .any(|subcomponent| names_package(subcomponent, &finding)))
                });
                if !applies {
                    continue;
                }
                let time = statement
                    .timestamp
                    .as_deref()
                    .and_then(|timestamp| unix_seconds(timestamp).ok())
                    .unwrap_or(document_time);
                if decision.is_none_or(|(latest, _, _)| time >= latest) {
                    decision = Some((time, statement, name.as_str()));
                }
            }
        }
        match decision {
            Some((_, statement, document))
                if matches!(statement.status, VexStatus::NotAffected | VexStatus::Fixed) =>
            {
                let reason = statement
                    .justification
                    .and_then(|justification| serde_json::to_value(justification).ok())
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .or_else(|| statement.impact_statement.clone())
                    .or_else(|| statement.status_notes.clone())
                    .unwrap_or_else(|| statement.status.name().to_owned());
                suppressed.push(Suppression {
                    vulnerability: finding.display_id().to_owned(),
                    package: finding.package.clone(),
                    installed_version: finding.installed_version.clone(),
                    status: statement.status,
                    reason,
                    document: document.to_owned(),
                });
            }
            _ => kept.push(finding),
        }
    }
    (kept, suppressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::severity::Severity;
    use sealcraft_inventory::PackageType;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn finding(id: &str, package: &str, version: &str) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec![format!("DEBIAN-{id}")],
            package: package.into(),
            installed_version: version.into(),
            fixed_version: None,
            package_type: PackageType::Deb,
            purl: format!("pkg:deb/debian/{package}@{version}?arch=amd64&distro=debian-12"),
            summary: None,
            severity: Severity::High,
            cvss_score: None,
            references: Vec::new(),
            location: None,
        }
    }

    fn authorship() -> VexAuthorship {
        VexAuthorship {
            author: "release@example.com".into(),
            tooling: "sealcraft test".into(),
            timestamp: "2026-12-04T10:00:00Z".into(),
        }
    }

    #[test]
    fn a_fixed_document_has_one_statement_per_vulnerability_and_a_stable_id() {
        let product = oci_purl(Some("registry.example.com/team/app"), DIGEST);
        assert_eq!(
            product,
            format!(
                "pkg:oci/app@sha256%3A{}?repository_url=registry.example.com/team/app",
                &DIGEST[7..]
            )
        );
        let fixed = [
            FixedComponent {
                vulnerability: "CVE-1".into(),
                purl: "pkg:deb/debian/libssl3@3.0.17-1?arch=amd64".into(),
            },
            FixedComponent {
                vulnerability: "CVE-1".into(),
                purl: "pkg:deb/debian/openssl@3.0.17-1?arch=amd64".into(),
            },
            FixedComponent {
                vulnerability: "CVE-2".into(),
                purl: "pkg:deb/debian/zlib1g@1:1.2.13?arch=amd64".into(),
            },
        ];
        let document = fixed_document(&product, &DIGEST[7..], &fixed, &authorship()).unwrap();
        assert_eq!(document.statements.len(), 2);
        assert_eq!(document.statements[0].products[0].subcomponents.len(), 2);
        assert!(
            document
                .id
                .starts_with("https://openvex.dev/docs/public/vex-")
        );
        let again = fixed_document(&product, &DIGEST[7..], &fixed, &authorship()).unwrap();
        assert_eq!(document.id, again.id);
        let other = fixed_document(&product, &DIGEST[7..], &fixed[..1], &authorship()).unwrap();
        assert_ne!(document.id, other.id);
        assert!(fixed_document(&product, &DIGEST[7..], &[], &authorship()).is_none());
        // It reads back as it was written.
        let bytes = serde_json::to_vec(&document).unwrap();
        assert_eq!(VexDocument::parse(&bytes).unwrap(), document);
    }

    #[test]
    fn statements_suppress_what_they_name_and_nothing_else() {
        let text = format!(
            r#"{{"@context":"{CONTEXT}","@id":"https://example.com/vex/1","author":"a","timestamp":"2026-01-01T00:00:00Z","version":1,"statements":[
              {{"vulnerability":{{"name":"CVE-1"}},"products":[{{"@id":"pkg:oci/app@{}","subcomponents":[{{"@id":"pkg:deb/debian/libssl3"}}]}}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}},
              {{"vulnerability":{{"name":"CVE-2"}},"products":[{{"@id":"pkg:oci/app"}}],"status":"fixed"}},
              {{"vulnerability":{{"name":"CVE-3"}},"products":[{{"@id":"pkg:oci/app"}}],"status":"not_affected","impact_statement":"never loaded"}},
              {{"vulnerability":{{"name":"CVE-3"}},"products":[{{"@id":"pkg:oci/app"}}],"status":"affected","action_statement":"update","timestamp":"2026-02-01T00:00:00Z"}},
              {{"vulnerability":{{"name":"CVE-4"}},"products":[{{"@id":"pkg:oci/other@{}"}}],"status":"fixed"}}]}}"#,
            DIGEST.replace(':', "%3A"),
            DIGEST.replace(':', "%3A").replace("0123", "4567")
        );
        let document = VexDocument::parse(text.as_bytes()).unwrap();
        let findings = vec![
            finding("CVE-1", "libssl3", "3.0.11"),
            finding("CVE-1", "openssl", "3.0.11"),
            finding("CVE-2", "zlib1g", "1.2"),
            finding("CVE-3", "tar", "1.34"),
            finding("CVE-4", "curl", "7.88"),
        ];
        let artifact = ScannedArtifact {
            digest: Some(DIGEST.into()),
            name: Some("app".into()),
        };
        let (kept, suppressed) = apply(findings, &[("vex.json".into(), document)], &artifact);
        let suppressed: Vec<(&str, &str, &str)> = suppressed
            .iter()
            .map(|item| {
                (
                    item.vulnerability.as_str(),
                    item.package.as_str(),
                    item.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            suppressed,
            [
                ("CVE-1", "libssl3", "vulnerable_code_not_in_execute_path"),
                ("CVE-2", "zlib1g", "fixed"),
            ]
        );
        let kept: Vec<(&str, &str)> = kept
            .iter()
            .map(|item| (item.id.as_str(), item.package.as_str()))
            .collect();
        // openssl is not the subcomponent named; CVE-3's later statement says affected;
        // CVE-4's product is another image.
        assert_eq!(
            kept,
            [("CVE-1", "openssl"), ("CVE-3", "tar"), ("CVE-4", "curl")]
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        let good = format!(
            r#"{{"@context":"{CONTEXT}","@id":"x","author":"a","timestamp":"2026-01-01T00:00:00Z","version":1,"statements":[{{"vulnerability":{{"name":"CVE-1"}},"status":"fixed"}}]}}"#
        );
        VexDocument::parse(good.as_bytes()).unwrap();
        for (bad, expected) in [
            (
                good.replace(CONTEXT, "https://openvex.dev/ns/v0.0.1"),
                "@context",
            ),
            (
                good.replace(r#""status":"fixed""#, r#""status":"not_affected""#),
                "justification",
            ),
            (
                good.replace(r#""status":"fixed""#, r#""status":"maybe""#),
                "OpenVEX",
            ),
            (
                good.replace("2026-01-01T00:00:00Z", "yesterday"),
                "RFC 3339",
            ),
            (
                good.replace(r#""version":1"#, r#""version":1,"extra":true"#),
                "OpenVEX",
            ),
        ] {
            let error = VexDocument::parse(bad.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(expected), "{bad}: {error}");
        }
    }
}
