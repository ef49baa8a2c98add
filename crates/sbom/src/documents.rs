//! Writing the documents: `sbom-{image}-{format}.json` files, each written
//! atomically, with their digests for the run record and the signatures.

use std::path::{Path, PathBuf};

use sealcraft_inventory::Inventory;
use serde::Serialize;
use sha2::Digest as _;

use crate::{Error, ImageInfo};

/// Which documents to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// CycloneDX 1.6.
    pub cyclonedx: bool,
    /// SPDX 2.3.
    pub spdx: bool,
}

/// What the stage wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SbomReport {
    /// Files written, with their sha256.
    pub files: Vec<(PathBuf, String)>,
    /// Packages by type.
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Cataloging warnings.
    pub warnings: Vec<sealcraft_inventory::Warning>,
}

/// `sbom-{image}-{format}.json`, with the image name reduced to a file name.
pub fn file_name(image_name: &str, format: &str) -> String {
    let last = image_name.rsplit('/').next().unwrap_or(image_name);
    let safe: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("sbom-{safe}-{format}.json")
}

/// Writes the requested documents for `inventory` into `directory`.
pub fn write(
    inventory: &Inventory,
    info: &ImageInfo,
    formats: Formats,
    directory: &Path,
) -> Result<SbomReport, Error> {
    std::fs::create_dir_all(directory).map_err(|source| Error::Directory {
        path: directory.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    let documents = [("cyclonedx", formats.cyclonedx), ("spdx", formats.spdx)];
    for (format, wanted) in documents {
        if !wanted {
            continue;
        }
        let bytes = if format == "cyclonedx" {
            crate::cyclonedx(inventory, info)
        } else {
            crate::spdx(inventory, info)
        };
        let path = directory.join(file_name(&info.name, format));
        sealcraft_files::write_atomically(&path, &bytes)?;
        files.push((
            path,
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))),
        ));
    }
    let counts = inventory
        .counts()
        .into_iter()
        .map(|(kind, count)| (kind.purl_type().to_owned(), count))
        .collect();
    Ok(SbomReport {
        files,
        counts,
        warnings: inventory.warnings.clone(),
    })
}
