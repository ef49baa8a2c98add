//! `sealcraft run`: the stages in the guide's order, with a run directory
//! that records what ran.
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
//! when it is not. The stages themselves live in [`crate::stages`];
//! [`stages_in_order`] is the one place that says which runs when.

use std::path::PathBuf;
use std::time::Instant;

use sealcraft_oci::layout::Layout;
use serde::Serialize;
use serde_json::json;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::events::{EventLog, Reporter, now_rfc3339};
use crate::plan::{Plan, PlanSummary};
pub use crate::stages::Stage;
use crate::stages::{
    Context, Done, attest, build, harden, patch, preflight, publish, sbom, scan, squash, test,
    upload,
};

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
    /// What the patch stage needs from outside (the machine's apt configuration, the download cache).
    pub patch: Option<PatchContext<'a>>,
}

/// The machine's side of the patch stage.
pub struct PatchContext<'a> {
    /// The machine's apt sources (used when neither the plan nor the image names any).
    pub host_sources: Vec<sealcraft_apt::Source>,
    /// The machine's keyrings.
    pub host_keys: &'a dyn sealcraft_apt::KeyFiles,
    /// Downloads and their cache.
    pub fetcher: sealcraft_apt::Fetcher,
    /// The time Release dates are checked against.
    pub now: std::time::SystemTime,
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
    /// `completed` or `failed` (a stage the plan leaves out has no record).
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
    /// Start time.
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

/// The stages in the guide's order; each takes what the one before produced.
fn stages_in_order(run: &mut Run<'_>, options: &RunOptions<'_>) -> Result<Option<String>> {
    let plan = run.context.plan;
    let until = options.until.unwrap_or(Stage::Publish);
    run.stage(Stage::Preflight, preflight::run)?;
    if until < Stage::Build {
        return Ok(None);
    }
    let mut image = run.stage(Stage::Build, |context| {
        build::run(context, options.build.as_ref())
    })?;
    if let Some(section) = plan.harden.as_ref().filter(|_| until >= Stage::Harden) {
        image = run.stage(Stage::Harden, |context| {
            harden::run(context, section, image)
        })?;
    }
    let mut fixed = Vec::new();
    let patching = plan.patch.as_ref().zip(options.patch.as_ref());
    if let Some((section, access)) = patching.filter(|_| until >= Stage::Patch) {
        let patched = run.stage(Stage::Patch, |context| {
            patch::run(context, section, access, image)
        })?;
        (image, fixed) = (patched.image, patched.fixed);
    }
    if plan.squash && until >= Stage::Squash {
        image = run.stage(Stage::Squash, |context| squash::run(context, image))?;
    }
    if let Some(section) = plan.test.as_ref().filter(|_| until >= Stage::Test) {
        run.stage(Stage::Test, |context| test::run(context, section, &image))?
            .enforce()?;
    }
    let digest = image.image.descriptor.digest.to_string();
    let final_tag = plan.image_tag(run.context.architecture);
    run.context
        .layout
        .tag(&final_tag, &image.image.descriptor)?;
    patch::write_vex(&mut run.context, &fixed, &image)?;
    if until < Stage::Sbom {
        return Ok(Some(digest));
    }
    let inventory = run.stage(Stage::Sbom, |context| sbom::run(context, &image))?;
    if let Some(section) = plan.scan.as_ref().filter(|_| until >= Stage::Scan) {
        run.stage(Stage::Scan, |context| {
            scan::run(context, section, &image, &inventory)
        })?
        .enforce()?;
    }
    let signing = plan.publish.as_ref().zip(options.publish.as_ref());
    let provenance = match signing.filter(|_| until >= Stage::Attest) {
        Some((section, access)) => Some(run.stage(Stage::Attest, |context| {
            attest::run(context, section, access, &image)
        })?),
        None => None,
    };
    if plan.upload.is_some() && until >= Stage::Upload {
        let store = options.upload.as_ref().ok_or(Error::NotProvided {
            stage: "upload",
            what: "the object store and its keys",
        })?;
        run.stage(Stage::Upload, |context| upload::run(context, store))?;
    }
    if let Some(section) = plan.publish.as_ref().filter(|_| until >= Stage::Publish) {
        let access = options.publish.as_ref().ok_or(Error::NotProvided {
            stage: "publish",
            what: "its key and registry access",
        })?;
        run.stage(Stage::Publish, |context| {
            publish::run(context, section, access, &image, provenance.as_ref())
        })?;
    }
    Ok(Some(digest))
}

/// One architecture's run: the stages' shared context and their records.
struct Run<'a> {
    context: Context<'a>,
    records: Vec<StageRecord>,
}

impl Run<'_> {
    /// Runs one stage: `started`, then `completed` with its fields (or
    /// `failed` with the error), and its record.
    fn stage<T>(
        &mut self,
        stage: Stage,
        body: impl FnOnce(&mut Context<'_>) -> Result<Done<T>>,
    ) -> Result<T> {
        let started = now_rfc3339();
        let clock = Instant::now();
        self.context.log.emit(stage.name(), "started", json!({}))?;
        let outcome = body(&mut self.context);
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(done) => {
                let mut fields = done.fields;
                if let Some(map) = fields.as_object_mut() {
                    map.insert("duration_ms".into(), duration_ms.into());
                }
                self.context.log.emit(stage.name(), "completed", fields)?;
                self.records.push(StageRecord {
                    stage,
                    status: "completed".into(),
                    started,
                    duration_ms,
                    inputs: done.inputs,
                    outputs: done.outputs,
                });
                Ok(done.value)
            }
            Err(error) => {
                self.context.log.emit(
                    stage.name(),
                    "failed",
                    json!({"error": sealcraft_findings::chain(&error), "duration_ms": duration_ms}),
                )?;
                self.records.push(StageRecord {
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
    log.emit(
        "run",
        "started",
        json!({
            "image": image_name,
            "architecture": architecture,
            "config": plan.config_path.display().to_string(),
            "run_dir": run_dir.display().to_string(),
        }),
    )?;
    let mut run = Run {
        context: Context {
            plan,
            architecture,
            layout,
            run_dir: run_dir.to_path_buf(),
            log,
            run_id: run_id.clone(),
            started: started.clone(),
            artifacts: Vec::new(),
            dependencies: Vec::new(),
        },
        records: Vec::new(),
    };
    let outcome = stages_in_order(&mut run, options);
    let (status, error, digest) = match &outcome {
        Ok(digest) => ("completed", None, digest.clone()),
        Err(error) => ("failed", Some(sealcraft_findings::chain(error)), None),
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
        stages: run.records,
    };
    run.context
        .log
        .emit("run", status, json!({"digest": record.digest}))?;
    let bytes = serde_json::to_vec_pretty(&record).map_err(|source| Error::Serialize {
        what: "run.json".into(),
        source,
    })?;
    sealcraft_files::write_atomically(&record_path, &bytes)?;
    outcome.map(|_| record)
}
