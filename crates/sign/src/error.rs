/// Errors of signing and verification. None of them carries a password or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not a key file sealcraft can read.
    #[error("not a cosign key file: {reason}")]
    NotAKeyFile {
        /// What is wrong.
        reason: &'static str,
    },
    /// The PEM label is not one of the cosign labels.
    #[error(
        "unsupported PEM type {label:?}: expected ENCRYPTED COSIGN PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY (plain keys must be encrypted first, e.g. with `cosign import-key-pair`)"
    )]
    UnsupportedKeyLabel {
        /// The label found.
        label: String,
    },
    /// Decryption failed: the password is wrong (or the file was altered).
    #[error("wrong password for the private key (decryption failed)")]
    WrongPassword,
    /// Encoding a key failed.
    #[error("encoding the key failed")]
    KeyEncoding,
    /// A signature is malformed or does not verify.
    #[error("invalid signature: {reason}")]
    BadSignature {
        /// What is wrong.
        reason: &'static str,
    },
    /// A signature or attestation document is malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What document.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A document is not the JSON its format requires.
    #[error("malformed {what}")]
    NotJson {
        /// What document.
        what: &'static str,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Nothing verified: every candidate failed, each for the reason listed.
    #[error("no valid {what} for {digest}: {}", reasons.join("; "))]
    NotVerified {
        /// `signature` or `attestation`.
        what: &'static str,
        /// The image digest they were checked against.
        digest: String,
        /// Why each candidate failed.
        reasons: Vec<String>,
    },
    /// A signature or attestation layer could not be fetched: nothing can be decided.
    #[error("fetching {digest}")]
    Fetch {
        /// The layer.
        digest: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An OCI document could not be built.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// A remote signer (a KMS) refused or could not be reached.
    #[error("signing with {signer} failed")]
    Signer {
        /// The signer, as configured (`vault-transit:KEY`).
        signer: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
