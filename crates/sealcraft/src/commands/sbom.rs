use anyhow::{Context, Result, bail};
use sealcraft_cli::{SbomArgs, SbomFormat};
use sealcraft_inventory::{DirectorySource, Limits, catalog, catalog_image};
use sealcraft_oci::image::{Image, rfc3339};
use sealcraft_sbom::{Formats, ImageInfo, write};
use serde_json::json;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{open_layout_image, source_date_epoch};

pub(crate) fn sbom(args: &SbomArgs, printer: &Printer) -> Result<ExitStatus> {
    let formats = Formats {
        cyclonedx: args.format != SbomFormat::Spdx,
        spdx: args.format != SbomFormat::Cyclonedx,
    };
    let spinner = printer.spinner(&format!("cataloging {}", args.image));
    let started = std::time::Instant::now();
    let (inventory, info) = if let Some(path) = args.image.strip_prefix("dir:") {
        if !std::path::Path::new(path).is_dir() {
            bail!("{path} is not a directory");
        }
        let inventory = catalog(&DirectorySource::new(path), &Limits::default());
        let timestamp = rfc3339(source_date_epoch()?.unwrap_or(0));
        let name = args.name.clone().unwrap_or_else(|| {
            path.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(path)
                .to_owned()
        });
        (
            inventory,
            ImageInfo {
                name,
                digest: String::new(),
                architecture: args.arch.clone().unwrap_or_default(),
                timestamp,
            },
        )
    } else {
        let (layout, tag) = open_layout_image(&args.image)?;
        let image = Image::load(&layout, tag.as_deref(), args.arch.as_deref())
            .with_context(|| format!("loading {}", args.image))?;
        let inventory = catalog_image(&layout, &image, &Limits::default())
            .with_context(|| format!("cataloging {}", args.image))?;
        let timestamp = match source_date_epoch()? {
            Some(seconds) => rfc3339(seconds),
            None => image
                .config
                .created()
                .map_or_else(|| rfc3339(0), str::to_owned),
        };
        let name = args
            .name
            .clone()
            .or(tag)
            .unwrap_or_else(|| image.descriptor.digest.to_string());
        (
            inventory,
            ImageInfo {
                name,
                digest: image.descriptor.digest.to_string(),
                architecture: image.config.architecture().unwrap_or_default().to_owned(),
                timestamp,
            },
        )
    };
    let report = write(&inventory, &info, formats, &args.output_dir)?;
    spinner.finish_and_clear();
    let mut human: Vec<String> = report
        .files
        .iter()
        .map(|(path, digest)| format!("wrote {} ({digest})", path.display()))
        .collect();
    human.push(format!(
        "packages: {} in {} ms",
        report
            .counts
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_millis()
    ));
    for warning in &report.warnings {
        human.push(format!(
            "warning[{}]: {}: {}",
            warning.code, warning.subject, warning.message
        ));
    }
    printer.result(
        &json!({"files": report.files, "counts": report.counts, "warnings": report.warnings}),
        &human,
    );
    Ok(ExitStatus::Success)
}
