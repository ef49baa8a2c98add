//! Attest: SLSA provenance of the final image, and a cosign sign-blob
//! compatible signature next to every artifact of the run directory.

use std::collections::BTreeMap;

use sealcraft_attest::{PREDICATE_V1, PREDICATE_V02, ProvenanceInputs, ResourceDescriptor};
use serde_json::{Value, json};

use super::{Context, Done, StageImage, file_name};
use crate::error::{Error, Result};
use crate::events::now_rfc3339;
use crate::plan::{BuildSource, Plan, PublishPlan};
use crate::run::{Artifact, PublishContext};

/// The provenance, for the publish stage to attach.
pub(crate) struct Provenance {
    /// Its predicate type URI.
    pub(crate) predicate_type: &'static str,
    /// The predicate.
    pub(crate) predicate: Value,
}

/// RFC 3339 to whole seconds, as SLSA's timestamps are written.
fn whole_seconds(time: &str) -> String {
    time.split('.')
        .next()
        .map(|seconds| format!("{}Z", seconds.trim_end_matches('Z')))
        .unwrap_or_default()
}

pub(crate) fn run(
    context: &mut Context<'_>,
    section: &PublishPlan,
    access: &PublishContext<'_>,
    image: &StageImage,
) -> Result<Done<Provenance>> {
    let key = (access.key)().map_err(Error::Key)?;
    let plan = context.plan;
    let name = plan.image_name(context.architecture);
    let repository = name
        .rsplit_once(':')
        .map_or(name.as_str(), |(repository, _)| repository)
        .to_owned();
    let mut internal = access.builder.internal.clone();
    internal.insert("architecture".into(), context.architecture.into());
    internal.insert("sourceDateEpoch".into(), plan.source_date_epoch.into());
    let inputs = ProvenanceInputs {
        image_repository: repository,
        image_digest: image.image.descriptor.digest.to_string(),
        source: access.builder.source.clone(),
        config_path: file_name(&plan.config_path),
        config_digest: plan.config_digest.clone(),
        internal_parameters: internal,
        dependencies: context.dependencies.clone(),
        build_parameters: build_parameters(plan),
        builder_id: access.builder.builder_id.clone(),
        builder_version: BTreeMap::from([(
            "sealcraft".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        )]),
        invocation_id: context.run_id.clone(),
        started_on: whole_seconds(&context.started),
        finished_on: whole_seconds(&now_rfc3339()),
        byproducts: context
            .artifacts
            .iter()
            .map(|(path, digest)| ResourceDescriptor::sha256(Some(file_name(path)), None, digest))
            .collect(),
    };
    let (statement, predicate_type) = if section.provenance_v02 {
        (sealcraft_attest::statement_v02(&inputs), PREDICATE_V02)
    } else {
        (sealcraft_attest::statement_v1(&inputs), PREDICATE_V1)
    };
    context.write_json(
        &format!("attestation-{}.json", context.short_name()),
        &statement,
    )?;
    let mut outputs = Vec::new();
    for (artifact, digest) in &context.artifacts {
        let content = std::fs::read(artifact).map_err(|source| Error::Io {
            action: "reading",
            path: artifact.clone(),
            source,
        })?;
        let signature = format!("{}\n", sealcraft_sign::sign_blob(key.as_ref(), &content)?);
        let mut signature_path = artifact.clone().into_os_string();
        signature_path.push(".sig");
        sealcraft_files::write_atomically(
            std::path::Path::new(&signature_path),
            signature.as_bytes(),
        )?;
        outputs.push(Artifact {
            name: file_name(artifact),
            digest: digest.clone(),
            size: Some(content.len() as u64),
        });
    }
    let fields = json!({
        "predicate_type": predicate_type,
        "signed": context.artifacts.len(),
        "builder_id": access.builder.builder_id,
    });
    Ok(Done {
        value: Provenance {
            predicate_type,
            predicate: statement["predicate"].clone(),
        },
        inputs: vec![image.artifact()],
        outputs,
        fields,
    })
}

/// The Dockerfile build's external parameters for provenance: the file, the
/// target, and each build argument by the digest of its value (values may be
/// sensitive even where they should not be).
fn build_parameters(plan: &Plan) -> BTreeMap<String, Value> {
    use sha2::Digest as _;
    let BuildSource::Dockerfile(build) = &plan.source else {
        return BTreeMap::new();
    };
    let base = plan
        .config_path
        .parent()
        .unwrap_or(std::path::Path::new(""));
    let path = build
        .path
        .strip_prefix(base)
        .unwrap_or(&build.path)
        .display()
        .to_string();
    let args: serde_json::Map<String, Value> = build
        .args
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                json!({"sha256": hex::encode(sha2::Sha256::digest(value.as_bytes()))}),
            )
        })
        .collect();
    BTreeMap::from([
        (
            "dockerfile".to_owned(),
            json!({"path": path, "digest": {"sha256": build.digest.trim_start_matches("sha256:")}}),
        ),
        ("target".to_owned(), json!(build.target)),
        ("buildArgs".to_owned(), Value::Object(args)),
    ])
}
