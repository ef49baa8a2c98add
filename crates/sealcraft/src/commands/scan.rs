use anyhow::{Context, Result, bail};
use sealcraft_cli::{ScanArgs, SeverityArg};
use sealcraft_inventory::{DirectorySource, Inventory, Limits, catalog, catalog_image};
use sealcraft_oci::image::{Image, rfc3339};

use sealcraft_vuln::osv::scan as match_advisories;
use sealcraft_vuln::report::{gate, sarif, summary, trivy_json};
use sealcraft_vuln::severity::Severity;
use sealcraft_vuln::vex::{ScannedArtifact, VexDocument, apply as apply_vex};

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{open_layout_image, source_date_epoch};

/// What was scanned: its inventory, its name, and its manifest digest when it is an image.
fn inventory_for(args: &ScanArgs) -> Result<(Inventory, String, Option<String>)> {
    if let Some(path) = &args.sbom {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let inventory = sealcraft_sbom::read(&bytes)
            .with_context(|| format!("reading the SBOM {}", path.display()))?;
        return Ok((inventory, path.display().to_string(), None));
    }
    let image = args.image.as_deref().unwrap_or_default();
    if let Some(path) = image.strip_prefix("dir:") {
        if !std::path::Path::new(path).is_dir() {
            bail!("{path} is not a directory");
        }
        return Ok((
            catalog(&DirectorySource::new(path), &Limits::default()),
            path.to_owned(),
            None,
        ));
    }
    let (layout, tag) = open_layout_image(image)?;
    let loaded =
        Image::load(&layout, tag.as_deref(), None).with_context(|| format!("loading {image}"))?;
    Ok((
        catalog_image(&layout, &loaded, &Limits::default())
            .with_context(|| format!("cataloging {image}"))?,
        image.to_owned(),
        Some(loaded.descriptor.digest.to_string()),
    ))
}

pub(crate) fn scan(args: &ScanArgs, printer: &Printer) -> Result<ExitStatus> {
    let levels: Vec<Severity> = args.fail_on.iter().map(|level| severity(*level)).collect();
    let (inventory, default_name, digest) = inventory_for(args)?;
    let documents = read_vex(&args.vex)?;
    let (database, record_warnings) = sealcraft_vuln::open_database(&args.db, &inventory)?;
    let (findings, match_warnings) = match_advisories(&inventory, &database);
    let name = args.name.clone().unwrap_or(default_name);
    let artifact = ScannedArtifact {
        digest,
        name: Some(artifact_name(&name)),
    };
    let (findings, suppressed) = apply_vex(findings, &documents, &artifact);
    let created = rfc3339(source_date_epoch()?.unwrap_or(0));
    let mut report = trivy_json(&findings, &inventory, &name, &created);
    if !documents.is_empty()
        && let Some(object) = report.as_object_mut()
    {
        object.insert("VexSuppressed".into(), serde_json::to_value(&suppressed)?);
    }
    if let Some(path) = &args.output {
        let mut bytes = serde_json::to_vec_pretty(&report)?;
        bytes.push(b'\n');
        sealcraft_files::write_atomically(path, &bytes)?;
    }
    if let Some(path) = &args.sarif {
        let mut bytes =
            serde_json::to_vec_pretty(&sarif(&findings, &name, env!("CARGO_PKG_VERSION")))?;
        bytes.push(b'\n');
        sealcraft_files::write_atomically(path, &bytes)?;
    }
    let counts = summary(&findings);
    let mut human: Vec<String> = findings
        .iter()
        .map(|finding| {
            format!(
                "{:<9} {:<22} {:<28} {:<32} {}",
                finding.severity.name(),
                finding.display_id(),
                finding.package,
                finding.installed_version,
                finding.fixed_version.as_deref().unwrap_or("(no fix)")
            )
        })
        .collect();
    for suppression in &suppressed {
        human.push(format!(
            "suppressed {:<22} {:<28} {:<32} {} ({}: {})",
            suppression.vulnerability,
            suppression.package,
            suppression.installed_version,
            suppression.status.name(),
            suppression.document,
            suppression.reason
        ));
    }
    for warning in record_warnings.iter().chain(&match_warnings) {
        human.push(format!(
            "warning[{}]: {}: {}",
            warning.code, warning.subject, warning.message
        ));
    }
    human.push(format!(
        "{} findings in {} packages ({}): {}",
        findings.len(),
        inventory.packages.len(),
        name,
        counts
            .iter()
            .map(|(severity, count)| format!("{} {count}", severity.name()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    printer.result(&report, &human);
    let failing = gate(&findings, &levels, args.ignore_unfixed);
    if !failing.is_empty() {
        let shown: Vec<&str> = levels.iter().map(|level| level.name()).collect();
        return Ok(printer.rejected(&format!(
            "{} findings at {} fail the gate",
            failing.len(),
            shown.join(",")
        )));
    }
    Ok(ExitStatus::Success)
}

/// The `--vex` documents, each named by its path.
fn read_vex(paths: &[std::path::PathBuf]) -> Result<Vec<(String, VexDocument)>> {
    paths
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let document = VexDocument::parse(&bytes)
                .with_context(|| format!("reading the OpenVEX document {}", path.display()))?;
            Ok((path.display().to_string(), document))
        })
        .collect()
}

/// The name a VEX product gives an image: the repository's last segment, without tag or transport.
fn artifact_name(name: &str) -> String {
    let path = name.strip_prefix("oci:").unwrap_or(name);
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    last.split([':', '@']).next().unwrap_or(last).to_owned()
}

/// The severity a `--fail-on` value names.
fn severity(level: SeverityArg) -> Severity {
    match level {
        SeverityArg::Unknown => Severity::Unknown,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}
