//! The Dockerfile language, before anything runs.
//!
//! - [`parse`] (with `lines`): text to the stages of [`instructions`]
//!   (directives, continuations, heredocs, exec and shell forms, flags);
//!   anything unsupported is refused with its line.
//! - [`words`]: ARG and ENV substitution and quoting as the builder applies
//!   them at the moment an instruction runs.
//! - [`mounts`]: `RUN --mount` values (secret, cache, tmpfs).
//! - [`ignore`]: `.dockerignore` rules.
//! - [`frontend`]: global ARGs, the target, the stages it needs and the
//!   external images they name. The builder builds from it; the plan and
//!   preflight use it to check pins, so all agree on which images a build uses.
//!
//! Nothing here touches the filesystem or the network.

use std::path::{Path, PathBuf};

pub mod frontend;
pub mod ignore;
pub mod instructions;
mod lines;
pub mod mounts;
pub mod parse;
pub mod words;

pub use frontend::{ExternalImage, Frontend, external_images};
pub use ignore::IgnoreRules;
pub use instructions::{
    ArgDecl, Command, Copy, CopySource, Dockerfile, Form, Healthcheck, Instruction, Network, Run,
    Stage,
};
pub use mounts::{Mount, MountError, Sharing};
pub use parse::{DurationError, ParseError, Problem, parse, parse_duration};
pub use words::{Vars, WordError};

/// Why a Dockerfile cannot be used as written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text does not parse.
    #[error("{}:{line}: {problem}", path.display())]
    Parse {
        /// The Dockerfile.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        problem: Problem,
    },
    /// A global ARG's default does not expand.
    #[error("{}:{line}: ARG {name}: {error}", path.display())]
    GlobalArg {
        /// The Dockerfile.
        path: PathBuf,
        /// The line of the first FROM.
        line: usize,
        /// The argument.
        name: String,
        /// Why.
        error: WordError,
    },
    /// Something is wrong at a line; the cause follows.
    #[error("{}:{line}", path.display())]
    At {
        /// The Dockerfile.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong there.
        #[source]
        source: Box<Error>,
    },
    /// A word of an instruction does not expand.
    #[error("{keyword}: {error}")]
    Word {
        /// The instruction.
        keyword: &'static str,
        /// Why.
        error: WordError,
    },
    /// `COPY --from=N` names a stage that is not earlier.
    #[error("COPY: --from={index}: stage {index} is not an earlier stage")]
    NotAnEarlierStage {
        /// The stage index.
        index: usize,
    },
    /// A stage refers to one defined after it.
    #[error("FROM: stage {name:?} is defined later; a stage can only use earlier stages")]
    DefinedLater {
        /// The stage name.
        name: String,
    },
    /// A base image is named without a digest while pins are required.
    #[error(
        "{name} is not pinned: name it by digest (NAME@sha256:…) or map it to a pinned image with --base NAME=IMAGE ([build.bases] in sealcraft.toml)"
    )]
    NotPinned {
        /// The name.
        name: String,
    },
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
    pub fn at(path: &Path, line: usize, error: Error) -> Self {
        Self::At {
            path: path.to_path_buf(),
            line,
            source: Box::new(error),
        }
    }

    /// A parse error of the file at `path`.
    pub fn parse(path: &Path, error: ParseError) -> Self {
        Self::Parse {
            path: path.to_path_buf(),
            line: error.line,
            problem: error.problem,
        }
    }

    /// Whether the error already names its line.
    pub fn has_line(&self) -> bool {
        matches!(
            self,
            Self::Parse { .. } | Self::GlobalArg { .. } | Self::At { .. }
        )
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads and parses the Dockerfile at `path` from `text`.
pub fn parse_file(path: &Path, text: &str) -> Result<Dockerfile> {
    parse::parse(text).map_err(|error| Error::parse(path, error))
}
