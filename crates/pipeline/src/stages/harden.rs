//! Harden: package managers, what only they needed, and libraries outside
//! the ELF closure removed, as one more layer.

use sealcraft_harden::{HardenSpec, harden};

use super::{Context, Done, StageImage};
use crate::error::Result;
use crate::plan::HardenPlan;

pub(crate) fn run(
    context: &mut Context<'_>,
    section: &HardenPlan,
    input: StageImage,
) -> Result<Done<StageImage>> {
    let spec = HardenSpec {
        remove_shells: section.remove_shells,
        remove_packages: section.remove_packages.clone(),
        keep: section.keep.clone(),
        keep_copyright: section.keep_copyright,
        keep_setuid: section.keep_setuid,
        source_date_epoch: context.plan.source_date_epoch,
        compression: context.plan.compression,
    };
    let report = harden(&context.layout, &input.image, &spec, &context.layout)?;
    let tag = context.stage_tag("harden");
    context.layout.tag(&tag, &report.manifest)?;
    let output = context.tagged(tag)?;
    let mut fields = output.fields();
    fields["packages_removed"] = report
        .packages_removed
        .iter()
        .map(|package| package.name.clone())
        .collect::<Vec<_>>()
        .into();
    fields["libraries_pruned"] = report.libraries_pruned.len().into();
    fields["paths_removed"] = report.paths_removed.into();
    fields["bytes_saved"] = report.bytes_saved.into();
    fields["unresolved_before"] = report.unresolved.len().into();
    fields["setuid_cleared"] = report.setuid_cleared.clone().into();
    Ok(Done {
        inputs: vec![input.artifact()],
        outputs: vec![output.artifact()],
        value: output,
        fields,
    })
}
