//! `sealcraft run`: the stages that exist, in the guide's order, with a run
//! directory that records what ran.
//!
//! ```text
//! out/<project>-<version>-<arch>/
//!   oci/          the image layout: one tag per stage result, and {version}-{arch}
//!   events.jsonl  every event, flushed as it happens
//!   run.json      written last: stages, inputs and outputs by digest, timings, status
//! ```
//!
//! `run.json` is replaced atomically at the end, with `"status": "failed"`
//! and the error when a stage fails, so a directory never looks complete
//! when it is not.

use std::path::PathBuf;
use std::time::Instant;

use sealcraft_build::{AssemblySpec, assemble};
use sealcraft_oci::image::{Image, LayerOptions};
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::squash::squash;
use serde::Serialize;
use serde_json::json;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::events::{EventLog, Reporter, now_rfc3339};
use crate::plan::{BuildSource, DockerfilePlan, Plan, PlanSummary, PublishTarget};
use crate::publish::{Destination, PublishRequest, publish};

/// The stages, in the order the guide demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Pins and inputs checked.
    Preflight,
    /// The image produced.
    Build,
    /// Package managers, exclusive dependencies and unreachable libraries removed.
    Harden,
    /// All layers in one.
    Squash,
    /// CycloneDX and SPDX documents of the final image.
    Sbom,
    /// Vulnerabilities against the advisory database, and the gate.
    Scan,
    /// SLSA provenance, and a signature for every artifact.
    Attest,
    /// The artifacts to object storage.
    Upload,
    /// Signed, then pushed.
    Publish,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 9] = [
        Stage::Preflight,
        Stage::Build,
        Stage::Harden,
        Stage::Squash,
        Stage::Sbom,
        Stage::Scan,
        Stage::Attest,
        Stage::Upload,
        Stage::Publish,
    ];

    /// The stage's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::Build => "build",
            Self::Harden => "harden",
            Self::Squash => "squash",
            Self::Sbom => "sbom",
            Self::Scan => "scan",
            Self::Attest => "attest",
            Self::Upload => "upload",
            Self::Publish => "publish",
        }
    }

    /// Parses a stage name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|stage| stage.name() == name)
    }
}

/// How to run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Stop after this stage.
    pub until: Option<Stage>,
    /// What the publish stage needs from outside (the binary resolves secrets).
    pub publish: Option<PublishContext<'a>>,
    /// The object store, with its keys resolved, for the upload stage.
    pub upload: Option<sealcraft_store::StoreConfig>,
    /// What a Dockerfile build needs from outside.
    pub build: Option<BuildContext<'a>>,
}

/// The resolved inputs of a Dockerfile build.
pub struct BuildContext<'a> {
    /// The build store (layers, step cache, cache mounts).
    pub store: PathBuf,
    /// The runtime executable (`runc` or `crun`, looked up in PATH unless a path).
    pub runtime_program: PathBuf,
    /// Registry access for base images.
    pub registry: Option<&'a sealcraft_registry::Client>,
    /// The secrets `[[build.secrets]]` names, resolved.
    pub secrets: std::collections::BTreeMap<String, sealcraft_secrets::Secret>,
}

/// What the builder knows about the source and itself, for provenance.
#[derive(Debug, Clone)]
pub struct BuilderContext {
    /// The source repository, ref and commit.
    pub source: sealcraft_attest::SourceInfo,
    /// The builder identity.
    pub builder_id: String,
    /// Builder-controlled facts (CI run ids, runner environment).
    pub internal: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The resolved inputs of the publish stage.
pub struct PublishContext<'a> {
    /// The registry client, for registry targets.
    pub client: Option<&'a sealcraft_registry::Client>,
    /// Loads the signing key.
    pub key: crate::publish::KeyLoader<'a>,
    /// Provenance facts about the source and the builder.
    pub builder: BuilderContext,
}

/// Something a stage read or wrote, by digest.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// What it is.
    pub name: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// One stage's record.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    /// The stage.
    pub stage: Stage,
    /// `completed`, `skipped` or `failed`.
    pub status: String,
    /// Start time.
    pub started: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Inputs by digest.
    pub inputs: Vec<Artifact>,
    /// Outputs by digest.
    pub outputs: Vec<Artifact>,
}

/// The record of one architecture's run (`run.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Format version of this record.
    pub schema_version: u32,
    /// The run id (also in every event).
    pub run_id: String,
    /// `completed` or `failed`.
    pub status: String,
    /// The error, when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `{registry}/{project}:{version}-{arch}`.
    pub image: String,
    /// The architecture.
    pub architecture: String,
    /// The final image's manifest digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The layout holding the images, relative to the run directory.
    pub layout: String,
    /// The plan it ran.
    pub plan: PlanSummary,
    /// Start and end.
    pub started: String,
    /// End time.
    pub finished: String,
    /// Stages in order.
    pub stages: Vec<StageRecord>,
}

/// What a whole run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// One record per architecture.
    pub runs: Vec<RunRecord>,
    /// Their run directories.
    pub run_dirs: Vec<PathBuf>,
}

/// Runs `plan` for each of its architectures.
pub fn run(plan: &Plan, options: &RunOptions<'_>, reporter: &dyn Reporter) -> Result<RunSummary> {
    let mut summary = RunSummary {
        runs: Vec::new(),
        run_dirs: Vec::new(),
    };
    for architecture in &plan.architectures {
        let run_dir = plan.run_dir(architecture);
        let record = run_architecture(plan, architecture, &run_dir, options, reporter)?;
        summary.runs.push(record);
        summary.run_dirs.push(run_dir);
    }
    Ok(summary)
}

fn new_run_id() -> String {
    let seed = format!(
        "{:?}-{}-{}",
        std::time::SystemTime::now(),
        std::process::id(),
        now_rfc3339()
    );
    hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..8])
}

struct Runner<'a> {
    plan: &'a Plan,
    /// Every external image the build used, by digest (for provenance).
    dependencies: Vec<sealcraft_attest::ResourceDescriptor>,
    run_id: String,
    started: String,
    /// Artifacts of the run directory to sign, by file name and digest.
    artifacts: Vec<(std::path::PathBuf, String)>,
    architecture: &'a str,
    layout: Layout,
    log: EventLog<'a>,
    stages: Vec<StageRecord>,
}

impl Runner<'_> {
    fn stage(
        &mut self,
        stage: Stage,
        body: impl FnOnce(&mut Self) -> Result<(Vec<Artifact>, Vec<Artifact>, serde_json::Value)>,
    ) -> Result<()> {
        let started = now_rfc3339();
        let clock = Instant::now();
        self.log.emit(stage.name(), "started", json!({}))?;
        match body(self) {
            Ok((inputs, outputs, fields)) => {
                let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
                let mut fields = fields;
                if let Some(map) = fields.as_object_mut() {
                    map.insert("duration_ms".into(), duration_ms.into());
                }
                self.log.emit(stage.name(), "completed", fields)?;
                self.stages.push(StageRecord {
                    stage,
                    status: "completed".into(),
                    started,
                    duration_ms,
                    inputs,
                    outputs,
                });
                Ok(())
            }
            Err(error) => {
                let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
                self.log.emit(
                    stage.name(),
                    "failed",
                    json!({"error": error_chain(&error), "duration_ms": duration_ms}),
                )?;
                self.stages.push(StageRecord {
                    stage,
                    status: "failed".into(),
                    started,
                    duration_ms,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                });
                Err(Error::Stage {
                    stage: stage.name(),
                    source: Box::new(error),
                })
            }
        }
    }

    fn image_fields(&self, image: &Image) -> serde_json::Value {
        json!({
            "digest": image.descriptor.digest.to_string(),
            "layers": image.manifest.layers.len(),
            "size_bytes": image.layers_size(),
        })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn run_architecture(
    plan: &Plan,
    architecture: &str,
    run_dir: &std::path::Path,
    options: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<RunRecord> {
    std::fs::create_dir_all(run_dir).map_err(|source| Error::Io {
        action: "creating",
        path: run_dir.to_path_buf(),
        source,
    })?;
    let record_path = run_dir.join("run.json");
    // A record from an earlier run must not describe this one if it fails early.
    match std::fs::remove_file(&record_path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::Io {
                action: "removing",
                path: record_path,
                source: error,
            });
        }
        _ => {}
    }
    let run_id = new_run_id();
    let started = now_rfc3339();
    let log = EventLog::create(&run_dir.join("events.jsonl"), &run_id, reporter)?;
    let layout = Layout::open_or_create(run_dir.join("oci"))?;
    let image_name = plan.image_name(architecture);
    log.emit("run", "started", json!({"image": image_name, "architecture": architecture, "config": plan.config_path.display().to_string(), "run_dir": run_dir.display().to_string()}))?;
    let mut runner = Runner {
        plan,
        dependencies: Vec::new(),
        run_id: run_id.clone(),
        started: started.clone(),
        artifacts: Vec::new(),
        architecture,
        layout,
        log,
        stages: Vec::new(),
    };
    let outcome = execute(&mut runner, options);
    let (status, error, digest) = match &outcome {
        Ok(digest) => ("completed", None, digest.clone()),
        Err(error) => ("failed", Some(error_chain(error)), None),
    };
    let record = RunRecord {
        schema_version: 1,
        run_id,
        status: status.into(),
        error,
        image: image_name,
        architecture: architecture.to_owned(),
        digest,
        layout: "oci".into(),
        plan: plan.summary(),
        started,
        finished: now_rfc3339(),
        stages: runner.stages.clone(),
    };
    runner
        .log
        .emit("run", status, json!({"digest": record.digest}))?;
    write_atomically(
        &record_path,
        &serde_json::to_vec_pretty(&record).unwrap_or_else(|_| unreachable!("plain data")),
    )?;
    outcome.map(|_| record)
}

fn execute(runner: &mut Runner<'_>, options: &RunOptions<'_>) -> Result<Option<String>> {
    let plan = runner.plan;
    let until = options.until.unwrap_or(Stage::Publish);
    runner.stage(Stage::Preflight, |runner| {
        let config = Artifact { name: runner.plan.config_path.display().to_string(), digest: runner.plan.config_digest.clone(), size: None };
        match &runner.plan.source {
            BuildSource::Assembly(assembly) => {
                let base = Artifact { name: assembly.base.display_name.clone(), digest: assembly.base.digest.to_string(), size: None };
                Ok((vec![config, base.clone()], Vec::new(), json!({"base_image": base.name, "base_digest": base.digest, "version": runner.plan.version})))
            }
            BuildSource::Dockerfile(build) => {
                // The plan already refused unpinned bases; record what the Dockerfile names.
                let images = sealcraft_build::external_images(&build.dockerfile, &build.path, build.target.as_deref(), &build.args, runner.architecture)?;
                let dockerfile = Artifact { name: build.path.display().to_string(), digest: build.digest.clone(), size: None };
                let names: std::collections::BTreeSet<&str> = images.iter().map(|image| image.name.as_str()).collect();
                Ok((vec![config, dockerfile], Vec::new(), json!({"dockerfile": build.path.display().to_string(), "dockerfile_digest": build.digest, "base_images": names, "pins_required": build.require_pinned, "version": runner.plan.version})))
            }
        }
    })?;
    if until == Stage::Preflight {
        return Ok(None);
    }
    let build_tag = format!("{}-build", plan.image_tag(runner.architecture));
    let mut final_image: Option<Image> = None;
    runner.stage(Stage::Build, |runner| {
        let (inputs, mut fields) = match &runner.plan.source {
            BuildSource::Assembly(assembly) => {
                let spec = AssemblySpec {
                    base: assembly.base.clone(),
                    architecture: runner.architecture.to_owned(),
                    files: assembly.files.clone(),
                    user: assembly.user.clone(),
                    config: assembly.runtime.clone(),
                    source_date_epoch: runner.plan.source_date_epoch,
                    layer: LayerOptions { compression: runner.plan.compression, ..LayerOptions::default() },
                };
                let report = assemble(&spec, &runner.layout)?;
                runner.layout.tag(&build_tag, &report.manifest)?;
                let mut inputs = vec![Artifact { name: assembly.base.display_name.clone(), digest: assembly.base.digest.to_string(), size: None }];
                for file in &spec.files {
                    host_file_artifacts(&file.source, &mut inputs)?;
                }
                runner.dependencies.push(sealcraft_attest::ResourceDescriptor::sha256(Some("base-image".into()), Some(assembly.base.display_name.clone()), assembly.base.digest.as_ref()));
                (inputs, json!({"files": spec.files.len()}))
            }
            BuildSource::Dockerfile(build) => {
                let context = options.build.as_ref().ok_or(Error::NotProvided { stage: "build", what: "its build store (a Dockerfile build)" })?;
                let report = dockerfile_build(runner, build, context)?;
                runner.layout.tag(&build_tag, &report.manifest)?;
                let mut inputs = vec![Artifact { name: build.path.display().to_string(), digest: build.digest.clone(), size: None }];
                for base in &report.bases {
                    inputs.push(Artifact { name: base.source.clone(), digest: base.digest.clone(), size: None });
                    runner.dependencies.push(sealcraft_attest::ResourceDescriptor::sha256(Some(format!("base-image:{}", base.requested)), Some(base.source.clone()), &base.digest));
                }
                let cached = report.steps.iter().filter(|step| step.cached).count();
                (inputs, json!({"target": report.target, "stages": report.stages, "steps": report.steps.len(), "cached_steps": cached, "unused_build_args": report.unused_build_args}))
            }
        };
        let image = Image::load(&runner.layout, Some(&build_tag), None)?;
        let image_fields = runner.image_fields(&image);
        if let (Some(map), Some(extra)) = (fields.as_object_mut(), image_fields.as_object()) {
            map.extend(extra.clone());
            map.insert("tag".into(), build_tag.clone().into());
        }
        let output = Artifact { name: format!("oci:{build_tag}"), digest: image.descriptor.digest.to_string(), size: Some(image.layers_size()) };
        final_image = Some(image);
        Ok((inputs, vec![output], fields))
    })?;
    if let Some(harden_plan) = plan.harden.as_ref().filter(|_| until >= Stage::Harden) {
        let harden_tag = format!("{}-harden", plan.image_tag(runner.architecture));
        runner.stage(Stage::Harden, |runner| {
            let input = final_image
                .take()
                .unwrap_or_else(|| unreachable!("the build stage sets the image"));
            let spec = sealcraft_build::harden::HardenSpec {
                remove_shells: harden_plan.remove_shells,
                remove_packages: harden_plan.remove_packages.clone(),
                keep: harden_plan.keep.clone(),
                keep_copyright: harden_plan.keep_copyright,
                source_date_epoch: runner.plan.source_date_epoch,
                compression: runner.plan.compression,
            };
            let report =
                sealcraft_build::harden::harden(&runner.layout, &input, &spec, &runner.layout)?;
            runner.layout.tag(&harden_tag, &report.manifest)?;
            let image = Image::load(&runner.layout, Some(&harden_tag), None)?;
            let mut fields = runner.image_fields(&image);
            fields["tag"] = harden_tag.clone().into();
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
            let inputs = vec![Artifact {
                name: "build".into(),
                digest: input.descriptor.digest.to_string(),
                size: Some(input.layers_size()),
            }];
            let outputs = vec![Artifact {
                name: format!("oci:{harden_tag}"),
                digest: image.descriptor.digest.to_string(),
                size: Some(image.layers_size()),
            }];
            final_image = Some(image);
            Ok((inputs, outputs, fields))
        })?;
    }
    if plan.squash && until >= Stage::Squash {
        let squash_tag = format!("{}-squash", plan.image_tag(runner.architecture));
        runner.stage(Stage::Squash, |runner| {
            let input = final_image
                .take()
                .unwrap_or_else(|| unreachable!("the build stage sets the image"));
            let options = LayerOptions {
                clamp_mtime: Some(runner.plan.source_date_epoch),
                compression: runner.plan.compression,
                keep_devices: true,
            };
            let report = squash(
                &runner.layout,
                &input,
                &runner.layout,
                &options,
                &LayerLimits::default(),
            )?;
            runner.layout.tag(&squash_tag, &report.manifest)?;
            let image = Image::load(&runner.layout, Some(&squash_tag), None)?;
            let mut fields = runner.image_fields(&image);
            fields["layers_before"] = report.layers_before.into();
            fields["size_before_bytes"] = report.size_before.into();
            fields["size_after_bytes"] = report.size_after.into();
            fields["tag"] = squash_tag.clone().into();
            let inputs = vec![Artifact {
                name: "build".into(),
                digest: input.descriptor.digest.to_string(),
                size: Some(input.layers_size()),
            }];
            let outputs = vec![Artifact {
                name: format!("oci:{squash_tag}"),
                digest: image.descriptor.digest.to_string(),
                size: Some(image.layers_size()),
            }];
            final_image = Some(image);
            Ok((inputs, outputs, fields))
        })?;
    }
    let image = final_image.unwrap_or_else(|| unreachable!("build or squash set the image"));
    runner
        .layout
        .tag(&plan.image_tag(runner.architecture), &image.descriptor)?;
    if until >= Stage::Sbom {
        runner.stage(Stage::Sbom, |runner| {
            let inventory = crate::sbom::inventory_of(&runner.layout, &image)?;
            let info = sealcraft_sbom::ImageInfo {
                name: runner.plan.image_name(runner.architecture),
                digest: image.descriptor.digest.to_string(),
                architecture: runner.architecture.to_owned(),
                timestamp: sealcraft_oci::image::rfc3339(runner.plan.source_date_epoch),
            };
            let directory = runner.layout.root().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let report = crate::sbom::write(&inventory, &info, crate::sbom::Formats { cyclonedx: true, spdx: true }, &directory)?;
            runner.artifacts.extend(report.files.iter().cloned());
            let inputs = vec![Artifact { name: "image".into(), digest: image.descriptor.digest.to_string(), size: Some(image.layers_size()) }];
            let outputs = report
                .files
                .iter()
                .map(|(path, digest)| Artifact { name: path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default(), digest: digest.clone(), size: std::fs::metadata(path).ok().map(|metadata| metadata.len()) })
                .collect();
            Ok((inputs, outputs, json!({"formats": ["cyclonedx-1.6", "spdx-2.3"], "packages": report.counts, "warnings": report.warnings.len()})))
        })?;
    }
    if let Some(scan_plan) = plan.scan.as_ref().filter(|_| until >= Stage::Scan) {
        let mut failing = 0;
        runner.stage(Stage::Scan, |runner| {
            let inventory = crate::sbom::inventory_of(&runner.layout, &image)?;
            let (database, _) = if scan_plan.db.join("metadata.json").is_file() {
                let store = sealcraft_vuln::store::Store::open(&scan_plan.db)?;
                let keys = inventory.packages.iter().filter_map(|package| sealcraft_vuln::osv::match_key(package, &inventory)).map(|(ecosystem, name, _)| (ecosystem, name)).collect();
                store.load(&keys)?
            } else {
                sealcraft_vuln::osv::Database::load_dir(&scan_plan.db).map_err(|source| Error::Io { action: "reading the advisory database", path: scan_plan.db.clone(), source })?
            };
            let (findings, warnings) = sealcraft_vuln::osv::scan(&inventory, &database);
            let name = runner.plan.image_name(runner.architecture);
            let report = sealcraft_vuln::report::trivy_json(&findings, &inventory, &name, &sealcraft_oci::image::rfc3339(runner.plan.source_date_epoch));
            let directory = runner.layout.root().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let short = name.rsplit('/').next().unwrap_or(&name).replace(':', "-");
            let path = directory.join(format!("scan-{short}.json"));
            let mut bytes = serde_json::to_vec_pretty(&report).unwrap_or_else(|_| unreachable!("plain data"));
            bytes.push(b'\n');
            write_atomically(&path, &bytes)?;
            runner.artifacts.push((path.clone(), sealcraft_oci::digest::sha256_of(&bytes).to_string()));
            failing = sealcraft_vuln::report::gate(&findings, &scan_plan.fail_on, scan_plan.ignore_unfixed).len();
            let counts: std::collections::BTreeMap<&str, usize> = sealcraft_vuln::report::summary(&findings).into_iter().map(|(severity, count)| (severity.name(), count)).collect();
            let inputs = vec![Artifact { name: "image".into(), digest: image.descriptor.digest.to_string(), size: Some(image.layers_size()) }];
            let outputs = vec![Artifact { name: format!("scan-{short}.json"), digest: sealcraft_oci::digest::sha256_of(&bytes).to_string(), size: Some(bytes.len() as u64) }];
            Ok((inputs, outputs, json!({"findings": findings.len(), "severities": counts, "gate_failures": failing, "warnings": warnings.len()})))
        })?;
        if failing > 0 {
            return Err(Error::GateFailed {
                stage: "scan",
                reason: format!(
                    "{failing} findings at the levels in scan.fail_on; nothing was published"
                ),
            });
        }
    }
    let mut provenance_predicate = None;
    let v02 = plan
        .publish
        .as_ref()
        .is_some_and(|publish| publish.provenance_v02);
    let predicate_type = if v02 {
        sealcraft_attest::PREDICATE_V02
    } else {
        sealcraft_attest::PREDICATE_V1
    };
    if let (Some(_), Some(context)) = (
        plan.publish.as_ref().filter(|_| until >= Stage::Attest),
        options.publish.as_ref(),
    ) {
        runner.stage(Stage::Attest, |runner| {
            let key = (context.key)().map_err(Error::Key)?;
            let directory = runner.layout.root().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let name = runner.plan.image_name(runner.architecture);
            let repository = name.rsplit_once(':').map_or(name.as_str(), |(repository, _)| repository).to_owned();
            let config_path = runner.plan.config_path.file_name().map(|file| file.to_string_lossy().into_owned()).unwrap_or_default();
            let mut internal = context.builder.internal.clone();
            internal.insert("architecture".into(), runner.architecture.into());
            internal.insert("sourceDateEpoch".into(), runner.plan.source_date_epoch.into());
            let inputs = sealcraft_attest::ProvenanceInputs {
                image_repository: repository,
                image_digest: image.descriptor.digest.to_string(),
                source: context.builder.source.clone(),
                config_path,
                config_digest: runner.plan.config_digest.clone(),
                internal_parameters: internal,
                dependencies: runner.dependencies.clone(),
                build_parameters: build_parameters(runner.plan),
                builder_id: context.builder.builder_id.clone(),
                builder_version: std::collections::BTreeMap::from([("sealcraft".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]),
                invocation_id: runner.run_id.clone(),
                started_on: runner.started.split('.').next().map(|seconds| format!("{}Z", seconds.trim_end_matches('Z'))).unwrap_or_default(),
                finished_on: now_rfc3339().split('.').next().map(|seconds| format!("{}Z", seconds.trim_end_matches('Z'))).unwrap_or_default(),
                byproducts: runner
                    .artifacts
                    .iter()
                    .map(|(path, digest)| sealcraft_attest::ResourceDescriptor::sha256(path.file_name().map(|file| file.to_string_lossy().into_owned()), None, digest))
                    .collect(),
            };
            let statement = if v02 { sealcraft_attest::statement_v02(&inputs) } else { sealcraft_attest::statement_v1(&inputs) };
            let short = name.rsplit('/').next().unwrap_or(&name).replace(':', "-");
            let path = directory.join(format!("attestation-{short}.json"));
            let mut bytes = serde_json::to_vec_pretty(&statement).unwrap_or_else(|_| unreachable!("plain data"));
            bytes.push(b'\n');
            write_atomically(&path, &bytes)?;
            runner.artifacts.push((path.clone(), sealcraft_oci::digest::sha256_of(&bytes).to_string()));
            // Every artifact gets a cosign sign-blob compatible signature next to it.
            let mut outputs = Vec::new();
            for (artifact, digest) in &runner.artifacts {
                let content = std::fs::read(artifact).map_err(|source| Error::Io { action: "reading", path: artifact.clone(), source })?;
                let signature = format!("{}\n", sealcraft_sign::sign_blob(key.as_ref(), &content)?);
                let mut signature_path = artifact.clone().into_os_string();
                signature_path.push(".sig");
                write_atomically(std::path::Path::new(&signature_path), signature.as_bytes())?;
                outputs.push(Artifact { name: artifact.file_name().map(|file| file.to_string_lossy().into_owned()).unwrap_or_default(), digest: digest.clone(), size: Some(content.len() as u64) });
            }
            provenance_predicate = Some(statement["predicate"].clone());
            let inputs_record = vec![Artifact { name: "image".into(), digest: image.descriptor.digest.to_string(), size: None }];
            Ok((inputs_record, outputs, json!({"predicate_type": predicate_type, "signed": runner.artifacts.len(), "builder_id": context.builder.builder_id})))
        })?;
    }
    if let (Some(_), Some(store)) = (
        plan.upload.as_ref().filter(|_| until >= Stage::Upload),
        options.upload.as_ref(),
    ) {
        runner.stage(Stage::Upload, |runner| {
            let directory = runner.layout.root().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let uploads = sealcraft_store::release_layout(&directory, runner.architecture);
            let report = sealcraft_store::upload(store, &uploads)?;
            let outputs = report.objects.iter().map(|object| Artifact { name: format!("{}/{}", report.location, object.key), digest: object.sha256.clone(), size: Some(object.size) }).collect();
            let already = report.objects.iter().filter(|object| object.already_present).count();
            Ok((Vec::new(), outputs, json!({"files": report.objects.len(), "already_present": already, "location": report.location})))
        })?;
    }
    if let Some(publish_plan) = plan.publish.as_ref().filter(|_| until >= Stage::Publish) {
        let context = options.publish.as_ref().ok_or(Error::NotProvided {
            stage: "publish",
            what: "its key and registry access",
        })?;
        runner.stage(Stage::Publish, |runner| {
            let destination = match &publish_plan.target {
                PublishTarget::Registry { registry, repository } => Destination::Registry {
                    client: context.client.ok_or(Error::Published { reason: "no registry client for a registry target".into() })?,
                    registry: registry.clone(),
                    repository: repository.clone(),
                },
                PublishTarget::Layout(path) => Destination::Layout(Layout::open_or_create(path)?),
            };
            let request = PublishRequest {
                source: &runner.layout,
                image: image.descriptor.clone(),
                tag: runner.plan.image_tag(runner.architecture),
                key: context.key,
                annotations: publish_plan.annotations.clone(),
                attestations: provenance_predicate.iter().map(|predicate| (predicate_type.to_owned(), predicate.clone())).collect(),
            };
            let report = publish(&request, &destination)?;
            let inputs = vec![Artifact { name: "image".into(), digest: image.descriptor.digest.to_string(), size: Some(image.layers_size()) }];
            let outputs: Vec<Artifact> = report
                .steps
                .iter()
                .filter(|step| step.what == "signature" || step.what == "tag")
                .map(|step| Artifact { name: format!("{} {}", step.what, step.reference), digest: step.digest.clone(), size: None })
                .collect();
            Ok((inputs, outputs, json!({"reference": report.reference, "digest": report.digest, "steps": report.steps.len()})))
        })?;
    }
    Ok(Some(image.descriptor.digest.to_string()))
}

/// Runs a Dockerfile build into the run's layout; steps become events and
/// RUN output goes to `build.log` (local only: it is never shipped to sinks).
fn dockerfile_build(
    runner: &mut Runner<'_>,
    build: &DockerfilePlan,
    context: &BuildContext<'_>,
) -> Result<sealcraft_build::BuildReport> {
    struct StepLog<'r, 'l> {
        log: &'r EventLog<'l>,
        output: std::sync::Mutex<std::io::BufWriter<std::fs::File>>,
        failed: std::sync::Mutex<Option<Error>>,
    }
    impl sealcraft_build::BuildReporter for StepLog<'_, '_> {
        fn step(&self, event: &sealcraft_build::StepEvent<'_>) {
            if event.status == sealcraft_build::StepStatus::Started {
                return;
            }
            let fields = serde_json::to_value(event).unwrap_or_default();
            if let Err(error) = self.log.emit("build", "step", fields) {
                let mut failed = self
                    .failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                failed.get_or_insert(error);
            }
        }
        fn output(&self, stage: &str, line: &str) {
            use std::io::Write;
            let mut output = self
                .output
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(output, "{stage} | {line}");
        }
    }
    let directory = runner
        .layout
        .root()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let log_path = directory.join("build.log");
    let log_file = std::fs::File::create(&log_path).map_err(|source| Error::Io {
        action: "creating",
        path: log_path.clone(),
        source,
    })?;
    let reporter = StepLog {
        log: &runner.log,
        output: std::sync::Mutex::new(std::io::BufWriter::new(log_file)),
        failed: std::sync::Mutex::new(None),
    };
    let spec = sealcraft_build::BuildSpec {
        dockerfile: &build.dockerfile,
        dockerfile_path: build.path.clone(),
        context: build.context.clone(),
        target: build.target.clone(),
        build_args: build.args.clone(),
        secrets: context.secrets.clone(),
        bases: build.bases.clone(),
        require_pinned: build.require_pinned,
        architecture: runner.architecture.to_owned(),
        source_date_epoch: runner.plan.source_date_epoch,
        compression: runner.plan.compression,
        network_none: build.network_none,
        no_cache: false,
        allow_root: false,
    };
    let environment = sealcraft_build::BuildEnvironment {
        store: context.store.clone(),
        runtime: sealcraft_build::RuntimeSettings {
            kind: build.runtime,
            program: context.runtime_program.clone(),
        },
        registry: context.registry,
        reporter: &reporter,
    };
    let report = sealcraft_build::build(&spec, &environment, &runner.layout);
    {
        use std::io::Write;
        let mut output = reporter
            .output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        output.flush().map_err(|source| Error::Io {
            action: "writing",
            path: log_path.clone(),
            source,
        })?;
    }
    if let Some(error) = reporter
        .failed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(error);
    }
    Ok(report?)
}

/// The Dockerfile build's external parameters for provenance: the file, the
/// target, and each build argument by the digest of its value (values may be
/// sensitive even where they should not be).
fn build_parameters(plan: &Plan) -> std::collections::BTreeMap<String, serde_json::Value> {
    let BuildSource::Dockerfile(build) = &plan.source else {
        return std::collections::BTreeMap::new();
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
    let args: serde_json::Map<String, serde_json::Value> = build
        .args
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                json!({"sha256": hex::encode(sha2::Sha256::digest(value.as_bytes()))}),
            )
        })
        .collect();
    std::collections::BTreeMap::from([
        (
            "dockerfile".to_owned(),
            json!({"path": path, "digest": {"sha256": build.digest.trim_start_matches("sha256:")}}),
        ),
        ("target".to_owned(), json!(build.target)),
        ("buildArgs".to_owned(), serde_json::Value::Object(args)),
    ])
}

/// The host files a copy reads, each by sha256.
fn host_file_artifacts(path: &std::path::Path, artifacts: &mut Vec<Artifact>) -> Result<()> {
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

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("json.partial");
    std::fs::write(&temporary, bytes).map_err(|source| Error::Io {
        action: "writing",
        path: temporary.clone(),
        source,
    })?;
    std::fs::rename(&temporary, path).map_err(|source| Error::Io {
        action: "renaming",
        path: path.to_path_buf(),
        source,
    })
}
