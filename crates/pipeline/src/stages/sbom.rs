//! SBOM: the final image cataloged through its merged view, written as
//! CycloneDX and SPDX; the inventory goes on to the scan.

use sealcraft_inventory::{Inventory, Limits, catalog_image};
use sealcraft_sbom::{Formats, ImageInfo};
use serde_json::json;

use super::{Context, Done, StageImage};
use crate::error::Result;
use crate::run::Artifact;

pub(crate) fn run(context: &mut Context<'_>, image: &StageImage) -> Result<Done<Inventory>> {
    let inventory = catalog_image(&context.layout, &image.image, &Limits::default())?;
    let info = ImageInfo {
        name: context.plan.image_name(context.architecture),
        digest: image.image.descriptor.digest.to_string(),
        architecture: context.architecture.to_owned(),
        timestamp: sealcraft_oci::image::rfc3339(context.plan.source_date_epoch),
    };
    let formats = Formats {
        cyclonedx: true,
        spdx: true,
    };
    let report = sealcraft_sbom::write(&inventory, &info, formats, &context.run_dir)?;
    context.artifacts.extend(report.files.iter().cloned());
    let outputs = report
        .files
        .iter()
        .map(|(path, digest)| Artifact {
            name: super::file_name(path),
            digest: digest.clone(),
            size: std::fs::metadata(path).ok().map(|metadata| metadata.len()),
        })
        .collect();
    let fields = json!({
        "formats": ["cyclonedx-1.6", "spdx-2.3"],
        "packages": report.counts,
        "warnings": report.warnings.len(),
    });
    Ok(Done {
        value: inventory,
        inputs: vec![image.artifact()],
        outputs,
        fields,
    })
}
