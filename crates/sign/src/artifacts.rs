//! Signatures and attestations stored the way cosign stores them: an OCI
//! manifest at tag `sha256-<hex>.sig` (or `.att`) in the image's
//! repository, one layer per signature. Everything here is computed from
//! the image digest alone, so an image can be signed before it is pushed.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealcraft_oci::digest::{Digest, sha256_of};
use sealcraft_oci::manifest::{Descriptor, Manifest, media_type, to_canonical_json};
use serde_json::json;

use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, Statement};
use crate::error::{Error, Result};
use crate::keys::{PublicKey, Signer};
use crate::payload::SimpleSigning;

/// Layer media type of a signature payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer media type of an attestation envelope.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer annotation holding an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// The tag cosign uses for signatures of `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.digest())
}

/// The tag cosign uses for attestations of `digest`.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("{}-{}.att", digest.algorithm(), digest.digest())
}

/// A signature or attestation manifest and the blobs it needs.
#[derive(Debug, Clone)]
pub struct ArtifactManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Blobs to upload before the manifest (config and new layers).
    pub blobs: Vec<(Digest, Vec<u8>)>,
    /// Whether anything was added to the existing manifest.
    pub changed: bool,
}

impl ArtifactManifest {
    /// The manifest's digest.
    pub fn digest(&self) -> Digest {
        sha256_of(&self.bytes)
    }
}

/// Builds the manifest that lists `layers`, with the go-containerregistry
/// style config cosign writes (one diff ID and history entry per layer).
fn manifest_for(
    layers: Vec<Descriptor>,
    new_blobs: Vec<(Digest, Vec<u8>)>,
    changed: bool,
) -> Result<ArtifactManifest> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|layer| layer.digest.to_string())
        .collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    let config_bytes = to_canonical_json("signature config", &config)?;
    let config_digest = sha256_of(&config_bytes);
    let manifest = Manifest::new_oci(
        Descriptor::new(
            media_type::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers,
    );
    let bytes = to_canonical_json("signature manifest", &manifest)?;
    let mut blobs = new_blobs;
    blobs.push((config_digest, config_bytes));
    Ok(ArtifactManifest {
        manifest,
        bytes,
        blobs,
        changed,
    })
}

/// Signs the image `digest` as `reference` and returns the `.sig` manifest:
/// `existing` (the manifest already at the tag, if any) with one layer
/// added, unless an identical payload already carries a valid signature by this key.
pub fn sign_image(
    key: &dyn Signer,
    reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
    existing: Option<&Manifest>,
) -> Result<ArtifactManifest> {
    let payload = SimpleSigning::new(reference, digest.as_ref(), annotations).to_bytes();
    let payload_digest = sha256_of(&payload);
    let public = key.public_key();
    let mut layers: Vec<Descriptor> = existing
        .map(|manifest| manifest.layers.clone())
        .unwrap_or_default();
    let already_signed = layers.iter().any(|layer| {
        layer.digest == payload_digest
            && layer
                .annotations
                .get(SIGNATURE_ANNOTATION)
                .and_then(|sig| STANDARD.decode(sig).ok())
                .is_some_and(|sig| public.verify(&payload, &sig).is_ok())
    });
    if already_signed {
        return manifest_for(layers, Vec::new(), false);
    }
    let signature = STANDARD.encode(key.sign(&payload)?);
    let mut layer = Descriptor::new(
        SIMPLE_SIGNING_MEDIA_TYPE,
        payload_digest.clone(),
        payload.len() as u64,
    );
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.to_owned(), signature);
    layers.push(layer);
    manifest_for(layers, vec![(payload_digest, payload)], true)
}

/// Signs `statement` into a DSSE envelope and returns the `.att` manifest
/// with it appended to `existing`.
pub fn attest_image(
    key: &dyn Signer,
    statement: &Statement,
    existing: Option<&Manifest>,
) -> Result<ArtifactManifest> {
    let envelope = Envelope::sign(key, IN_TOTO_PAYLOAD_TYPE, &statement.to_bytes())?.to_bytes();
    let envelope_digest = sha256_of(&envelope);
    let mut layers: Vec<Descriptor> = existing
        .map(|manifest| manifest.layers.clone())
        .unwrap_or_default();
    if layers.iter().any(|layer| layer.digest == envelope_digest) {
        return manifest_for(layers, Vec::new(), false);
    }
    let mut layer = Descriptor::new(
        DSSE_MEDIA_TYPE,
        envelope_digest.clone(),
        envelope.len() as u64,
    );
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.to_owned(), String::new());
    layer.annotations.insert(
        PREDICATE_TYPE_ANNOTATION.to_owned(),
        statement.predicate_type.clone(),
    );
    layers.push(layer);
    manifest_for(layers, vec![(envelope_digest, envelope)], true)
}

/// A signature that verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifiedSignature {
    /// The reference the payload names.
    pub docker_reference: String,
    /// The digest it names.
    pub digest: String,
    /// Its optional claims.
    pub annotations: BTreeMap<String, serde_json::Value>,
}

/// Checks the `.sig` manifest's layers: at least one must be a payload
/// naming `digest` (and, when given, `repository`) with a signature by `key`.
/// `blob` returns a layer's bytes, verified against its digest.
pub fn verify_signatures(
    manifest: &Manifest,
    key: &PublicKey,
    digest: &Digest,
    repository: Option<&str>,
    blob: &mut dyn FnMut(&Descriptor) -> Result<Vec<u8>>,
) -> Result<VerifiedSignature> {
    let mut reasons = Vec::new();
    for layer in &manifest.layers {
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
            continue;
        }
        let Some(signature) = layer
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .and_then(|sig| STANDARD.decode(sig).ok())
        else {
            reasons.push(format!("layer {}: no signature annotation", layer.digest));
            continue;
        };
        let payload = blob(layer)?;
        if let Err(error) = key.verify(&payload, &signature) {
            reasons.push(format!(
                "layer {}: {}",
                layer.digest,
                sealcraft_findings::chain(&error)
            ));
            continue;
        }
        let parsed = match SimpleSigning::parse(&payload) {
            Ok(parsed) => parsed,
            Err(error) => {
                reasons.push(format!(
                    "layer {}: {}",
                    layer.digest,
                    sealcraft_findings::chain(&error)
                ));
                continue;
            }
        };
        if parsed.critical.image.docker_manifest_digest != digest.to_string() {
            reasons.push(format!(
                "layer {}: the payload names {}, not {digest}",
                layer.digest, parsed.critical.image.docker_manifest_digest
            ));
            continue;
        }
        if let Some(repository) = repository
            && parsed.repository() != repository
        {
            reasons.push(format!(
                "layer {}: the payload names repository {}, not {repository}",
                layer.digest,
                parsed.repository()
            ));
            continue;
        }
        return Ok(VerifiedSignature {
            docker_reference: parsed.critical.identity.docker_reference.clone(),
            digest: parsed.critical.image.docker_manifest_digest.clone(),
            annotations: parsed.optional.unwrap_or_default(),
        });
    }
    if reasons.is_empty() {
        reasons.push("no signatures found".into());
    }
    Err(Error::NotVerified {
        what: "signature",
        digest: digest.to_string(),
        reasons,
    })
}

/// An attestation that verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifiedAttestation {
    /// Its predicate type.
    pub predicate_type: String,
    /// The statement.
    pub statement: serde_json::Value,
}

/// Checks the `.att` manifest: every envelope of `predicate_type` that
/// verifies with `key` must have a subject with `digest`; at least one must.
pub fn verify_attestations(
    manifest: &Manifest,
    key: &PublicKey,
    digest: &Digest,
    predicate_type: &str,
    blob: &mut dyn FnMut(&Descriptor) -> Result<Vec<u8>>,
) -> Result<Vec<VerifiedAttestation>> {
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    for layer in &manifest.layers {
        if layer.media_type != DSSE_MEDIA_TYPE {
            continue;
        }
        if layer
            .annotations
            .get(PREDICATE_TYPE_ANNOTATION)
            .is_some_and(|annotated| annotated != predicate_type)
        {
            continue;
        }
        let envelope = match Envelope::parse(&blob(layer)?) {
            Ok(envelope) => envelope,
            Err(error) => {
                reasons.push(format!(
                    "layer {}: {}",
                    layer.digest,
                    sealcraft_findings::chain(&error)
                ));
                continue;
            }
        };
        let payload = match envelope.verify(key) {
            Ok(payload) => payload,
            Err(error) => {
                reasons.push(format!(
                    "layer {}: {}",
                    layer.digest,
                    sealcraft_findings::chain(&error)
                ));
                continue;
            }
        };
        let statement = match Statement::parse(&payload) {
            Ok(statement) => statement,
            Err(error) => {
                reasons.push(format!(
                    "layer {}: {}",
                    layer.digest,
                    sealcraft_findings::chain(&error)
                ));
                continue;
            }
        };
        if statement.predicate_type != predicate_type {
            continue;
        }
        let names_digest = statement.subject.iter().any(|subject| {
            subject
                .digest
                .get(digest.algorithm().as_ref())
                .is_some_and(|hex| hex == digest.digest())
        });
        if !names_digest {
            reasons.push(format!(
                "layer {}: no statement subject has digest {digest}",
                layer.digest
            ));
            continue;
        }
        let value = serde_json::from_slice(&payload).map_err(|source| Error::NotJson {
            what: "in-toto statement",
            source,
        })?;
        verified.push(VerifiedAttestation {
            predicate_type: statement.predicate_type,
            statement: value,
        });
    }
    if verified.is_empty() {
        if reasons.is_empty() {
            reasons.push(format!("no attestations of type {predicate_type}"));
        }
        return Err(Error::NotVerified {
            what: "attestation",
            digest: digest.to_string(),
            reasons,
        });
    }
    Ok(verified)
}
