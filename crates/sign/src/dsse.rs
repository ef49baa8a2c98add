//! DSSE envelopes and in-toto Statements.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{PublicKey, Signer};

/// The payload type of in-toto attestations.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// The DSSE pre-authentication encoding: the exact bytes that are signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What the payload is.
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// The signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// An unauthenticated key hint (empty for key-based cosign signing).
    #[serde(default)]
    pub keyid: String,
    /// The signature over the PAE, base64.
    pub sig: String,
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .ok()
        .or_else(|| URL_SAFE.decode(text).ok())
}

impl Envelope {
    /// Signs `payload` of `payload_type`.
    pub fn sign(signer: &dyn Signer, payload_type: &str, payload: &[u8]) -> crate::Result<Self> {
        let signature = signer.sign(&pae(payload_type, payload))?;
        Ok(Self {
            payload_type: payload_type.to_owned(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: STANDARD.encode(signature),
            }],
        })
    }

    /// Parses an envelope.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|source| Error::NotJson {
            what: "DSSE envelope",
            source,
        })
    }

    /// The envelope as compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("plain data serialises"))
    }

    /// The decoded payload, if at least one signature verifies with `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<u8>> {
        let payload = decode_base64(&self.payload).ok_or_else(|| Error::Malformed {
            what: "DSSE envelope",
            reason: "payload is not base64".into(),
        })?;
        let message = pae(&self.payload_type, &payload);
        let verified = self.signatures.iter().any(|signature| {
            decode_base64(&signature.sig).is_some_and(|sig| key.verify(&message, &sig).is_ok())
        });
        if !verified {
            return Err(Error::BadSignature {
                reason: "no envelope signature verifies with this key",
            });
        }
        Ok(payload)
    }
}

/// An in-toto Statement (v1, or v0.1 when read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The statement type URI.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub predicate: serde_json::Value,
}

/// A statement subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// A name (the repository for images).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Digests by algorithm (`sha256` → hex).
    pub digest: std::collections::BTreeMap<String, String>,
}

impl Statement {
    /// A v1 statement about one image.
    pub fn for_image(
        repository: &str,
        sha256_hex: &str,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Self {
        Self {
            statement_type: STATEMENT_V1.to_owned(),
            subject: vec![Subject {
                name: repository.to_owned(),
                digest: [("sha256".to_owned(), sha256_hex.to_owned())].into(),
            }],
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }

    /// Parses a statement (v1 or v0.1).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let statement: Self = serde_json::from_slice(bytes).map_err(|source| Error::NotJson {
            what: "in-toto statement",
            source,
        })?;
        if !statement
            .statement_type
            .starts_with("https://in-toto.io/Statement/")
        {
            return Err(Error::Malformed {
                what: "in-toto statement",
                reason: format!("unknown _type {:?}", statement.statement_type),
            });
        }
        Ok(statement)
    }

    /// The statement as compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("plain data serialises"))
    }
}

/// Maps cosign's `--type` shortcuts to predicate type URIs.
pub fn predicate_type_uri(name: &str) -> String {
    match name {
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2",
        "slsaprovenance1" => "https://slsa.dev/provenance/v1",
        "spdx" => "https://spdx.dev/Document",
        "spdxjson" => "https://spdx.dev/Document",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "link" => "https://in-toto.io/Link/v1",
        "openvex" => "https://openvex.dev/ns",
        "custom" => "https://cosign.sigstore.dev/attestation/v1",
        other => other,
    }
    .to_owned()
}
