//! Running processes in a container without a daemon, and the overlay
//! mounts their root filesystems live on.
//!
//! - [`container`]: an OCI bundle (namespaces, Docker's default
//!   capabilities, private /dev and /proc, read-only /sys, the host's
//!   resolv.conf, bind and tmpfs mounts) run by runc or crun, with the
//!   output streamed line by line.
//! - [`overlay`]: overlayfs mounts of layer directories, read-only or with
//!   an upper directory that collects what the process changed.
//! - [`started`]: a container in the background (stdout and stderr apart,
//!   signals, a deadline); [`probe`]: TCP and HTTP probes from inside its
//!   network namespace.
//!
//! Dockerfile RUN steps and image tests both run here.

use std::io;
use std::path::{Path, PathBuf};

pub mod container;
pub mod overlay;
pub mod probe;
pub mod started;

pub use container::{
    ExtraMount, ProcessSpec, RunOutcome, Runtime, RuntimeKind, RuntimeSettings, is_capability,
    write_private,
};
pub use overlay::{OverlayMount, sweep_stale_mounts};
pub use probe::{Probe, ProbeAnswer, probe_in};
pub use started::{Finished, Started};

/// What can go wrong while running a container or mounting its root.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory of the bundle or state could not be prepared.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The runtime program could not be started.
    #[error("starting {} (is it installed?)", program.display())]
    Start {
        /// The runtime executable.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the container's output or status failed.
    #[error("reading the output of {}", program.display())]
    Output {
        /// The runtime executable.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An overlay could not be mounted.
    #[error("mounting an overlay at {}", target.display())]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An overlay could not be unmounted.
    #[error("unmounting {}", target.display())]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Maps an I/O error on `path` to [`Error::Io`].
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
