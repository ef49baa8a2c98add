use std::path::PathBuf;

/// Errors of planning and running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config file is invalid.
    #[error("{path}:{line}:{column}: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key concerned, dotted.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A file operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An image operation failed.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// Assembly failed.
    #[error(transparent)]
    Build(#[from] sealcraft_build::Error),
    /// Talking to the registry failed.
    #[error(transparent)]
    Registry(#[from] sealcraft_registry::Error),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] sealcraft_sign::Error),
    /// The registry stored something other than what was signed.
    #[error("publish failed: {reason}")]
    Published {
        /// What went wrong.
        reason: String,
    },
    /// A stage needs something from outside that the caller did not pass in.
    #[error("the {stage} stage was not given {what}")]
    NotProvided {
        /// The stage.
        stage: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The signing key could not be loaded.
    #[error("loading the signing key")]
    Key(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A gate said no (the run stops before anything is published).
    #[error("the {stage} gate failed: {reason}")]
    GateFailed {
        /// The stage.
        stage: &'static str,
        /// Why.
        reason: String,
    },
    /// The advisory database could not be read.
    #[error(transparent)]
    AdvisoryStore(#[from] sealcraft_vuln::store::Error),
    /// Uploading artifacts failed.
    #[error(transparent)]
    Store(#[from] sealcraft_store::Error),
    /// A stage failed; the run record says so.
    #[error("stage {stage} failed")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
