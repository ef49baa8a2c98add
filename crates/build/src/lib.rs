//! Image production: native assembly, Dockerfile builds and hardening.
//!
//! - [`assemble`]: a pinned base, host files, a non-root user and the
//!   runtime config, in one reproducible layer (no Dockerfile, no runtime).
//! - [`dockerfile`] and [`words`]: the Dockerfile frontend; [`build`]
//!   executes it: base images pinned by digest, each RUN in an OCI runtime
//!   on an overlay mount whose upper directory becomes the layer, COPY and
//!   ADD through a root-confined view, a layer cache keyed by the parent
//!   chain, the instruction and its inputs.
//! - [`harden`]: package managers, their exclusive dependencies and
//!   libraries outside the ELF closure removed, the package database kept true.
//!
//! The crate never prints and never reads the environment; callers pass
//! everything in.

use std::io;
use std::path::PathBuf;

pub mod assemble;
mod bases;
mod cache;
mod copy;
mod diff;
pub mod dockerfile;
mod elf;
mod executor;
mod frontend;
pub mod harden;
pub mod ignore;
pub mod mounts;
mod overlay;
mod prune;
mod rootfs;
mod runtime;
pub mod words;

pub use assemble::{
    AssemblyReport, AssemblySpec, BaseImage, FileCopy, UserSpec, assemble, check_non_root,
    merge_runtime,
};
pub use bases::ResolvedBase;
pub use executor::{
    BuildEnvironment, BuildReport, BuildReporter, BuildSpec, StepEvent, StepStatus, StepSummary,
    build,
};
pub use frontend::{ExternalImage, external_images};
pub use prune::{PruneReport, prune};
pub use runtime::{RuntimeKind, RuntimeSettings};

/// Everything that can go wrong while producing an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OCI layer failed.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// The base image is not the one pinned.
    #[error("base image {name} resolves to {actual}, but the config pins {pinned}")]
    BaseDigestMismatch {
        /// The base image name.
        name: String,
        /// The pinned digest.
        pinned: String,
        /// What the name resolved to.
        actual: String,
    },
    /// A host file could not be read.
    #[error("reading {path}")]
    Host {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A destination path is not absolute or not normal.
    #[error("destination {destination:?} must be an absolute path without '..'")]
    BadDestination {
        /// The destination.
        destination: String,
    },
    /// The user clashes with an existing entry.
    #[error(
        "{database} already has {name:?} with id {existing}, but the config asks for {requested}"
    )]
    UserClash {
        /// `/etc/passwd` or `/etc/group`.
        database: &'static str,
        /// The name.
        name: String,
        /// The id found.
        existing: u32,
        /// The id asked for.
        requested: u32,
    },
    /// The image would run as root.
    #[error(
        "the image user {user:?} resolves to uid 0 through the image's /etc/passwd; images must run as a non-root user"
    )]
    RootUser {
        /// The configured user.
        user: String,
    },
    /// The user does not exist in the image.
    #[error(
        "the image user {user:?} is not in the image's /etc/passwd; create it first (useradd in a RUN step, [user] in sealcraft.toml) or give a numeric uid"
    )]
    UnknownUser {
        /// The configured user.
        user: String,
    },
    /// The user or group name is not valid in passwd/group files.
    #[error("invalid user or group name {name:?}")]
    BadName {
        /// The name.
        name: String,
    },
    /// The Dockerfile could not be parsed.
    #[error("{}:{line}: {message}", path.display())]
    Dockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        message: String,
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
    /// An instruction cannot be carried out as written.
    #[error("{keyword}: {message}")]
    Instruction {
        /// The instruction.
        keyword: &'static str,
        /// Why.
        message: String,
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
    /// A base image is named without a digest while pins are required.
    #[error(
        "{name} is not pinned: name it by digest (NAME@sha256:…) or map it to a pinned image with --base NAME=IMAGE ([build.bases] in sealcraft.toml)"
    )]
    NotPinned {
        /// The name.
        name: String,
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
    /// Pulling a base image failed.
    #[error(transparent)]
    Registry(#[from] sealcraft_registry::Error),
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
    /// The target stage does not exist.
    #[error("no stage named {target:?}; the Dockerfile's stages are {stages}")]
    UnknownTarget {
        /// The target asked for.
        target: String,
        /// The stages there are.
        stages: String,
    },
}

impl Error {
    /// Wraps an error with the Dockerfile line it happened at.
    pub(crate) fn at(path: &std::path::Path, line: usize, error: Error) -> Self {
        Self::At {
            path: path.to_path_buf(),
            line,
            source: Box::new(error),
        }
    }

    /// A store error.
    pub(crate) fn store(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> Self {
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
