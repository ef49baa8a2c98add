//! Preflight: the pinned inputs, recorded. The plan already refused an
//! unpinned base or a `latest` version; this records what the build will use.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Context, Done};
use crate::error::Result;
use crate::plan::BuildSource;
use crate::run::Artifact;

pub(crate) fn run(context: &mut Context<'_>) -> Result<Done<()>> {
    let plan = context.plan;
    let config = Artifact {
        name: plan.config_path.display().to_string(),
        digest: plan.config_digest.clone(),
        size: None,
    };
    match &plan.source {
        BuildSource::Assembly(assembly) => {
            let base = Artifact {
                name: assembly.base.display_name.clone(),
                digest: assembly.base.digest.to_string(),
                size: None,
            };
            let fields = json!({"base_image": base.name, "base_digest": base.digest, "version": plan.version});
            Ok(Done {
                value: (),
                inputs: vec![config, base],
                outputs: Vec::new(),
                fields,
            })
        }
        BuildSource::Dockerfile(build) => {
            let images = sealcraft_dockerfile::external_images(
                &build.dockerfile,
                &build.path,
                build.target.as_deref(),
                &build.args,
                context.architecture,
            )?;
            let names: BTreeSet<&str> = images.iter().map(|image| image.name.as_str()).collect();
            let dockerfile = Artifact {
                name: build.path.display().to_string(),
                digest: build.digest.clone(),
                size: None,
            };
            let fields = json!({
                "dockerfile": build.path.display().to_string(),
                "dockerfile_digest": build.digest,
                "base_images": names,
                "pins_required": build.require_pinned,
                "version": plan.version,
            });
            Ok(Done {
                value: (),
                inputs: vec![config, dockerfile],
                outputs: Vec::new(),
                fields,
            })
        }
    }
}
