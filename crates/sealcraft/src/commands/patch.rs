use std::collections::BTreeSet;
use std::time::SystemTime;

use anyhow::{Context, Result};
use sealcraft_apt::Fetcher;
use sealcraft_cli::PatchArgs;
use sealcraft_oci::image::{Image, rfc3339};
use sealcraft_oci::layer::Compression;
use sealcraft_patch::{AptAccess, PatchReport, PatchRequest, PatchSpec, patch as patch_image};
use sealcraft_vuln::trivy::TrivyReport;
use sealcraft_vuln::vex::{FixedComponent, VexAuthorship, fixed_document, oci_purl};

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{
    HostKeys, default_cache, host_apt_sources, open_layout_image, output_layout, source_date_epoch,
};

/// Download attempts per file before a patch gives up.
const FETCH_RETRIES: u32 = 3;

pub(crate) fn patch(args: &PatchArgs, printer: &Printer) -> Result<ExitStatus> {
    let (source, tag) = open_layout_image(&args.image)?;
    let image = Image::load(&source, tag.as_deref(), args.arch.as_deref())
        .with_context(|| format!("loading {}", args.image))?;
    let request = match &args.report {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let report = TrivyReport::parse(&bytes)
                .and_then(|report| report.update_request())
                .with_context(|| format!("reading the report {}", path.display()))?;
            PatchRequest::Fixes(report)
        }
        None => PatchRequest::Everything,
    };
    let mut configured = Vec::new();
    for line in &args.source {
        configured.extend(
            sealcraft_apt::sources::parse_list(line, "--source")
                .with_context(|| format!("reading --source {line:?}"))?,
        );
    }
    let host_sources = host_sources(printer);
    let cache = match &args.cache_dir {
        Some(path) => path.clone(),
        None => default_cache("apt")?,
    };
    let fetcher = Fetcher::new(cache, FETCH_RETRIES);
    let apt = AptAccess {
        configured: &configured,
        host_sources: &host_sources,
        host_keys: &HostKeys,
        fetcher: &fetcher,
        now: SystemTime::now(),
        check_valid_until: !args.no_check_valid_until,
    };
    let refuse_scripts: BTreeSet<String> = args.refuse_scripts.iter().cloned().collect();
    let epoch = source_date_epoch()?;
    let spec = PatchSpec {
        request: &request,
        apt: &apt,
        refuse_scripts: &refuse_scripts,
        source_date_epoch: epoch.unwrap_or(0),
        compression: Compression::Gzip,
        tool: concat!("sealcraft ", env!("CARGO_PKG_VERSION")),
        dry_run: args.dry_run,
    };
    // The output layout is opened only for a real patch: a dry run creates nothing.
    let target = match (&args.output, args.dry_run) {
        (Some(output), false) => Some(output_layout(output)?),
        _ => None,
    };
    let spinner = printer.spinner(&format!("patching {}", args.image));
    let output_layout = target.as_ref().map_or(&source, |(layout, _)| layout);
    let report = patch_image(&source, &image, output_layout, &spec)
        .with_context(|| format!("patching {}", args.image));
    spinner.finish_and_clear();
    let report = report?;
    if let (Some((layout, output_tag)), Some(manifest)) = (&target, &report.manifest) {
        layout.tag(output_tag, manifest)?;
    }
    let mut vex_written = None;
    if let (Some(path), Some(manifest)) = (&args.vex, &report.manifest) {
        let now = match epoch {
            Some(seconds) => seconds,
            None => SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0)),
        };
        let fixed: Vec<FixedComponent> = report.fixed_components();
        let digest = manifest.digest.to_string();
        let authorship = VexAuthorship {
            author: "sealcraft".into(),
            tooling: spec.tool.into(),
            timestamp: rfc3339(now),
        };
        let sha256 = digest.trim_start_matches("sha256:");
        if let Some(document) =
            fixed_document(&oci_purl(None, &digest), sha256, &fixed, &authorship)
        {
            let mut bytes = serde_json::to_vec_pretty(&document)?;
            bytes.push(b'\n');
            sealcraft_files::write_atomically(path, &bytes)?;
            vex_written = Some(path.display().to_string());
        }
    }
    for scripts in &report.scripts_not_run {
        printer.warning(&format!(
            "{}: maintainer scripts not run ({})",
            scripts.package,
            scripts.scripts.join(", ")
        ));
    }
    printer.result(
        &serde_json::json!({
            "image": args.output,
            "digest": report.manifest.as_ref().map(|manifest| manifest.digest.to_string()),
            "vex": vex_written,
            "report": report,
        }),
        &human_lines(args, &report, vex_written.as_deref()),
    );
    Ok(ExitStatus::Success)
}

/// This machine's apt sources; unreadable ones are a warning, not an error,
/// since the configured or the image's sources may make them unneeded (and
/// with none at all the patch fails for want of sources).
pub(crate) fn host_sources(printer: &Printer) -> Vec<sealcraft_apt::Source> {
    match host_apt_sources() {
        Ok(sources) => sources,
        Err(error) => {
            printer.warning(&format!(
                "this machine's apt sources are not used: {error:#}"
            ));
            Vec::new()
        }
    }
}

fn human_lines(args: &PatchArgs, report: &PatchReport, vex: Option<&str>) -> Vec<String> {
    let by_severity: Vec<String> = report
        .fixed_by_severity
        .iter()
        .map(|(severity, count)| format!("{} {count}", severity.name()))
        .collect();
    let fixed = if by_severity.is_empty() {
        format!("{} vulnerabilities fixed", report.fixed.len())
    } else {
        format!(
            "{} vulnerabilities fixed ({})",
            report.fixed.len(),
            by_severity.join(", ")
        )
    };
    let head = match (&report.manifest, &report.layer) {
        _ if report.dry_run => format!(
            "dry run of {}: {} packages would be updated, {fixed}",
            args.image,
            report.updated.len()
        ),
        (Some(manifest), Some(layer)) => format!(
            "patched {} into {}: {} packages updated, {fixed}, one layer of {} bytes: {}",
            args.image,
            args.output.as_deref().unwrap_or_default(),
            report.updated.len(),
            layer.descriptor.size,
            manifest.digest
        ),
        (Some(manifest), None) => format!(
            "nothing to patch in {}: {} is the image as it was: {}",
            args.image,
            args.output.as_deref().unwrap_or_default(),
            manifest.digest
        ),
        (None, _) => format!("nothing written for {}", args.image),
    };
    let mut lines = vec![head];
    for package in &report.updated {
        lines.push(format!(
            "  {} {} -> {}",
            package.name,
            package.from.as_deref().unwrap_or("(new)"),
            package.to
        ));
    }
    for skipped in &report.skipped {
        lines.push(format!("  = {}: {}", skipped.package, skipped.reason));
    }
    if let Some(path) = vex {
        lines.push(format!("OpenVEX document: {path}"));
    }
    lines
}
