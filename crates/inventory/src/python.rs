//! Python distributions: `*.dist-info/METADATA` and `*.egg-info` (PKG-INFO).

use std::collections::BTreeSet;

use crate::InventoryCode;
use crate::{
    FileSource, Inventory, Limits, Package, PackageType, SourceFile, display, purl, read_metadata,
    warn,
};

/// PEP 503 normalisation: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.extend(character.to_lowercase());
        }
    }
    out
}

/// The headers of a core-metadata file (the part before the first blank line).
pub(crate) struct CoreMetadata {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) licenses: Vec<String>,
}

pub(crate) fn parse_metadata(text: &str) -> CoreMetadata {
    let mut metadata = CoreMetadata {
        name: None,
        version: None,
        licenses: Vec::new(),
    };
    let mut expression = None;
    let mut license = None;
    let mut classifiers = BTreeSet::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => metadata.name = Some(value.to_owned()),
            "Version" => metadata.version = Some(value.to_owned()),
            "License-Expression" => expression = Some(value.to_owned()),
            "License" if !value.is_empty() && value.len() < 100 && value != "UNKNOWN" => {
                license = Some(value.to_owned())
            }
            "Classifier" => {
                if let Some(name) = value.strip_prefix("License :: ") {
                    classifiers.insert(name.rsplit(" :: ").next().unwrap_or(name).to_owned());
                }
            }
            _ => {}
        }
    }
    metadata.licenses = match (expression, license) {
        (Some(expression), _) => vec![expression],
        (None, Some(license)) => vec![license],
        (None, None) => classifiers.into_iter().collect(),
    };
    metadata
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    inventory: &mut Inventory,
) {
    for file in files {
        let parent = file
            .path
            .parent()
            .and_then(|parent| parent.file_name())
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let file_name = file
            .path
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let is_metadata = (parent.ends_with(".dist-info") && file_name == "METADATA")
            || (parent.ends_with(".egg-info") && file_name == "PKG-INFO")
            || file_name.ends_with(".egg-info");
        if !is_metadata {
            continue;
        }
        let Some(bytes) = read_metadata(source, file, limits, inventory) else {
            continue;
        };
        let metadata = parse_metadata(&String::from_utf8_lossy(&bytes));
        let (Some(name), Some(version)) = (metadata.name, metadata.version) else {
            warn(
                inventory,
                InventoryCode::PythonMetadataIncomplete,
                &file.path,
                "no Name or Version header; skipped",
            );
            continue;
        };
        inventory.packages.push(Package {
            kind: PackageType::Pypi,
            purl: purl(
                PackageType::Pypi,
                None,
                &normalize_name(&name),
                &version,
                &[],
            ),
            name,
            version,
            licenses: metadata.licenses,
            source: None,
            architecture: None,
            locations: vec![display(&file.path)],
            files: Vec::new(),
            layer: file.layer,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_per_pep_503() {
        assert_eq!(normalize_name("Jinja2"), "jinja2");
        assert_eq!(normalize_name("charset_normalizer"), "charset-normalizer");
        assert_eq!(normalize_name("Foo.._-Bar"), "foo-bar");
    }

    #[test]
    fn metadata_headers_parse() {
        let metadata = parse_metadata(
            "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\nLicense: BSD-3-Clause\nClassifier: License :: OSI Approved :: BSD License\n\nName: not-a-header\n",
        );
        assert_eq!(metadata.name.as_deref(), Some("Jinja2"));
        assert_eq!(metadata.version.as_deref(), Some("3.1.2"));
        assert_eq!(metadata.licenses, vec!["BSD-3-Clause".to_owned()]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = parse_metadata(&text);
            let _ = normalize_name(&text);
        }
    }
}
