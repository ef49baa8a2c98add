//! Squash: every layer in one, every config field kept.

use sealcraft_oci::image::LayerOptions;
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::squash::squash;

use super::{Context, Done, StageImage};
use crate::error::Result;

pub(crate) fn run(context: &mut Context<'_>, input: StageImage) -> Result<Done<StageImage>> {
    let options = LayerOptions {
        clamp_mtime: Some(context.plan.source_date_epoch),
        compression: context.plan.compression,
        keep_devices: true,
    };
    let report = squash(
        &context.layout,
        &input.image,
        &context.layout,
        &options,
        &LayerLimits::default(),
    )?;
    let tag = context.stage_tag("squash");
    context.layout.tag(&tag, &report.manifest)?;
    let output = context.tagged(tag)?;
    let mut fields = output.fields();
    fields["layers_before"] = report.layers_before.into();
    fields["size_before_bytes"] = report.size_before.into();
    fields["size_after_bytes"] = report.size_after.into();
    Ok(Done {
        inputs: vec![input.artifact()],
        outputs: vec![output.artifact()],
        value: output,
        fields,
    })
}
