use anyhow::{Context, Result, bail};
use sealcraft_assemble::{AssemblySpec, assemble as assemble_image};
use sealcraft_cli::AssembleArgs;
use sealcraft_oci::image::LayerOptions;
use sealcraft_pipeline::plan::{BuildSource, Plan, PlanInputs};
use serde_json::json;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{output_layout, source_date_epoch};

pub(crate) fn assemble(args: &AssembleArgs, printer: &Printer) -> Result<ExitStatus> {
    let plan = Plan::load(
        &args.config,
        &PlanInputs {
            source_date_epoch: source_date_epoch()?,
        },
    )?;
    let architecture = match &args.arch {
        Some(architecture) if plan.architectures.contains(architecture) => architecture.clone(),
        Some(architecture) => bail!(
            "{architecture} is not among the architectures of {}: {}",
            args.config.display(),
            plan.architectures.join(", ")
        ),
        None => plan.architectures[0].clone(),
    };
    let BuildSource::Assembly(assembly) = &plan.source else {
        bail!(
            "{} builds from a Dockerfile; use `sealcraft build` or `sealcraft run` (assemble is for [base] and [[files]])",
            args.config.display()
        );
    };
    let (layout, tag) = output_layout(&args.output)?;
    let spec = AssemblySpec {
        base: assembly.base.clone(),
        architecture,
        files: assembly.files.clone(),
        user: assembly.user.clone(),
        config: assembly.runtime.clone(),
        source_date_epoch: plan.source_date_epoch,
        layer: LayerOptions {
            compression: plan.compression,
            ..LayerOptions::default()
        },
    };
    let report = assemble_image(&spec, &layout)
        .with_context(|| format!("assembling {}", args.config.display()))?;
    layout.tag(&tag, &report.manifest)?;
    printer.result(
        &json!({"image": args.output, "digest": report.manifest.digest.to_string(), "base_digest": report.base_digest, "layers": report.layer_count, "entries": report.entries}),
        &[format!("assembled {} ({} layers, {} new entries): {}", args.output, report.layer_count, report.entries, report.manifest.digest)],
    );
    Ok(ExitStatus::Success)
}
