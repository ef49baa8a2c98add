//! The simple-signing payload cosign signs for an image.
//!
//! sealcraft puts the tag-qualified reference in `docker-reference` (as
//! skopeo does), so that containers-policy's default identity check also
//! accepts its signatures; cosign ignores the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `type` value cosign requires.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The payload document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// What the signature vouches for.
    pub critical: Critical,
    /// Extra claims (`-a key=value` in cosign); `null` when empty.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The critical section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The image reference.
    pub identity: Identity,
    /// The manifest digest.
    pub image: ImageDigest,
    /// Always [`SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The reference the image was signed as.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDigest {
    /// `sha256:<hex>` of the exact manifest bytes.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl SimpleSigning {
    /// A payload for `reference` at `digest`, with optional annotations.
    pub fn new(reference: &str, digest: &str, annotations: &BTreeMap<String, String>) -> Self {
        Self {
            critical: Critical {
                identity: Identity {
                    docker_reference: reference.to_owned(),
                },
                image: ImageDigest {
                    docker_manifest_digest: digest.to_owned(),
                },
                kind: SIGNATURE_TYPE.to_owned(),
            },
            optional: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect()
            }),
        }
    }

    /// The exact bytes that are signed (compact JSON, cosign's key order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("plain data serialises"))
    }

    /// Parses payload bytes and checks the type.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let payload: Self = serde_json::from_slice(bytes).map_err(|source| Error::NotJson {
            what: "simple-signing payload",
            source,
        })?;
        if payload.critical.kind != SIGNATURE_TYPE {
            return Err(Error::Malformed {
                what: "simple-signing payload",
                reason: format!(
                    "type is {:?}, not {SIGNATURE_TYPE:?}",
                    payload.critical.kind
                ),
            });
        }
        Ok(payload)
    }

    /// The repository part of `docker-reference` (tag and digest removed).
    pub fn repository(&self) -> &str {
        let reference = self.critical.identity.docker_reference.as_str();
        let without_digest = reference.split('@').next().unwrap_or(reference);
        let last_slash = without_digest.rfind('/').map_or(0, |index| index + 1);
        match without_digest[last_slash..].rfind(':') {
            Some(colon) => &without_digest[..last_slash + colon],
            None => without_digest,
        }
    }
}
