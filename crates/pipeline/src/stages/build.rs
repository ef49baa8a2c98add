//! Build: the image made by native assembly or from a Dockerfile, tagged
//! `{version}-{arch}-build`. Every external input is recorded for provenance.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use sealcraft_assemble::{AssemblySpec, assemble};
use sealcraft_attest::ResourceDescriptor;
use sealcraft_builder::{
    BuildEnvironment, BuildReport, BuildReporter, BuildSpec, StepEvent, StepStatus,
};
use sealcraft_oci::image::LayerOptions;
use sealcraft_runtime::RuntimeSettings;
use serde_json::json;

use super::{Context, Done, StageImage};
use crate::error::{Error, Result};
use crate::events::EventLog;
use crate::plan::{AssemblyPlan, BuildSource, DockerfilePlan};
use crate::run::{Artifact, BuildContext};

pub(crate) fn run(
    context: &mut Context<'_>,
    build: Option<&BuildContext<'_>>,
) -> Result<Done<StageImage>> {
    let tag = context.stage_tag("build");
    let (inputs, mut fields) = match &context.plan.source {
        BuildSource::Assembly(assembly) => assembly_build(context, assembly, &tag)?,
        BuildSource::Dockerfile(dockerfile) => {
            let build = build.ok_or(Error::NotProvided {
                stage: "build",
                what: "its build store (a Dockerfile build)",
            })?;
            let report = dockerfile_build(context, dockerfile, build)?;
            context.layout.tag(&tag, &report.manifest)?;
            let mut inputs = vec![Artifact {
                name: dockerfile.path.display().to_string(),
                digest: dockerfile.digest.clone(),
                size: None,
            }];
            for base in &report.bases {
                inputs.push(Artifact {
                    name: base.source.clone(),
                    digest: base.digest.clone(),
                    size: None,
                });
                context.dependencies.push(ResourceDescriptor::sha256(
                    Some(format!("base-image:{}", base.requested)),
                    Some(base.source.clone()),
                    &base.digest,
                ));
            }
            let cached = report.steps.iter().filter(|step| step.cached).count();
            let fields = json!({
                "target": report.target,
                "stages": report.stages,
                "steps": report.steps.len(),
                "cached_steps": cached,
                "unused_build_args": report.unused_build_args,
            });
            (inputs, fields)
        }
    };
    let output = context.tagged(tag)?;
    if let (Some(map), Some(extra)) = (fields.as_object_mut(), output.fields().as_object()) {
        map.extend(extra.clone());
    }
    Ok(Done {
        inputs,
        outputs: vec![output.artifact()],
        value: output,
        fields,
    })
}

fn assembly_build(
    context: &mut Context<'_>,
    assembly: &AssemblyPlan,
    tag: &str,
) -> Result<(Vec<Artifact>, serde_json::Value)> {
    let spec = AssemblySpec {
        base: assembly.base.clone(),
        architecture: context.architecture.to_owned(),
        files: assembly.files.clone(),
        user: assembly.user.clone(),
        config: assembly.runtime.clone(),
        source_date_epoch: context.plan.source_date_epoch,
        layer: LayerOptions {
            compression: context.plan.compression,
            ..LayerOptions::default()
        },
    };
    let report = assemble(&spec, &context.layout)?;
    context.layout.tag(tag, &report.manifest)?;
    let mut inputs = vec![Artifact {
        name: assembly.base.display_name.clone(),
        digest: assembly.base.digest.to_string(),
        size: None,
    }];
    for file in &spec.files {
        host_file_artifacts(&file.source, &mut inputs)?;
    }
    context.dependencies.push(ResourceDescriptor::sha256(
        Some("base-image".into()),
        Some(assembly.base.display_name.clone()),
        assembly.base.digest.as_ref(),
    ));
    Ok((inputs, json!({"files": spec.files.len()})))
}

/// Build steps become events; RUN output goes to `build.log` (local only:
/// it is never shipped to sinks).
struct StepLog<'r, 'l> {
    log: &'r EventLog<'l>,
    output: Mutex<std::io::BufWriter<std::fs::File>>,
    output_path: std::path::PathBuf,
    /// The first failure to record an event or a line; the build goes on
    /// (a reporter cannot stop it) and the stage fails with this afterwards.
    failed: Mutex<Option<Error>>,
}

impl StepLog<'_, '_> {
    fn keep_first(&self, error: Error) {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(error);
    }
}

impl BuildReporter for StepLog<'_, '_> {
    fn step(&self, event: &StepEvent<'_>) {
        if event.status == StepStatus::Started {
            return;
        }
        let fields = serde_json::to_value(event).unwrap_or_default();
        if let Err(error) = self.log.emit("build", "step", fields) {
            self.keep_first(error);
        }
    }

    fn output(&self, stage: &str, line: &str) {
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(source) = writeln!(output, "{stage} | {line}") {
            drop(output);
            self.keep_first(Error::Io {
                action: "writing",
                path: self.output_path.clone(),
                source,
            });
        }
    }
}

fn dockerfile_build(
    context: &mut Context<'_>,
    build: &DockerfilePlan,
    environment: &BuildContext<'_>,
) -> Result<BuildReport> {
    let log_path = context.run_dir.join("build.log");
    let log_file = std::fs::File::create(&log_path).map_err(|source| Error::Io {
        action: "creating",
        path: log_path.clone(),
        source,
    })?;
    let reporter = StepLog {
        log: &context.log,
        output: Mutex::new(std::io::BufWriter::new(log_file)),
        output_path: log_path.clone(),
        failed: Mutex::new(None),
    };
    let spec = BuildSpec {
        dockerfile: &build.dockerfile,
        dockerfile_path: build.path.clone(),
        context: build.context.clone(),
        target: build.target.clone(),
        build_args: build.args.clone(),
        secrets: environment.secrets.clone(),
        bases: build.bases.clone(),
        require_pinned: build.require_pinned,
        architecture: context.architecture.to_owned(),
        source_date_epoch: context.plan.source_date_epoch,
        compression: context.plan.compression,
        network_none: build.network_none,
        no_cache: false,
        allow_root: false,
    };
    let machinery = BuildEnvironment {
        store: environment.store.clone(),
        runtime: RuntimeSettings {
            kind: build.runtime,
            program: environment.runtime_program.clone(),
        },
        registry: environment.registry,
        reporter: &reporter,
    };
    let report = sealcraft_builder::build(&spec, &machinery, &context.layout);
    reporter
        .output
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .flush()
        .map_err(|source| Error::Io {
            action: "writing",
            path: log_path.clone(),
            source,
        })?;
    if let Some(error) = reporter
        .failed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(error);
    }
    Ok(report?)
}

/// The host files a copy reads, each by sha256.
fn host_file_artifacts(path: &Path, artifacts: &mut Vec<Artifact>) -> Result<()> {
    let io_error = |source| Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::symlink_metadata(path).map_err(io_error)?;
    if metadata.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(path)
            .map_err(io_error)?
            .filter_map(std::result::Result::ok)
            .map(|entry| entry.path())
            .collect();
        children.sort();
        for child in children {
            host_file_artifacts(&child, artifacts)?;
        }
    } else if metadata.is_file() {
        let bytes = std::fs::read(path).map_err(io_error)?;
        artifacts.push(Artifact {
            name: path.display().to_string(),
            digest: sealcraft_oci::digest::sha256_of(&bytes).to_string(),
            size: Some(bytes.len() as u64),
        });
    }
    Ok(())
}
