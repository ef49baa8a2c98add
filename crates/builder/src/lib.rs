//! Daemonless Dockerfile builds.
//!
//! [`build`] executes a parsed Dockerfile: only the stages the target
//! needs, in file order. A stage is a stack of layer directories; every
//! RUN, COPY, ADD and (when it creates a directory) WORKDIR mounts that
//! stack under a fresh overlay upper directory, does its work, and the
//! upper directory becomes the step's layer. Config-only instructions
//! change the config and add a history entry.
//!
//! Each layer step has a cache key: the chain ID of the layers below it,
//! the instruction with its arguments substituted, and its inputs (the
//! content and metadata of context files for COPY, the environment, user,
//! working directory, network and mounts for RUN). Secret values and the
//! values of build arguments that are not part of the environment never
//! enter a key, a layer or the history. Timestamps are clamped to
//! SOURCE_DATE_EPOCH and entries sorted, so the same inputs give the same
//! digest whenever the RUN steps themselves are deterministic.
//!
//! Files: `stage` (the stage loop and the commit), `config` (config-only
//! instructions), `layer_step` (mount, apply, diff, cache), `run_step`,
//! `copy_step` (with `copy`, the mechanics), `users`, `cache_key`, `bases`
//! (FROM and `COPY --from` images), `cache` (the build store), `diff`
//! (upper directory to layer), `rootfs` (root-confined paths), `prune`.
//!
//! The crate never prints and never reads the environment; callers pass
//! everything in.

use std::io;
use std::path::{Path, PathBuf};

mod bases;
mod cache;
mod cache_key;
mod config;
mod copy;
mod copy_step;
mod diff;
mod layer_step;
mod prune;
mod rootfs;
mod run_step;
mod spec;
mod stage;
mod users;
mod working;

pub use bases::ResolvedBase;
pub use copy::{ChmodError, CopyError};
pub use prune::{PruneReport, prune};
pub use spec::{
    BuildEnvironment, BuildReport, BuildReporter, BuildSpec, StepEvent, StepStatus, StepSummary,
};
pub use stage::build;

/// Everything that can go wrong while building.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OCI layer failed.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// The Dockerfile cannot be used as written.
    #[error(transparent)]
    Dockerfile(#[from] sealcraft_dockerfile::Error),
    /// The runtime or a mount failed.
    #[error(transparent)]
    Runtime(#[from] sealcraft_runtime::Error),
    /// Pulling a base image failed.
    #[error(transparent)]
    Registry(#[from] sealcraft_registry::Error),
    /// A file of the context could not be read.
    #[error("reading {}", path.display())]
    Host {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Something failed at a Dockerfile line; the cause follows.
    #[error("{}:{line}", path.display())]
    At {
        /// The Dockerfile.
        path: PathBuf,
        /// The line of the instruction.
        line: usize,
        /// What went wrong there.
        #[source]
        source: Box<Error>,
    },
    /// A word of an instruction does not expand.
    #[error("{keyword}: {error}")]
    Word {
        /// The instruction.
        keyword: &'static str,
        /// Why.
        error: sealcraft_dockerfile::WordError,
    },
    /// `FROM --platform` names another platform.
    #[error("FROM: --platform={platform}: this build is for {wanted}")]
    Platform {
        /// The platform the line names.
        platform: String,
        /// The build's platform.
        wanted: String,
    },
    /// A stage with RUN steps for an architecture the host cannot run.
    #[error(
        "FROM: stage {stage} has RUN steps, which cannot run for {architecture} on this {host} host"
    )]
    ForeignArchitecture {
        /// The stage.
        stage: String,
        /// The build's architecture.
        architecture: String,
        /// The host's.
        host: String,
    },
    /// ENV names an invalid variable.
    #[error("ENV: invalid variable name {name:?}")]
    BadVariable {
        /// The name.
        name: String,
    },
    /// WORKDIR could not create its directory.
    #[error("WORKDIR: creating {path}")]
    Workdir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// EXPOSE names something that is not a port.
    #[error("EXPOSE: {word}: {reason}")]
    BadPort {
        /// The word.
        word: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// VOLUME without a path.
    #[error("VOLUME: VOLUME needs a path")]
    NoVolume,
    /// STOPSIGNAL names no signal.
    #[error("STOPSIGNAL: {signal:?} is not a signal (SIGTERM, 9, …)")]
    BadSignal {
        /// The text.
        signal: String,
    },
    /// A `RUN --mount` value is invalid.
    #[error("RUN: {0}")]
    Mount(sealcraft_dockerfile::MountError),
    /// A required secret was not provided.
    #[error("RUN: the secret {id:?} is required but was not provided (--secret id={id},src=FILE)")]
    MissingSecret {
        /// The secret's id.
        id: String,
    },
    /// A user or group is not in the image's databases.
    #[error("{keyword}: {error}")]
    Account {
        /// `RUN` or `--chown` of COPY/ADD.
        keyword: &'static str,
        /// Which name.
        error: sealcraft_inventory::AccountError,
    },
    /// The final image would run as root.
    #[error("USER: {error} (set USER to a non-root user in the target stage)")]
    RootUser {
        /// Why.
        error: sealcraft_inventory::RootUserError,
    },
    /// COPY or ADD cannot be carried out.
    #[error("{keyword}")]
    Copy {
        /// `COPY` or `ADD`.
        keyword: &'static str,
        /// Why.
        #[source]
        error: CopyError,
    },
    /// A RUN step exited unsuccessfully.
    #[error("RUN {command}: {status}{output}")]
    RunFailed {
        /// The command (build arguments and secrets are never part of it).
        command: String,
        /// `exit code N` or `killed by signal N`.
        status: String,
        /// The step's last lines of output, indented.
        output: String,
    },
    /// A base image resolves to another digest than the one it is named with.
    #[error("base image {name} resolves to {actual}, but the config pins {pinned}")]
    BaseDigestMismatch {
        /// The base image name.
        name: String,
        /// The pinned digest.
        pinned: String,
        /// What the name resolved to.
        actual: String,
    },
    /// A base image cannot be used.
    #[error("{name}: {reason}")]
    BaseUnusable {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A base image lives in a registry and the build has no client.
    #[error("{name}: pulling it needs registry access, which this build was not given")]
    NoRegistry {
        /// The name.
        name: String,
    },
    /// The build store or a work directory failed.
    #[error("{action} {}", path.display())]
    Store {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The directory to prune is not a build store.
    #[error("{} is not a build store (no steps/, layers/ and blobs/ layout); nothing was removed", path.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// A build has the store open.
    #[error("{} is in use by a running build; prune it when no build runs", path.display())]
    StoreInUse {
        /// The store.
        path: PathBuf,
    },
    /// RUN, COPY and ADD need root (overlay mounts and a runtime).
    #[error(
        "building this Dockerfile needs root: its steps run on overlay mounts in an OCI runtime (run sealcraft as root)"
    )]
    NeedsRoot,
}

impl Error {
    /// Wraps an error with the Dockerfile line it happened at.
    pub(crate) fn at(path: &Path, line: usize, error: Error) -> Self {
        Self::At {
            path: path.to_path_buf(),
            line,
            source: Box::new(error),
        }
    }

    /// Whether the error already names its line.
    pub(crate) fn has_line(&self) -> bool {
        match self {
            Self::At { .. } => true,
            Self::Dockerfile(error) => error.has_line(),
            _ => false,
        }
    }

    /// A store error.
    pub(crate) fn store(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Store {
            action,
            path,
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
