use anyhow::{Context, Result};
use sealcraft_cli::HardenArgs;
use sealcraft_harden::{HardenSpec, harden as harden_image};
use sealcraft_oci::image::Image;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{open_layout_image, output_layout, source_date_epoch};

pub(crate) fn harden(args: &HardenArgs, printer: &Printer) -> Result<ExitStatus> {
    let (source, tag) = open_layout_image(&args.image)?;
    let image = Image::load(&source, tag.as_deref(), args.arch.as_deref())
        .with_context(|| format!("loading {}", args.image))?;
    let (target, output_tag) = output_layout(&args.output)?;
    let spec = HardenSpec {
        remove_shells: args.remove_shells,
        remove_packages: args.remove_package.clone(),
        keep: args.keep.clone(),
        keep_copyright: !args.no_copyright,
        keep_setuid: args.keep_setuid,
        source_date_epoch: source_date_epoch()?.unwrap_or(0),
        ..HardenSpec::default()
    };
    let spinner = printer.spinner(&format!("hardening {}", args.image));
    let report = harden_image(&source, &image, &spec, &target)
        .with_context(|| format!("hardening {}", args.image));
    spinner.finish_and_clear();
    let report = report?;
    target.tag(&output_tag, &report.manifest)?;
    for unresolved in &report.unresolved {
        printer.warning(&format!(
            "{} needs {}, which the image did not have before hardening either",
            unresolved.object, unresolved.needed
        ));
    }
    let mut lines = vec![format!(
        "hardened {} into {}: {} packages, {} paths and {} libraries removed, {} bytes saved, {} setuid/setgid bits cleared: {}",
        args.image,
        args.output,
        report.packages_removed.len(),
        report.paths_removed,
        report.libraries_pruned.len(),
        report.bytes_saved,
        report.setuid_cleared.len(),
        report.manifest.digest
    )];
    for (category, removed) in &report.removed {
        lines.push(format!(
            "  {category:<24} {:>6} paths {:>12} bytes",
            removed.paths, removed.bytes
        ));
    }
    for package in &report.packages_removed {
        lines.push(format!(
            "  - {} {} ({})",
            package.name, package.version, package.reason
        ));
    }
    printer.result(
        &serde_json::json!({
            "image": args.output,
            "digest": report.manifest.digest.to_string(),
            "report": report,
        }),
        &lines,
    );
    Ok(ExitStatus::Success)
}
