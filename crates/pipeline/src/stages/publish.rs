//! Publish: the final image signed, then pushed (signature first), with
//! the provenance as its attestation.

use sealcraft_oci::layout::Layout;
use serde_json::json;

use super::attest::Provenance;
use super::{Context, Done, StageImage};
use crate::error::{Error, Result};
use crate::plan::{PublishPlan, PublishTarget};
use crate::publish::{Destination, PublishRequest, publish};
use crate::run::{Artifact, PublishContext};

pub(crate) fn run(
    context: &mut Context<'_>,
    section: &PublishPlan,
    access: &PublishContext<'_>,
    image: &StageImage,
    provenance: Option<&Provenance>,
) -> Result<Done<()>> {
    let destination = match &section.target {
        PublishTarget::Registry {
            registry,
            repository,
        } => Destination::Registry {
            client: access.client.ok_or(Error::NotProvided {
                stage: "publish",
                what: "a registry client for a registry target",
            })?,
            registry: registry.clone(),
            repository: repository.clone(),
        },
        PublishTarget::Layout(path) => Destination::Layout(Layout::open_or_create(path)?),
    };
    let request = PublishRequest {
        source: &context.layout,
        image: image.image.descriptor.clone(),
        tag: context.plan.image_tag(context.architecture),
        key: access.key,
        annotations: section.annotations.clone(),
        attestations: provenance
            .iter()
            .map(|provenance| {
                (
                    provenance.predicate_type.to_owned(),
                    provenance.predicate.clone(),
                )
            })
            .collect(),
    };
    let report = publish(&request, &destination)?;
    let outputs: Vec<Artifact> = report
        .steps
        .iter()
        .filter(|step| step.what == "signature" || step.what == "tag")
        .map(|step| Artifact {
            name: format!("{} {}", step.what, step.reference),
            digest: step.digest.clone(),
            size: None,
        })
        .collect();
    let fields = json!({
        "reference": report.reference,
        "digest": report.digest,
        "steps": report.steps.len(),
    });
    Ok(Done {
        value: (),
        inputs: vec![image.artifact()],
        outputs,
        fields,
    })
}
