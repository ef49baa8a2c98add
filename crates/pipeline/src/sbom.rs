//! The SBOM stage: catalog an image through its merged view and write
//! CycloneDX and SPDX documents.

use std::path::{Path, PathBuf};

use sealcraft_inventory::{Inventory, Limits, ViewSource, catalog};
use sealcraft_oci::image::Image;
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::view::MergedView;
use sealcraft_sbom::ImageInfo;
use serde::Serialize;

use crate::error::{Error, Result};

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

/// Catalogs `image` from `layout`.
pub fn inventory_of(layout: &Layout, image: &Image) -> Result<Inventory> {
    let view = MergedView::from_image(
        layout,
        &image.manifest,
        &image.config,
        &LayerLimits::default(),
    )?;
    Ok(catalog(&ViewSource(&view), &Limits::default()))
}

/// Writes the requested documents for `inventory` into `directory`.
pub fn write(
    inventory: &Inventory,
    info: &ImageInfo,
    formats: Formats,
    directory: &Path,
) -> Result<SbomReport> {
    std::fs::create_dir_all(directory).map_err(|source| Error::Io {
        action: "creating",
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
            sealcraft_sbom::cyclonedx(inventory, info)
        } else {
            sealcraft_sbom::spdx(inventory, info)
        };
        let path = directory.join(file_name(&info.name, format));
        let temporary = path.with_extension("json.partial");
        std::fs::write(&temporary, &bytes).map_err(|source| Error::Io {
            action: "writing",
            path: temporary.clone(),
            source,
        })?;
        std::fs::rename(&temporary, &path).map_err(|source| Error::Io {
            action: "renaming",
            path: path.clone(),
            source,
        })?;
        files.push((path, sealcraft_oci::digest::sha256_of(&bytes).to_string()));
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
