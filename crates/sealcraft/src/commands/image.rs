use anyhow::{Context, Result};
use sealcraft_cli::{GcArgs, ImportArgs, InspectArgs};
use sealcraft_oci::image::{Image, ImageName, LayerOptions};
use sealcraft_oci::import::{ImportOptions, import as import_image};
use sealcraft_oci::layer::LayerLimits;
use serde_json::json;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{open_layout_image, output_layout, source_date_epoch};

pub(crate) fn import(args: &ImportArgs, printer: &Printer) -> Result<ExitStatus> {
    let source = ImageName::parse(&args.source)?;
    let (layout, tag) = output_layout(&args.output)?;
    let options = ImportOptions {
        architecture: args.arch.clone(),
        layer: LayerOptions {
            clamp_mtime: source_date_epoch()?,
            ..LayerOptions::default()
        },
        limits: LayerLimits::default(),
    };
    let spinner = printer.spinner(&format!("importing {source}"));
    let report = import_image(&source, &layout, &tag, &options)
        .with_context(|| format!("importing {source}"));
    spinner.finish_and_clear();
    let report = report?;
    printer.result(
        &json!({"image": args.output, "digest": report.descriptor.digest.to_string(), "blobs": report.blobs, "bytes": report.bytes}),
        &[format!("imported {source} as {} ({}, {} blobs, {} bytes)", args.output, report.descriptor.digest, report.blobs, report.bytes)],
    );
    Ok(ExitStatus::Success)
}

pub(crate) fn inspect(args: &InspectArgs, printer: &Printer) -> Result<ExitStatus> {
    let (layout, tag) = open_layout_image(&args.image)?;
    let image = Image::load(&layout, tag.as_deref(), args.arch.as_deref())
        .with_context(|| format!("loading {}", args.image))?;
    let runtime = image.config.runtime_config();
    let value = json!({
        "digest": image.descriptor.digest.to_string(),
        "media_type": image.descriptor.media_type,
        "architecture": image.config.architecture(),
        "os": image.config.os(),
        "created": image.config.created(),
        "layers": image.manifest.layers,
        "config": image.config.runtime_config_json(),
        "history": image.config.history(),
    });
    let mut human = vec![
        format!("digest        {}", image.descriptor.digest),
        format!(
            "platform      {}/{}",
            image.config.os().unwrap_or("?"),
            image.config.architecture().unwrap_or("?")
        ),
        format!("created       {}", image.config.created().unwrap_or("-")),
        format!(
            "user          {}",
            runtime.user.as_deref().unwrap_or("(root)")
        ),
        format!("entrypoint    {:?}", runtime.entrypoint.unwrap_or_default()),
        format!("cmd           {:?}", runtime.cmd.unwrap_or_default()),
        format!(
            "layers        {} ({} bytes)",
            image.manifest.layers.len(),
            image.layers_size()
        ),
    ];
    for layer in &image.manifest.layers {
        human.push(format!(
            "  {} {:>12}  {}",
            layer.digest, layer.size, layer.media_type
        ));
    }
    printer.result(&value, &human);
    Ok(ExitStatus::Success)
}

pub(crate) fn gc(args: &GcArgs, printer: &Printer) -> Result<ExitStatus> {
    let (layout, _) = open_layout_image(&args.layout)?;
    let report = layout
        .collect_garbage()
        .with_context(|| format!("collecting garbage in {}", args.layout))?;
    printer.result(
        &report,
        &[format!(
            "removed {} unreferenced blobs ({} bytes)",
            report.removed.len(),
            report.bytes
        )],
    );
    Ok(ExitStatus::Success)
}
