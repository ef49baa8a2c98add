//! Upload: the run's artifacts to object storage, write-once and read back.

use serde_json::json;

use super::{Context, Done};
use crate::error::Result;
use crate::run::Artifact;

pub(crate) fn run(
    context: &mut Context<'_>,
    store: &sealcraft_store::StoreConfig,
) -> Result<Done<()>> {
    let uploads = sealcraft_store::release_layout(&context.run_dir, context.architecture);
    let report = sealcraft_store::upload(store, &uploads)?;
    let outputs = report
        .objects
        .iter()
        .map(|object| Artifact {
            name: format!("{}/{}", report.location, object.key),
            digest: object.sha256.clone(),
            size: Some(object.size),
        })
        .collect();
    let already = report
        .objects
        .iter()
        .filter(|object| object.already_present)
        .count();
    let fields = json!({
        "files": report.objects.len(),
        "already_present": already,
        "location": report.location,
    });
    Ok(Done {
        value: (),
        inputs: Vec::new(),
        outputs,
        fields,
    })
}
