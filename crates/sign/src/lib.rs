//! cosign-compatible signing.
//!
//! - [`keys`]: cosign key files (scrypt + secretbox over PKCS#8) and public keys;
//! - blob signatures: [`keys::PrivateKey::sign`] / [`keys::PublicKey::verify`]
//!   with the base64 helpers here, interchangeable with `cosign sign-blob --key`;
//! - [`payload`]: the simple-signing payload of image signatures;
//! - [`dsse`]: DSSE envelopes (PAE byte-exact) and in-toto Statements;
//! - [`artifacts`]: `.sig` and `.att` manifests, built and verified from
//!   the image digest alone, so signing happens before anything is pushed.
//!
//! No network and no printing: the registry client and the binary do those.

pub mod artifacts;
pub mod dsse;
mod error;
pub mod keys;
pub mod payload;

pub use error::{Error, Result};
pub use sealcraft_secrets::Secret;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `cosign sign-blob --key` output: base64 of the DER signature over `content`.
pub fn sign_blob(signer: &dyn keys::Signer, content: &[u8]) -> Result<String> {
    Ok(STANDARD.encode(signer.sign(content)?))
}

/// `cosign verify-blob --key`: checks a base64 signature (surrounding whitespace ignored).
pub fn verify_blob(key: &keys::PublicKey, content: &[u8], signature_base64: &str) -> Result<()> {
    let signature = STANDARD
        .decode(signature_base64.trim())
        .map_err(|_| Error::BadSignature {
            reason: "the signature is not base64",
        })?;
    key.verify(content, &signature)
}
