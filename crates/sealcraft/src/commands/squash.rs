use anyhow::{Context, Result};
use sealcraft_cli::SquashArgs;
use sealcraft_oci::image::{Image, LayerOptions};
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::squash::squash as squash_image;
use serde_json::json;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{open_layout_image, output_layout, source_date_epoch};

pub(crate) fn squash(args: &SquashArgs, printer: &Printer) -> Result<ExitStatus> {
    let (source, tag) = open_layout_image(&args.image)?;
    let image = Image::load(&source, tag.as_deref(), args.arch.as_deref())
        .with_context(|| format!("loading {}", args.image))?;
    let (target, output_tag) = output_layout(&args.output)?;
    let options = LayerOptions {
        clamp_mtime: source_date_epoch()?,
        keep_devices: true,
        ..LayerOptions::default()
    };
    let spinner = printer.spinner(&format!("squashing {} layers", image.manifest.layers.len()));
    let report = squash_image(&source, &image, &target, &options, &LayerLimits::default())
        .with_context(|| format!("squashing {}", args.image));
    spinner.finish_and_clear();
    let report = report?;
    target.tag(&output_tag, &report.manifest)?;
    printer.result(
        &json!({
            "image": args.output,
            "digest": report.manifest.digest.to_string(),
            "layers_before": report.layers_before,
            "size_before": report.size_before,
            "size_after": report.size_after,
            "uncompressed_size": report.uncompressed_size,
        }),
        &[format!(
            "squashed {} ({} layers, {} bytes) into {} (1 layer, {} bytes): {}",
            args.image,
            report.layers_before,
            report.size_before,
            args.output,
            report.size_after,
            report.manifest.digest
        )],
    );
    Ok(ExitStatus::Success)
}
