//! npm packages: `package-lock.json` and `node_modules/**/package.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::InventoryCode;
use crate::{
    FileSource, Inventory, Limits, Package, PackageType, SourceFile, display, purl, read_metadata,
    warn,
};

/// `@scope/name` → (namespace, name) as purls split them.
fn split_scope(name: &str) -> (Option<&str>, &str) {
    match name.strip_prefix('@').and_then(|rest| rest.split_once('/')) {
        Some((scope, rest)) => (Some(&name[..scope.len() + 1]), rest),
        None => (None, name),
    }
}

fn licenses_of(value: &Value) -> Vec<String> {
    match value.get("license") {
        Some(Value::String(license)) => vec![license.clone()],
        Some(Value::Object(object)) => object
            .get("type")
            .and_then(Value::as_str)
            .map(|license| vec![license.to_owned()])
            .unwrap_or_default(),
        _ => value
            .get("licenses")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|entry| {
                        entry.get("type").and_then(Value::as_str).map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The project directory a node_modules path belongs to.
fn project_of(path: &Path) -> PathBuf {
    let mut project = PathBuf::new();
    for component in path.components() {
        if component.as_os_str() == "node_modules" {
            break;
        }
        project.push(component);
    }
    project
}

struct Found {
    name: String,
    version: String,
    licenses: Vec<String>,
    locations: Vec<String>,
    layer: Option<usize>,
}

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    inventory: &mut Inventory,
) {
    // Keyed by (project, name, version): a lockfile entry and the installed package.json are one package.
    let mut found: BTreeMap<(PathBuf, String, String), Found> = BTreeMap::new();
    let mut record = |project: PathBuf,
                      name: String,
                      version: String,
                      licenses: Vec<String>,
                      location: String,
                      layer: Option<usize>| {
        let entry = found
            .entry((project, name.clone(), version.clone()))
            .or_insert_with(|| Found {
                name,
                version,
                licenses: Vec::new(),
                locations: Vec::new(),
                layer,
            });
        if entry.licenses.is_empty() {
            entry.licenses = licenses;
        }
        if !entry.locations.contains(&location) {
            entry.locations.push(location);
        }
    };
    for file in files {
        let file_name = file
            .path
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let in_node_modules = file
            .path
            .components()
            .any(|component| component.as_os_str() == "node_modules");
        if file_name == "package-lock.json" && !in_node_modules {
            let Some(bytes) = read_metadata(source, file, limits, inventory) else {
                continue;
            };
            let Ok(lock) = serde_json::from_slice::<Value>(&bytes) else {
                warn(
                    inventory,
                    InventoryCode::NpmLockfileMalformed,
                    &file.path,
                    "not JSON; skipped",
                );
                continue;
            };
            let project = file
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            if let (Some(name), Some(version)) = (
                lock.get("name").and_then(Value::as_str),
                lock.get("version").and_then(Value::as_str),
            ) {
                record(
                    project.clone(),
                    name.to_owned(),
                    version.to_owned(),
                    Vec::new(),
                    display(&file.path),
                    file.layer,
                );
            }
            if let Some(packages) = lock.get("packages").and_then(Value::as_object) {
                for (key, entry) in packages {
                    let Some(name) = key.rsplit_once("node_modules/").map(|(_, name)| name) else {
                        continue;
                    };
                    let Some(version) = entry.get("version").and_then(Value::as_str) else {
                        continue;
                    };
                    if entry.get("link").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    record(
                        project.clone(),
                        name.to_owned(),
                        version.to_owned(),
                        licenses_of(entry),
                        display(&file.path),
                        file.layer,
                    );
                }
            } else if let Some(dependencies) = lock.get("dependencies").and_then(Value::as_object) {
                let mut stack: Vec<(&String, &Value)> = dependencies.iter().collect();
                while let Some((name, entry)) = stack.pop() {
                    if let Some(version) = entry.get("version").and_then(Value::as_str) {
                        record(
                            project.clone(),
                            name.clone(),
                            version.to_owned(),
                            Vec::new(),
                            display(&file.path),
                            file.layer,
                        );
                    }
                    if let Some(nested) = entry.get("dependencies").and_then(Value::as_object) {
                        stack.extend(nested.iter());
                    }
                }
            }
            continue;
        }
        if file_name != "package.json" || !in_node_modules {
            continue;
        }
        // Only node_modules/<name>/package.json and node_modules/@scope/<name>/package.json describe packages.
        let parent = file.path.parent().unwrap_or(Path::new(""));
        let grandparent = parent
            .parent()
            .and_then(|path| path.file_name())
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let great = parent
            .parent()
            .and_then(Path::parent)
            .and_then(|path| path.file_name())
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let is_package = grandparent == "node_modules"
            || (grandparent.starts_with('@') && great == "node_modules");
        if !is_package {
            continue;
        }
        let Some(bytes) = read_metadata(source, file, limits, inventory) else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
            warn(
                inventory,
                InventoryCode::NpmPackageJsonMalformed,
                &file.path,
                "not JSON; skipped",
            );
            continue;
        };
        let (Some(name), Some(version)) = (
            manifest.get("name").and_then(Value::as_str),
            manifest.get("version").and_then(Value::as_str),
        ) else {
            continue;
        };
        record(
            project_of(&file.path),
            name.to_owned(),
            version.to_owned(),
            licenses_of(&manifest),
            display(&file.path),
            file.layer,
        );
    }
    for found in found.into_values() {
        let (namespace, short_name) = split_scope(&found.name);
        inventory.packages.push(Package {
            kind: PackageType::Npm,
            purl: purl(PackageType::Npm, namespace, short_name, &found.version, &[]),
            name: found.name.clone(),
            version: found.version,
            licenses: found.licenses,
            source: None,
            architecture: None,
            locations: found.locations,
            files: Vec::new(),
            layer: found.layer,
        });
    }
}
