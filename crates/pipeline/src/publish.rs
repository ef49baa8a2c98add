//! Publishing and verification: the image is signed before it is pushed.
//!
//! The manifest digest is computed from the exact bytes in the local
//! layout, the signature is made from it, and the pushes happen in this
//! order: image blobs → `.sig` manifest → image manifest by digest → tag →
//! `.att` manifest. At no point is the image visible without its
//! signature, and a publish that fails midway leaves at most a signature
//! for an image that is not there yet. An index is handled the same way,
//! each platform image signed and pushed before the index.

use std::collections::BTreeMap;

use sealcraft_oci::digest::Digest;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{Descriptor, Index, Manifest, media_type};
use sealcraft_registry::{Client, Upload};
use sealcraft_sign::artifacts::{
    ArtifactManifest, VerifiedAttestation, VerifiedSignature, attest_image, attestation_tag,
    sign_image, signature_tag, verify_attestations, verify_signatures,
};
use sealcraft_sign::dsse::Statement;
use sealcraft_sign::keys::{PublicKey, Signer};
use serde::Serialize;

use crate::error::{Error, Result};

/// Largest signature or attestation blob read back (as cosign's default limit).
const MAX_ATTACHMENT_BYTES: u64 = 128 << 20;

/// Where images are published: a registry repository or a local layout.
pub enum Destination<'a> {
    /// `HOST/REPO:TAG`.
    Registry {
        /// The client.
        client: &'a Client,
        /// `host[:port]`.
        registry: String,
        /// The repository.
        repository: String,
    },
    /// `oci:DIR:TAG`.
    Layout(Layout),
}

impl Destination<'_> {
    fn display(&self, tag: &str) -> String {
        match self {
            Self::Registry {
                registry,
                repository,
                ..
            } => format!("{registry}/{repository}:{tag}"),
            Self::Layout(layout) => format!("oci:{}:{tag}", layout.root().display()),
        }
    }

    /// What the signature payload names as the image.
    fn identity(&self, tag: &str) -> String {
        self.display(tag)
    }

    fn repository_identity(&self) -> Option<String> {
        match self {
            Self::Registry {
                registry,
                repository,
                ..
            } => Some(format!("{registry}/{repository}")),
            Self::Layout(_) => None,
        }
    }

    fn push_blob(&self, source: &Layout, descriptor: &Descriptor) -> Result<()> {
        match self {
            Self::Registry {
                client,
                registry,
                repository,
            } => {
                let path = source.verify_blob(descriptor)?;
                client.push_blob(
                    registry,
                    repository,
                    &descriptor.digest,
                    descriptor.size,
                    &Upload::File(&path),
                    None,
                )?;
            }
            Self::Layout(layout) => layout.copy_blob_from(source, descriptor)?,
        }
        Ok(())
    }

    fn push_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        match self {
            Self::Registry {
                client,
                registry,
                repository,
            } => client.push_blob(
                registry,
                repository,
                digest,
                bytes.len() as u64,
                &Upload::Bytes(bytes),
                None,
            )?,
            Self::Layout(layout) => {
                layout.put_blob(bytes)?;
            }
        }
        Ok(())
    }

    fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        match self {
            Self::Registry {
                client,
                registry,
                repository,
            } => Ok(client.put_manifest(registry, repository, reference, media_type, bytes)?),
            Self::Layout(layout) => {
                let digest = layout.put_blob(bytes)?;
                if !reference.contains(':') {
                    layout.tag(
                        reference,
                        &Descriptor::new(media_type, digest.clone(), bytes.len() as u64),
                    )?;
                }
                Ok(digest)
            }
        }
    }

    fn get_manifest(&self, reference: &str) -> Result<Option<(String, Vec<u8>, Digest)>> {
        match self {
            Self::Registry {
                client,
                registry,
                repository,
            } => Ok(client
                .get_manifest(registry, repository, reference)?
                .map(|fetched| (fetched.media_type, fetched.bytes, fetched.digest))),
            Self::Layout(layout) => match layout.resolve(Some(reference)) {
                Ok(descriptor) => {
                    let bytes = layout.read_blob(&descriptor)?;
                    Ok(Some((
                        descriptor.media_type.clone(),
                        bytes,
                        descriptor.digest,
                    )))
                }
                Err(sealcraft_oci::Error::TagNotFound { .. }) => Ok(None),
                Err(error) => Err(error.into()),
            },
        }
    }

    fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        match self {
            Self::Registry {
                client,
                registry,
                repository,
            } => Ok(client.get_blob(
                registry,
                repository,
                &descriptor.digest,
                MAX_ATTACHMENT_BYTES.min(descriptor.size),
            )?),
            Self::Layout(layout) => Ok(layout.read_blob(descriptor)?),
        }
    }

    fn existing_artifact(&self, tag: &str) -> Result<Option<Manifest>> {
        match self.get_manifest(tag)? {
            None => Ok(None),
            Some((_, bytes, digest)) => Ok(Some(sealcraft_oci::manifest::from_blob(
                "signature manifest",
                &digest,
                &bytes,
            )?)),
        }
    }

    fn put_artifact(&self, tag: &str, artifact: &ArtifactManifest) -> Result<()> {
        if !artifact.changed {
            return Ok(());
        }
        for (digest, bytes) in &artifact.blobs {
            self.push_bytes(digest, bytes)?;
        }
        self.put_manifest(tag, media_type::OCI_MANIFEST, &artifact.bytes)?;
        Ok(())
    }
}

/// A function that returns the signer: a decrypted key, or a KMS.
pub type KeyLoader<'a> = &'a (
        dyn Fn() -> std::result::Result<Box<dyn Signer>, Box<dyn std::error::Error + Send + Sync>>
            + Sync
    );

/// Blob uploads that run at once.
const PARALLEL_UPLOADS: usize = 4;

/// What to publish.
pub struct PublishRequest<'a> {
    /// The layout holding the image.
    pub source: &'a Layout,
    /// The image (manifest or index) in it.
    pub image: Descriptor,
    /// The tag to publish under.
    pub tag: String,
    /// Loads the signing key. It runs on its own thread while the blobs
    /// upload, since decrypting a key file (scrypt) takes a noticeable time.
    pub key: KeyLoader<'a>,
    /// Extra claims in the signature payload.
    pub annotations: BTreeMap<String, String>,
    /// Attestations: predicate type URI and predicate.
    pub attestations: Vec<(String, serde_json::Value)>,
}

/// One step of a publish, in the order it happened.
#[derive(Debug, Clone, Serialize)]
pub struct PublishStep {
    /// What was stored.
    pub what: String,
    /// Under which reference.
    pub reference: String,
    /// Its digest.
    pub digest: String,
}

/// What a publish did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// The published reference (`registry/repo:tag@digest`).
    pub reference: String,
    /// The image digest.
    pub digest: String,
    /// The steps, in order.
    pub steps: Vec<PublishStep>,
}

/// Signs and publishes `request.image` to `destination`.
pub fn publish(
    request: &PublishRequest<'_>,
    destination: &Destination<'_>,
) -> Result<PublishReport> {
    let mut steps = Vec::new();
    let manifest_bytes = request.source.read_blob(&request.image)?;
    let images: Vec<Descriptor> = if media_type::is_index(&request.image.media_type) {
        let index: Index = sealcraft_oci::manifest::from_blob(
            "image index",
            &request.image.digest,
            &manifest_bytes,
        )?;
        index.manifests
    } else {
        vec![request.image.clone()]
    };
    let mut blobs: Vec<Descriptor> = Vec::new();
    for image in &images {
        let manifest = request.source.read_manifest(image)?;
        for blob in std::iter::once(manifest.config).chain(manifest.layers) {
            if !blobs.iter().any(|known| known.digest == blob.digest) {
                blobs.push(blob);
            }
        }
    }
    // Blobs alone make no image visible, so they go first, in parallel, while the key is decrypted.
    let key = std::thread::scope(|scope| {
        let key_thread = scope.spawn(|| (request.key)());
        let workers: Vec<_> = (0..PARALLEL_UPLOADS.min(blobs.len()))
            .map(|worker| {
                let blobs = &blobs;
                scope.spawn(move || -> Result<()> {
                    for blob in blobs.iter().skip(worker).step_by(PARALLEL_UPLOADS) {
                        destination.push_blob(request.source, blob)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut outcome = Ok(());
        for worker in workers {
            let result = worker.join().unwrap_or_else(|_| {
                Err(Error::Published {
                    reason: "a blob upload thread panicked".into(),
                })
            });
            if outcome.is_ok() {
                outcome = result;
            }
        }
        let key = key_thread
            .join()
            .unwrap_or_else(|_| Err("loading the key panicked".into()))
            .map_err(Error::Key);
        outcome.and(key)
    })?;
    steps.push(PublishStep {
        what: "blobs".into(),
        reference: format!("{} blobs", blobs.len()),
        digest: request.image.digest.to_string(),
    });
    if images.len() > 1 || images[0].digest != request.image.digest {
        for child in &images {
            let bytes = request.source.read_blob(child)?;
            publish_manifest(
                request,
                key.as_ref(),
                destination,
                child,
                &bytes,
                &mut steps,
            )?;
        }
    }
    publish_manifest(
        request,
        key.as_ref(),
        destination,
        &request.image,
        &manifest_bytes,
        &mut steps,
    )?;
    destination.put_manifest(&request.tag, &request.image.media_type, &manifest_bytes)?;
    steps.push(PublishStep {
        what: "tag".into(),
        reference: request.tag.clone(),
        digest: request.image.digest.to_string(),
    });
    if !request.attestations.is_empty() {
        let tag = attestation_tag(&request.image.digest);
        let mut current = destination.existing_artifact(&tag)?;
        let repository = destination
            .repository_identity()
            .unwrap_or_else(|| destination.display(&request.tag));
        let mut new_blobs = Vec::new();
        let mut last = None;
        for (predicate_type, predicate) in &request.attestations {
            let statement = Statement::for_image(
                &repository,
                request.image.digest.digest(),
                predicate_type,
                predicate.clone(),
            );
            let artifact = attest_image(key.as_ref(), &statement, current.as_ref())?;
            current = Some(artifact.manifest.clone());
            // Each step's blobs hold only its own new envelope (and a config); keep them all.
            new_blobs.extend(artifact.blobs.iter().cloned());
            last = Some(artifact);
        }
        if let Some(artifact) = last.filter(|_| !new_blobs.is_empty()) {
            let referenced = |digest: &Digest| {
                artifact.manifest.config.digest == *digest
                    || artifact
                        .manifest
                        .layers
                        .iter()
                        .any(|layer| layer.digest == *digest)
            };
            new_blobs.retain(|(digest, _)| referenced(digest));
            let combined = ArtifactManifest {
                blobs: new_blobs,
                changed: true,
                ..artifact
            };
            destination.put_artifact(&tag, &combined)?;
            steps.push(PublishStep {
                what: "attestations".into(),
                reference: tag,
                digest: combined.digest().to_string(),
            });
        }
    }
    Ok(PublishReport {
        reference: format!(
            "{}@{}",
            destination.display(&request.tag),
            request.image.digest
        ),
        digest: request.image.digest.to_string(),
        steps,
    })
}

/// Signs one manifest, pushes the signature, then the manifest by digest.
fn publish_manifest(
    request: &PublishRequest<'_>,
    key: &dyn Signer,
    destination: &Destination<'_>,
    image: &Descriptor,
    bytes: &[u8],
    steps: &mut Vec<PublishStep>,
) -> Result<()> {
    let signature_tag = signature_tag(&image.digest);
    let existing = destination.existing_artifact(&signature_tag)?;
    let signature = sign_image(
        key,
        &destination.identity(&request.tag),
        &image.digest,
        &request.annotations,
        existing.as_ref(),
    )?;
    destination.put_artifact(&signature_tag, &signature)?;
    steps.push(PublishStep {
        what: "signature".into(),
        reference: signature_tag,
        digest: signature.digest().to_string(),
    });
    let stored = destination.put_manifest(image.digest.as_ref(), &image.media_type, bytes)?;
    if stored != image.digest {
        return Err(Error::Published {
            reason: format!(
                "the stored manifest has digest {stored}, not the signed {}",
                image.digest
            ),
        });
    }
    steps.push(PublishStep {
        what: "manifest".into(),
        reference: image.digest.to_string(),
        digest: image.digest.to_string(),
    });
    Ok(())
}

/// What verification found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The image digest the reference resolved to.
    pub digest: String,
    /// The signature that verified.
    pub signature: VerifiedSignature,
    /// Attestations that verified.
    pub attestations: Vec<VerifiedAttestation>,
}

/// Why verification did not pass, or failed to run.
pub enum VerifyOutcome {
    /// Everything checked.
    Verified(VerifyReport),
    /// A check said no (exit 1).
    Rejected(String),
}

/// Verifies the image at `reference` (a tag or digest) in `destination`.
pub fn verify(
    destination: &Destination<'_>,
    reference: &str,
    key: &PublicKey,
    predicate_type: Option<&str>,
) -> Result<VerifyOutcome> {
    let Some((_, _, digest)) = destination.get_manifest(reference)? else {
        return Ok(VerifyOutcome::Rejected(format!(
            "no image {}",
            destination.display(reference)
        )));
    };
    let Some(signatures) = destination.existing_artifact(&signature_tag(&digest))? else {
        return Ok(VerifyOutcome::Rejected(format!(
            "no signatures found for {digest}"
        )));
    };
    let mut fetch = |descriptor: &Descriptor| {
        destination
            .get_blob(descriptor)
            .map_err(|error| sealcraft_sign::Error::Fetch {
                digest: descriptor.digest.to_string(),
                source: Box::new(error),
            })
    };
    let repository = destination.repository_identity();
    let signature =
        match verify_signatures(&signatures, key, &digest, repository.as_deref(), &mut fetch) {
            Ok(signature) => signature,
            // A registry that fails mid-check decides nothing: an error, not a rejection.
            Err(error @ sealcraft_sign::Error::Fetch { .. }) => return Err(error.into()),
            Err(error) => return Ok(VerifyOutcome::Rejected(error.to_string())),
        };
    let mut attestations = Vec::new();
    if let Some(predicate_type) = predicate_type {
        let Some(manifest) = destination.existing_artifact(&attestation_tag(&digest))? else {
            return Ok(VerifyOutcome::Rejected(format!(
                "no attestations found for {digest}"
            )));
        };
        match verify_attestations(&manifest, key, &digest, predicate_type, &mut fetch) {
            Ok(found) => attestations = found,
            Err(error @ sealcraft_sign::Error::Fetch { .. }) => return Err(error.into()),
            Err(error) => return Ok(VerifyOutcome::Rejected(error.to_string())),
        }
    }
    Ok(VerifyOutcome::Verified(VerifyReport {
        digest: digest.to_string(),
        signature,
        attestations,
    }))
}
