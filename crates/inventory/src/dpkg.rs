//! Debian packages: `var/lib/dpkg/status` and distroless `status.d/`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::InventoryCode;
use crate::{
    FileSource, Inventory, Limits, Package, PackageType, SourceFile, SourcePackage, display, purl,
    read_metadata, warn,
};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_DIR: &str = "var/lib/dpkg/status.d";
const INFO_DIR: &str = "var/lib/dpkg/info";

/// One stanza of a control file: field name → first-line value (continuations joined).
pub(crate) fn parse_stanzas(text: &str) -> Vec<HashMap<String, String>> {
    let mut stanzas = Vec::new();
    let mut current: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        // Continuation lines (descriptions, conffiles) add nothing the catalog needs.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// `Source: name (version)` → (name, version).
fn parse_source(field: &str) -> (String, Option<String>) {
    match field.split_once('(') {
        Some((name, rest)) => (
            name.trim().to_owned(),
            Some(rest.trim_end_matches(')').trim().to_owned()),
        ),
        None => (field.trim().to_owned(), None),
    }
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    namespace: &str,
    distro: Option<&str>,
    inventory: &mut Inventory,
) {
    let mut databases: Vec<&SourceFile> = files
        .iter()
        .filter(|file| file.path == Path::new(STATUS))
        .collect();
    databases.extend(files.iter().filter(|file| {
        file.path.parent() == Some(Path::new(STATUS_DIR))
            && !file.path.to_string_lossy().ends_with(".md5sums")
    }));
    if databases.is_empty() {
        return;
    }
    let lists: HashMap<String, &SourceFile> = files
        .iter()
        .filter(|file| {
            file.path.parent() == Some(Path::new(INFO_DIR))
                && file
                    .path
                    .extension()
                    .is_some_and(|extension| extension == "list")
        })
        .filter_map(|file| Some((file.path.file_stem()?.to_string_lossy().into_owned(), file)))
        .collect();
    for database in databases {
        let Some(bytes) = read_metadata(source, database, limits, inventory) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for stanza in parse_stanzas(&text) {
            let (Some(name), Some(version)) = (stanza.get("Package"), stanza.get("Version")) else {
                warn(
                    inventory,
                    InventoryCode::DpkgMalformedEntry,
                    &database.path,
                    "an entry without Package or Version was skipped",
                );
                continue;
            };
            // Only installed packages count: `rc` (removed, config files left) and half-installed ones do not.
            let installed = stanza
                .get("Status")
                .is_none_or(|status| status.split_whitespace().nth(2) == Some("installed"));
            if !installed {
                continue;
            }
            let architecture = stanza.get("Architecture").cloned();
            let (source_name, source_version) = stanza
                .get("Source")
                .map(|field| parse_source(field))
                .unwrap_or_else(|| (name.clone(), None));
            let source_version = source_version.unwrap_or_else(|| version.clone());
            let upstream = if stanza.contains_key("Source") {
                if source_version == *version {
                    source_name.clone()
                } else {
                    format!("{source_name}@{source_version}")
                }
            } else {
                String::new()
            };
            let list = architecture
                .as_ref()
                .and_then(|arch| lists.get(&format!("{name}:{arch}")))
                .or_else(|| lists.get(name.as_str()));
            let owned_files = list
                .and_then(|list| read_metadata(source, list, limits, inventory))
                .map(|bytes| {
                    String::from_utf8_lossy(&bytes)
                        .lines()
                        .filter(|line| !line.is_empty() && *line != "/.")
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                });
            let licenses = copyright_licenses(source, name);
            let mut locations = vec![display(&database.path)];
            if let Some(list) = list {
                locations.push(display(&list.path));
            }
            inventory.packages.push(Package {
                kind: PackageType::Deb,
                purl: purl(
                    PackageType::Deb,
                    Some(namespace),
                    name,
                    version,
                    &[
                        ("arch", architecture.clone().unwrap_or_default()),
                        ("distro", distro.unwrap_or_default().to_owned()),
                        ("upstream", upstream),
                    ],
                ),
                name: name.clone(),
                version: version.clone(),
                licenses,
                source: Some(SourcePackage {
                    name: source_name,
                    version: source_version,
                }),
                architecture,
                locations,
                files: owned_files.unwrap_or_default(),
                layer: list.and_then(|list| list.layer).or(database.layer),
            });
        }
    }
}

/// License short names from a machine-readable `debian/copyright` (DEP-5) file.
fn copyright_licenses(source: &dyn FileSource, package: &str) -> Vec<String> {
    let path = format!("usr/share/doc/{package}/copyright");
    let Ok(bytes) = source.read(Path::new(&path), 4 << 20) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut licenses = BTreeSet::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("License:") {
            let value = value.trim();
            if !value.is_empty() && value.len() < 100 {
                licenses.insert(value.to_owned());
            }
        }
    }
    licenses.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_and_sources_parse() {
        let text = "Package: libssh2-1\nStatus: install ok installed\nVersion: 1.10.0-3+b1\nSource: libssh2 (1.10.0-3)\nDescription: x\n more text\n .\n\nPackage: perl\nStatus: deinstall ok config-files\nVersion: 5.36.0-7\n";
        let stanzas = parse_stanzas(text);
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0]["Source"], "libssh2 (1.10.0-3)");
        assert_eq!(
            parse_source(&stanzas[0]["Source"]),
            ("libssh2".to_owned(), Some("1.10.0-3".to_owned()))
        );
        assert_eq!(stanzas[1]["Status"], "deinstall ok config-files");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = parse_stanzas(&text);
            let _ = parse_source(&text);
        }
    }
}
