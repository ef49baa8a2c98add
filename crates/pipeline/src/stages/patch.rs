//! Patch: the image scanned with the configured database, and the OS
//! packages its fixable findings name installed as one layer from signed
//! apt suites (or every package updated, with `update = "all"`). Squash,
//! the SBOM and the final scan then see the patched state; the suites'
//! Release files and every `.deb` become resolved dependencies of the
//! provenance, and the fixes an OpenVEX document of the final image.

use std::collections::{BTreeMap, BTreeSet};

use sealcraft_attest::ResourceDescriptor;
use sealcraft_inventory::{Limits, catalog_image};
use sealcraft_patch::{AptAccess, PatchRequest, PatchSpec, patch};
use sealcraft_vuln::trivy::TrivyReport;
use sealcraft_vuln::vex::{FixedComponent, VexAuthorship, fixed_document, oci_purl};
use serde_json::json;

use super::{Context, Done, StageImage};
use crate::error::{Error, Result};
use crate::plan::{PatchPlan, PatchUpdate};
use crate::run::{Artifact, PatchContext};

/// The patched image, and what it fixed for the VEX document.
pub(crate) struct Patched {
    pub(crate) image: StageImage,
    pub(crate) fixed: Vec<FixedComponent>,
}

const TOOL: &str = concat!("sealcraft ", env!("CARGO_PKG_VERSION"));

pub(crate) fn run(
    context: &mut Context<'_>,
    section: &PatchPlan,
    access: &PatchContext<'_>,
    input: StageImage,
) -> Result<Done<Patched>> {
    let mut inputs = vec![input.artifact()];
    let request = match &section.update {
        PatchUpdate::All => PatchRequest::Everything,
        PatchUpdate::Fixes { db } => {
            let inventory = catalog_image(&context.layout, &input.image, &Limits::default())?;
            let (database, _) = sealcraft_vuln::open_database(db, &inventory)?;
            let (findings, _) = sealcraft_vuln::osv::scan(&inventory, &database);
            let name = context.plan.image_name(context.architecture);
            let created = sealcraft_oci::image::rfc3339(context.plan.source_date_epoch);
            let report = sealcraft_vuln::report::trivy_json(&findings, &inventory, &name, &created);
            let file = format!("patch-scan-{}.json", context.short_name());
            let artifact = context.write_json(&file, &report)?;
            let bytes = serde_json::to_vec(&report)
                .map_err(|source| Error::Serialize { what: file, source })?;
            inputs.push(artifact);
            PatchRequest::Fixes(TrivyReport::parse(&bytes)?.update_request()?)
        }
    };
    let apt = AptAccess {
        configured: &section.sources,
        host_sources: &access.host_sources,
        host_keys: access.host_keys,
        fetcher: &access.fetcher,
        now: access.now,
        check_valid_until: section.check_valid_until,
    };
    let refuse_scripts: BTreeSet<String> = section.refuse_scripts.iter().cloned().collect();
    let spec = PatchSpec {
        request: &request,
        apt: &apt,
        refuse_scripts: &refuse_scripts,
        source_date_epoch: context.plan.source_date_epoch,
        compression: context.plan.compression,
        tool: TOOL,
        dry_run: false,
    };
    let report = patch(&context.layout, &input.image, &context.layout, &spec)?;
    let manifest = report
        .manifest
        .clone()
        .unwrap_or_else(|| input.image.descriptor.clone());
    let tag = context.stage_tag("patch");
    context.layout.tag(&tag, &manifest)?;
    for suite in &report.suites {
        context.dependencies.push(ResourceDescriptor::sha256(
            Some("apt-release".into()),
            Some(suite.release_url.clone()),
            &suite.release_sha256,
        ));
    }
    for package in &report.updated {
        context.dependencies.push(ResourceDescriptor::sha256(
            Some(format!(
                "{}_{}_{}.deb",
                package.name, package.to, package.architecture
            )),
            Some(package.url.clone()),
            &package.sha256,
        ));
    }
    let report_file = format!("patch-{}.json", context.short_name());
    let report_artifact = context.write_json(&report_file, &report)?;
    let output = context.tagged(tag)?;
    let mut fields = output.fields();
    fields["updated"] = report
        .updated
        .iter()
        .map(|package| {
            json!({
                "package": package.name,
                "architecture": package.architecture,
                "from": package.from,
                "to": package.to,
            })
        })
        .collect::<Vec<_>>()
        .into();
    fields["fixed"] = report.fixed.len().into();
    let by_severity: BTreeMap<&str, usize> = report
        .fixed_by_severity
        .iter()
        .map(|(severity, count)| (severity.name(), *count))
        .collect();
    fields["fixed_by_severity"] = json!(by_severity);
    fields["bytes_added"] = report
        .layer
        .as_ref()
        .map_or(0, |layer| layer.descriptor.size)
        .into();
    fields["scripts_not_run"] = report
        .scripts_not_run
        .iter()
        .map(|scripts| scripts.package.clone())
        .collect::<Vec<_>>()
        .into();
    fields["replaced_patch_layer"] = report.replaced_patch_layer.into();
    let fixed = report.fixed_components();
    Ok(Done {
        inputs,
        outputs: vec![output.artifact(), report_artifact],
        value: Patched {
            image: output,
            fixed,
        },
        fields,
    })
}

/// Writes `vex-{name}.json`: a `fixed` statement per vulnerability the
/// patch fixed, about the final image (after squash) by digest.
pub(crate) fn write_vex(
    context: &mut Context<'_>,
    fixed: &[FixedComponent],
    final_image: &StageImage,
) -> Result<Option<Artifact>> {
    let digest = final_image.image.descriptor.digest.to_string();
    let name = context.plan.image_name(context.architecture);
    let repository = name
        .rsplit_once(':')
        .map_or(name.as_str(), |(repository, _)| repository);
    let authorship = VexAuthorship {
        author: context.plan.project.clone(),
        tooling: TOOL.into(),
        timestamp: sealcraft_oci::image::rfc3339(context.plan.source_date_epoch),
    };
    let Some(document) = fixed_document(
        &oci_purl(Some(repository), &digest),
        digest.trim_start_matches("sha256:"),
        fixed,
        &authorship,
    ) else {
        return Ok(None);
    };
    let file = format!("vex-{}.json", context.short_name());
    context.write_json(&file, &document).map(Some)
}
