//! What a build is asked to do, the machinery it uses, and what it reports.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sealcraft_dockerfile::Dockerfile;
use sealcraft_oci::layer::Compression;
use sealcraft_oci::manifest::Descriptor;
use sealcraft_runtime::RuntimeSettings;
use sealcraft_secrets::Secret;
use serde::Serialize;

use crate::bases::ResolvedBase;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    /// The parsed Dockerfile.
    pub dockerfile: &'a Dockerfile,
    /// Where it came from (for messages).
    pub dockerfile_path: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// The stage to build (the last one by default).
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Secrets by id, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, Secret>,
    /// Images that stand in for names FROM and `COPY --from` give.
    pub bases: BTreeMap<String, String>,
    /// Refuse base images not named by digest.
    pub require_pinned: bool,
    /// The architecture to build for (RUN steps need it to be the host's).
    pub architecture: String,
    /// Every new timestamp, and the clamp for copied ones.
    pub source_date_epoch: i64,
    /// Compression of new layers.
    pub compression: Compression,
    /// Run every RUN step without network.
    pub network_none: bool,
    /// Ignore the step cache (results are still recorded).
    pub no_cache: bool,
    /// Allow a final image that runs as root.
    pub allow_root: bool,
}

/// The machinery a build uses.
pub struct BuildEnvironment<'a> {
    /// The build store (layers, step cache, cache mounts).
    pub store: PathBuf,
    /// The OCI runtime for RUN steps.
    pub runtime: RuntimeSettings,
    /// Registry access for base images, if any.
    pub registry: Option<&'a sealcraft_registry::Client>,
    /// Progress and step output.
    pub reporter: &'a dyn BuildReporter,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// About to run.
    Started,
    /// Taken from the cache.
    Cached,
    /// Ran.
    Done,
}

/// One step's progress.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent<'a> {
    /// The stage (name or index).
    pub stage: &'a str,
    /// 1-based step number in the build.
    pub number: usize,
    /// Steps in the build.
    pub total: usize,
    /// The Dockerfile line.
    pub line: usize,
    /// The instruction as written (shortened).
    pub instruction: &'a str,
    /// Where it stands.
    pub status: StepStatus,
}

/// Receives progress; the binary renders it.
pub trait BuildReporter {
    /// A step started, ran, or came from the cache.
    fn step(&self, event: &StepEvent<'_>);
    /// A line a RUN step printed.
    fn output(&self, stage: &str, line: &str);
}

/// One step in the report.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    /// The stage.
    pub stage: String,
    /// The Dockerfile line.
    pub line: usize,
    /// The instruction keyword.
    pub instruction: &'static str,
    /// From the cache.
    pub cached: bool,
    /// The layer's blob digest, when the step made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Time taken.
    pub duration_ms: u64,
}

/// What a build produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// The image's manifest in the output layout.
    pub manifest: Descriptor,
    /// The target stage.
    pub target: String,
    /// The stages built, in order.
    pub stages: Vec<String>,
    /// Every external image used, with the digest it resolved to.
    pub bases: Vec<ResolvedBase>,
    /// The layer steps.
    pub steps: Vec<StepSummary>,
    /// Build arguments no ARG consumed.
    pub unused_build_args: Vec<String>,
    /// The image's user.
    pub user: Option<String>,
    /// Layers in the image.
    pub layers: usize,
}
