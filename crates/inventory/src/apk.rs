//! Alpine packages: `lib/apk/db/installed`.

use std::path::Path;

use crate::InventoryCode;
use crate::{
    FileSource, Inventory, Limits, Package, PackageType, SourceFile, SourcePackage, display, purl,
    read_metadata, warn,
};

pub(crate) fn catalog(
    source: &dyn FileSource,
    files: &[SourceFile],
    limits: &Limits,
    distro: Option<&str>,
    inventory: &mut Inventory,
) {
    let Some(database) = files
        .iter()
        .find(|file| file.path == Path::new("lib/apk/db/installed"))
    else {
        return;
    };
    let Some(bytes) = read_metadata(source, database, limits, inventory) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    for block in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut license = None;
        let mut origin = None;
        let mut architecture = None;
        let mut owned = Vec::new();
        let mut directory = String::new();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => name = Some(value.to_owned()),
                "V" => version = Some(value.to_owned()),
                "L" => license = Some(value.to_owned()),
                "o" => origin = Some(value.to_owned()),
                "A" => architecture = Some(value.to_owned()),
                "F" => directory = value.to_owned(),
                "R" => owned.push(format!("/{directory}/{value}")),
                _ => {}
            }
        }
        if block.trim().is_empty() {
            continue;
        }
        let (Some(name), Some(version)) = (name, version) else {
            warn(
                inventory,
                InventoryCode::ApkMalformedEntry,
                &database.path,
                "an entry without P: or V: was skipped",
            );
            continue;
        };
        let origin_name = origin.clone().unwrap_or_else(|| name.clone());
        inventory.packages.push(Package {
            kind: PackageType::Apk,
            purl: purl(
                PackageType::Apk,
                Some("alpine"),
                &name,
                &version,
                &[
                    ("arch", architecture.clone().unwrap_or_default()),
                    ("distro", distro.unwrap_or_default().to_owned()),
                    ("upstream", origin.unwrap_or_default()),
                ],
            ),
            licenses: license.map(|license| vec![license]).unwrap_or_default(),
            source: Some(SourcePackage {
                name: origin_name,
                version: version.clone(),
            }),
            architecture,
            locations: vec![display(&database.path)],
            files: owned,
            layer: database.layer,
            name,
            version,
        });
    }
}
