//! SBOM documents: CycloneDX 1.6 JSON and SPDX 2.3 JSON written from an
//! [`Inventory`], and read back into one (monitoring rescans published
//! SBOMs without pulling images).
//!
//! Output is deterministic: identifiers (CycloneDX serial number, SPDX
//! document namespace, element ids) derive from the image digest and the
//! package data, packages keep the inventory's sorted order, and the
//! timestamp is the caller's (SOURCE_DATE_EPOCH or the image's creation
//! time), never the clock.

use std::collections::BTreeMap;

mod documents;

pub use documents::{Formats, SbomReport, file_name, write};

use sealcraft_inventory::{
    Inventory, InventoryCode, OsRelease, Package, PackageType, Purl, SourcePackage, Warning,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// What the SBOM describes.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The image name (`registry/repo:tag`).
    pub name: String,
    /// The manifest digest.
    pub digest: String,
    /// The architecture.
    pub architecture: String,
    /// RFC 3339 timestamp of the document.
    pub timestamp: String,
}

/// Errors reading SBOMs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not JSON.
    #[error("the SBOM is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// Neither CycloneDX nor SPDX.
    #[error("not a CycloneDX or SPDX JSON document (no bomFormat or spdxVersion)")]
    UnknownFormat,
    /// The output directory could not be created.
    #[error("creating {}", path.display())]
    Directory {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A document could not be written.
    #[error(transparent)]
    Write(#[from] sealcraft_files::Error),
}

/// The version written into tool metadata.
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

fn hash_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// A name-based UUID (version 5 layout) derived from `parts`.
fn uuid(parts: &[&str]) -> String {
    let hex = hash_hex(parts);
    let mut bytes = hex::decode(&hex[..32]).unwrap_or_default();
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn package_key(package: &Package) -> String {
    hash_hex(&[
        &package.purl,
        &package.locations.join(","),
        &package.version,
    ])[..16]
        .to_owned()
}

fn os_version(os: &OsRelease) -> String {
    os.full_version
        .clone()
        .unwrap_or_else(|| os.version_id.clone())
}

/// CycloneDX 1.6 JSON (pretty-printed, deterministic).
pub fn cyclonedx(inventory: &Inventory, image: &ImageInfo) -> Vec<u8> {
    let mut components = Vec::new();
    if let Some(os) = &inventory.os {
        components.push(json!({
            "bom-ref": format!("os-{}", hash_hex(&[&os.id, &os_version(os)])[..16].to_owned()),
            "type": "operating-system",
            "name": os.id,
            "version": os_version(os),
            "description": os.pretty_name,
        }));
    }
    for package in &inventory.packages {
        let mut properties =
            vec![json!({"name": "sealcraft:package:type", "value": package.kind.purl_type()})];
        if let Some(source) = &package.source {
            properties.push(json!({"name": "sealcraft:package:source-name", "value": source.name}));
            properties
                .push(json!({"name": "sealcraft:package:source-version", "value": source.version}));
        }
        if let Some(layer) = package.layer {
            properties.push(json!({"name": "sealcraft:package:layer", "value": layer.to_string()}));
        }
        for (index, location) in package.locations.iter().enumerate() {
            properties.push(
                json!({"name": format!("sealcraft:location:{index}:path"), "value": location}),
            );
        }
        let mut component = json!({
            "bom-ref": format!("pkg-{}", package_key(package)),
            "type": "library",
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "properties": properties,
        });
        if !package.licenses.is_empty() {
            component["licenses"] = Value::Array(
                package
                    .licenses
                    .iter()
                    .map(|license| json!({"license": {"name": license}}))
                    .collect(),
            );
        }
        components.push(component);
    }
    let document = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(&["cyclonedx", &image.digest, &image.name])),
        "version": 1,
        "metadata": {
            "timestamp": image.timestamp,
            "tools": {"components": [{"type": "application", "name": "sealcraft", "version": TOOL_VERSION}]},
            "component": {
                "bom-ref": "image",
                "type": "container",
                "name": image.name,
                "version": image.digest,
                "properties": [
                    {"name": "sealcraft:image:digest", "value": image.digest},
                    {"name": "sealcraft:image:architecture", "value": image.architecture},
                ],
            },
        },
        "components": components,
    });
    let mut bytes = serde_json::to_vec_pretty(&document)
        .unwrap_or_else(|_| unreachable!("plain data serialises"));
    bytes.push(b'\n');
    bytes
}

fn spdx_id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// SPDX 2.3 JSON (pretty-printed, deterministic).
pub fn spdx(inventory: &Inventory, image: &ImageInfo) -> Vec<u8> {
    let mut licenses: BTreeMap<String, String> = BTreeMap::new();
    let mut license_ref = |license: &str| {
        licenses
            .entry(license.to_owned())
            .or_insert_with(|| {
                format!(
                    "LicenseRef-{}-{}",
                    spdx_id_part(license).chars().take(40).collect::<String>(),
                    &hash_hex(&[license])[..8]
                )
            })
            .clone()
    };
    let image_id = "SPDXRef-Image".to_owned();
    let mut packages = vec![json!({
        "name": image.name,
        "SPDXID": image_id,
        "versionInfo": image.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!("architecture {}", image.architecture),
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}),
    ];
    if let Some(os) = &inventory.os {
        let id = format!("SPDXRef-OperatingSystem-{}", spdx_id_part(&os.id));
        packages.push(json!({
            "name": os.id,
            "SPDXID": id,
            "versionInfo": os_version(os),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        }));
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    for package in &inventory.packages {
        let id = format!(
            "SPDXRef-Package-{}-{}-{}",
            package.kind.purl_type(),
            spdx_id_part(&package.name),
            package_key(package)
        );
        let declared = if package.licenses.is_empty() {
            "NOASSERTION".to_owned()
        } else {
            package
                .licenses
                .iter()
                .map(|license| license_ref(license))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let mut entry = json!({
            "name": package.name,
            "SPDXID": id,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl}],
            "sourceInfo": format!("found in {}", package.locations.join(", ")),
        });
        if let Some(SourcePackage { name, version }) = &package.source {
            entry["comment"] = Value::String(format!("source package {name} {version}"));
        }
        packages.push(entry);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    let extracted: Vec<Value> = licenses
        .iter()
        .map(|(text, id)| json!({"licenseId": id, "name": text, "extractedText": format!("declared as: {text}")}))
        .collect();
    let short_name: String = image
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "documentNamespace": format!("https://sealcraft.invalid/spdx/{short_name}-{}", uuid(&["spdx", &image.digest, &image.name])),
        "creationInfo": {"created": image.timestamp, "creators": [format!("Tool: sealcraft-{TOOL_VERSION}")]},
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        document["hasExtractedLicensingInfos"] = Value::Array(extracted);
    }
    let mut bytes = serde_json::to_vec_pretty(&document)
        .unwrap_or_else(|_| unreachable!("plain data serialises"));
    bytes.push(b'\n');
    bytes
}

fn kind_of(purl_type: &str) -> Option<PackageType> {
    Some(match purl_type {
        "deb" => PackageType::Deb,
        "apk" => PackageType::Apk,
        "pypi" => PackageType::Pypi,
        "npm" => PackageType::Npm,
        "cargo" => PackageType::Cargo,
        "golang" => PackageType::Golang,
        "rpm" => PackageType::Rpm,
        _ => return None,
    })
}

/// A package as a document lists it: purl, version, licenses, and the name as written.
type Entry = (String, Option<String>, Vec<String>, Option<String>);

/// The source package trivy records in CycloneDX properties
/// (`aquasecurity:trivy:SrcName`, `SrcVersion`, `SrcRelease`, `SrcEpoch`).
fn trivy_source(component: &Value) -> Option<SourcePackage> {
    let properties = component.get("properties")?.as_array()?;
    let property = |name: &str| {
        properties
            .iter()
            .find(|property| property["name"] == name)
            .and_then(|property| property["value"].as_str())
    };
    let name = property("aquasecurity:trivy:SrcName")?;
    let mut version = property("aquasecurity:trivy:SrcVersion")?.to_owned();
    if let Some(release) =
        property("aquasecurity:trivy:SrcRelease").filter(|release| !release.is_empty())
    {
        version = format!("{version}-{release}");
    }
    if let Some(epoch) = property("aquasecurity:trivy:SrcEpoch").filter(|epoch| *epoch != "0") {
        version = format!("{epoch}:{version}");
    }
    Some(SourcePackage {
        name: name.to_owned(),
        version,
    })
}

/// Reads a CycloneDX or SPDX JSON document (sealcraft's, syft's or trivy's) back into an inventory.
pub fn read(bytes: &[u8]) -> Result<Inventory, Error> {
    let document: Value = serde_json::from_slice(bytes).map_err(Error::NotJson)?;
    let mut entries: Vec<Entry> = Vec::new();
    // Source packages that documents record outside the purl (trivy's properties), by purl.
    let mut sources: std::collections::HashMap<String, SourcePackage> =
        std::collections::HashMap::new();
    let mut os = None;
    if document.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        let mut stack: Vec<&Value> = document
            .get("components")
            .and_then(Value::as_array)
            .map(|list| list.iter().collect())
            .unwrap_or_default();
        while let Some(component) = stack.pop() {
            if component.get("type").and_then(Value::as_str) == Some("operating-system") {
                os = Some((
                    component["name"].as_str().unwrap_or_default().to_owned(),
                    component["version"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            if let Some(purl) = component.get("purl").and_then(Value::as_str) {
                let licenses = component
                    .get("licenses")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|entry| {
                                entry["license"]["id"]
                                    .as_str()
                                    .or(entry["license"]["name"].as_str())
                                    .or(entry["expression"].as_str())
                                    .map(str::to_owned)
                            })
                            .collect()
                    });
                entries.push((
                    purl.to_owned(),
                    component
                        .get("version")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    licenses.unwrap_or_default(),
                    component
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                ));
                if let Some(source) = trivy_source(component) {
                    sources.insert(purl.to_owned(), source);
                }
            }
            if let Some(children) = component.get("components").and_then(Value::as_array) {
                stack.extend(children);
            }
        }
    } else if document.get("spdxVersion").is_some() {
        for package in document
            .get("packages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if matches!(
                package.get("primaryPackagePurpose").and_then(Value::as_str),
                Some("OPERATING_SYSTEM" | "OPERATING-SYSTEM")
            ) {
                os = Some((
                    package["name"].as_str().unwrap_or_default().to_owned(),
                    package["versionInfo"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
            let purl = package
                .get("externalRefs")
                .and_then(Value::as_array)
                .and_then(|refs| {
                    refs.iter()
                        .find(|reference| reference["referenceType"] == "purl")
                        .and_then(|reference| reference["referenceLocator"].as_str())
                });
            if let Some(purl) = purl {
                entries.push((
                    purl.to_owned(),
                    package
                        .get("versionInfo")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    Vec::new(),
                    package
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                ));
            }
        }
    } else {
        return Err(Error::UnknownFormat);
    }
    let mut inventory = Inventory::default();
    for (text, version, licenses, document_name) in entries {
        let Some(purl) = Purl::parse(&text) else {
            inventory.warnings.push(Warning::new(
                InventoryCode::SbomBadPurl,
                String::new(),
                format!("{text:?} is not a package URL"),
            ));
            continue;
        };
        let Some(kind) = kind_of(&purl.kind) else {
            continue;
        };
        let version = purl.version.clone().or(version).unwrap_or_default();
        // syft and sealcraft put the epoch in the version, trivy in a qualifier.
        let version = match purl.qualifiers.get("epoch") {
            Some(epoch) if !version.contains(':') => format!("{epoch}:{version}"),
            _ => version,
        };
        let source = sources.remove(&text).or_else(|| {
            purl.qualifiers
                .get("upstream")
                .map(|upstream| match upstream.split_once('@') {
                    Some((name, version)) => SourcePackage {
                        name: name.to_owned(),
                        version: version.to_owned(),
                    },
                    None => SourcePackage {
                        name: upstream.clone(),
                        version: version.clone(),
                    },
                })
        });
        if os.is_none()
            && let Some(distro) = purl.qualifiers.get("distro")
            && let Some((id, release)) = distro.split_once('-')
        {
            os = Some((id.to_owned(), release.to_owned()));
        }
        // The document's own name keeps the ecosystem's spelling (PyPI's `Jinja2`); purls normalise it.
        let name = document_name
            .filter(|name| name.eq_ignore_ascii_case(&purl.name) || kind != PackageType::Pypi)
            .filter(|name| !name.is_empty() && kind != PackageType::Npm)
            .unwrap_or_else(|| purl.name.clone());
        inventory.packages.push(Package {
            kind,
            name,
            version,
            purl: text,
            licenses,
            source,
            architecture: purl.qualifiers.get("arch").cloned(),
            locations: Vec::new(),
            files: Vec::new(),
            layer: None,
        });
    }
    inventory.os = os.map(|(id, version)| OsRelease {
        version_id: version.split('.').next().unwrap_or("").to_owned(),
        full_version: Some(version),
        id,
        codename: None,
        pretty_name: None,
    });
    inventory
        .packages
        .sort_by(|a, b| (a.kind, &a.name, &a.version).cmp(&(b.kind, &b.name, &b.version)));
    inventory
        .packages
        .dedup_by(|a, b| a.kind == b.kind && a.name == b.name && a.version == b.version);
    Ok(inventory)
}
