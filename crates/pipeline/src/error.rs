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
        /// The error behind it, when a parser of a lower crate said no.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
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
    /// The Dockerfile cannot be used as written.
    #[error(transparent)]
    Dockerfile(#[from] sealcraft_dockerfile::Error),
    /// A Dockerfile build failed.
    #[error(transparent)]
    Build(#[from] sealcraft_builder::Error),
    /// Native assembly failed.
    #[error(transparent)]
    Assemble(#[from] sealcraft_assemble::Error),
    /// Hardening failed.
    #[error(transparent)]
    Harden(#[from] sealcraft_harden::Error),
    /// The image tests could not run (a failing test is a gate, not this).
    #[error(transparent)]
    Test(#[from] sealcraft_imagetest::Error),
    /// The image could not be patched.
    #[error(transparent)]
    Patch(#[from] sealcraft_patch::Error),
    /// The scan that feeds the patch stage produced a report it cannot read.
    #[error("the scan before patching: {0}")]
    PatchReport(#[from] sealcraft_vuln::trivy::ReportError),
    /// The SBOM documents could not be written.
    #[error(transparent)]
    Sbom(#[from] sealcraft_sbom::Error),
    /// A file of the run directory could not be written.
    #[error(transparent)]
    Write(#[from] sealcraft_files::Error),
    /// A record could not be serialized.
    #[error("serializing {what}")]
    Serialize {
        /// What.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
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
    Advisories(#[from] sealcraft_vuln::Error),
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

impl Error {
    /// Whether a gate said no (the run stopped before publishing): exit 1, not 2.
    pub fn is_gate_failure(&self) -> bool {
        match self {
            Self::GateFailed { .. } => true,
            Self::Stage { source, .. } => source.is_gate_failure(),
            _ => false,
        }
    }
}
