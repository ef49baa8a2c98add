//! Base images of a build: where `FROM` and `COPY --from` images come from.
//!
//! A base is `scratch`, an `oci:DIR[:TAG][@DIGEST]` layout, or a registry
//! reference `HOST/REPO[:TAG][@DIGEST]`; a mapping (`--base NAME=IMAGE`,
//! `[build.bases]`) can stand in for a name as the Dockerfile writes it, so
//! the same Dockerfile builds with docker and with pinned local images here.
//! Whatever the name, it is resolved once to a manifest digest, which the
//! report records for provenance; with the pin policy on, a name without a
//! digest is refused. Blobs are copied (or pulled) into the build store,
//! verified against their digests on the way.

use std::path::PathBuf;

use sealcraft_oci::digest::{Digest, parse_digest};
use sealcraft_oci::image::{Image, ImageName};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{Descriptor, media_type};
use serde::Serialize;

use crate::cache::{LayerRef, Store};
use crate::{Error, Result};

/// A base image as the build resolved it.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedBase {
    /// The Dockerfile line that named it.
    pub line: usize,
    /// The name as the Dockerfile gives it (after ARG substitution).
    pub requested: String,
    /// What it was resolved through (the mapping's target, or the same name).
    pub source: String,
    /// The digest the name resolves to (an index or a manifest).
    pub digest: String,
    /// The manifest for the build's platform.
    pub manifest_digest: String,
}

/// A loaded base image.
#[derive(Debug, Clone)]
pub(crate) struct BaseImage {
    pub(crate) record: ResolvedBase,
    pub(crate) image: Image,
    pub(crate) layers: Vec<LayerRef>,
}

/// Splits a trailing `@sha256:…` off a name.
fn split_digest(name: &str) -> Result<(&str, Option<Digest>)> {
    match name.rsplit_once('@') {
        Some((rest, digest)) if digest.contains(':') => Ok((rest, Some(parse_digest(digest)?))),
        _ => Ok((name, None)),
    }
}

/// What base resolution needs from the build.
pub(crate) struct Resolver<'a> {
    pub(crate) architecture: &'a str,
    pub(crate) require_pinned: bool,
    pub(crate) store: &'a Store,
    pub(crate) registry: Option<&'a sealcraft_registry::Client>,
}

impl Resolver<'_> {
    /// Resolves `source` (the name after mapping), copying its blobs into the store.
    pub(crate) fn resolve(&self, requested: &str, source: &str, line: usize) -> Result<BaseImage> {
        resolve(requested, source, line, self)
    }
}

fn resolve(
    requested: &str,
    source: &str,
    line: usize,
    resolver: &Resolver<'_>,
) -> Result<BaseImage> {
    let Resolver {
        architecture,
        require_pinned,
        store,
        registry,
    } = *resolver;
    let (name, pinned) = split_digest(source)?;
    if require_pinned && pinned.is_none() {
        return Err(Error::Dockerfile(sealcraft_dockerfile::Error::NotPinned {
            name: source.to_owned(),
        }));
    }
    // One-word names (`debian:bookworm`) are registry references on Docker Hub.
    let parsed = match ImageName::parse(name) {
        Ok(parsed) => parsed,
        Err(_) => ImageName::Registry(sealcraft_oci::reference::Reference::parse(name)?),
    };
    let named = match parsed {
        // A relative layout path means what it means on the command line: from the working directory.
        ImageName::Layout { path, tag } => {
            from_layout(source, &path, tag.as_deref(), pinned.as_ref(), store)?
        }
        ImageName::Registry(reference) => {
            let registry = registry.ok_or_else(|| Error::NoRegistry {
                name: source.to_owned(),
            })?;
            from_registry(
                source,
                &reference,
                pinned.as_ref(),
                architecture,
                store,
                registry,
            )?
        }
        other => {
            return Err(Error::BaseUnusable {
                name: source.to_owned(),
                reason: format!(
                    "{other} cannot be a base; import it first with `sealcraft image import` and name the layout oci:DIR:TAG@DIGEST"
                ),
            });
        }
    };
    let image = Image::load_descriptor(&store.blobs, named.clone(), Some(architecture))?;
    // What prune goes by: this base (index and platform manifest) is in use.
    store.touch_blob(&named.digest);
    store.touch_blob(&image.descriptor.digest);
    let config_architecture = image.config.architecture().unwrap_or_default();
    if config_architecture != architecture {
        return Err(Error::BaseUnusable {
            name: source.to_owned(),
            reason: format!(
                "it is an image for {config_architecture}, and this build is for {architecture}"
            ),
        });
    }
    let diff_ids = image.config.diff_ids();
    let layers = image
        .manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(descriptor, diff_id)| {
            Ok(LayerRef {
                descriptor: descriptor.clone(),
                diff_id: parse_digest(&diff_id)?,
            })
        })
        .collect::<std::result::Result<Vec<_>, sealcraft_oci::Error>>()?;
    Ok(BaseImage {
        record: ResolvedBase {
            line,
            requested: requested.to_owned(),
            source: source.to_owned(),
            digest: named.digest.to_string(),
            manifest_digest: image.descriptor.digest.to_string(),
        },
        image,
        layers,
    })
}

fn from_layout(
    source: &str,
    path: &PathBuf,
    tag: Option<&str>,
    pinned: Option<&Digest>,
    store: &Store,
) -> Result<Descriptor> {
    let layout = Layout::open(path)?;
    let descriptor = match (tag, pinned) {
        (Some(tag), _) => layout.resolve(Some(tag))?,
        (None, Some(digest)) => layout
            .index()?
            .manifests
            .into_iter()
            .find(|entry| &entry.digest == digest)
            .ok_or_else(|| Error::BaseUnusable {
                name: source.to_owned(),
                reason: format!("the layout has no image with digest {digest}"),
            })?,
        (None, None) => layout.resolve(None)?,
    };
    if let Some(pinned) = pinned
        && &descriptor.digest != pinned
    {
        return Err(Error::BaseDigestMismatch {
            name: source.to_owned(),
            pinned: pinned.to_string(),
            actual: descriptor.digest.to_string(),
        });
    }
    copy_image(&layout, &descriptor, store)?;
    Ok(descriptor)
}

/// Copies an index or manifest and everything below it into the store.
fn copy_image(layout: &Layout, descriptor: &Descriptor, store: &Store) -> Result<()> {
    store.blobs.copy_blob_from(layout, descriptor)?;
    if media_type::is_index(&descriptor.media_type) {
        for entry in layout.read_index_blob(descriptor)?.manifests {
            if media_type::is_manifest(&entry.media_type) && layout.has_blob(&entry.digest) {
                copy_image(layout, &entry, store)?;
            }
        }
        return Ok(());
    }
    let manifest = layout.read_manifest(descriptor)?;
    store.blobs.copy_blob_from(layout, &manifest.config)?;
    for layer in &manifest.layers {
        store.blobs.copy_blob_from(layout, layer)?;
    }
    Ok(())
}

fn from_registry(
    source: &str,
    reference: &sealcraft_oci::reference::Reference,
    pinned: Option<&Digest>,
    architecture: &str,
    store: &Store,
    client: &sealcraft_registry::Client,
) -> Result<Descriptor> {
    let (host, repository) = (reference.registry(), reference.repository());
    let wanted = match (pinned, reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let fetched = client
        .get_manifest(host, repository, &wanted)?
        .ok_or_else(|| Error::BaseUnusable {
            name: source.to_owned(),
            reason: format!("{host}/{repository} has no manifest {wanted}"),
        })?;
    let stored = store.blobs.put_blob(&fetched.bytes)?;
    let named = Descriptor::new(
        fetched.media_type.clone(),
        stored,
        fetched.bytes.len() as u64,
    );
    let manifest_descriptor = if media_type::is_index(&fetched.media_type) {
        let index = store.blobs.read_index_blob(&named)?;
        let entry = index
            .manifests
            .into_iter()
            .find(|entry| {
                entry.platform.as_ref().is_some_and(|platform| {
                    platform.architecture == architecture && platform.os == "linux"
                })
            })
            .ok_or_else(|| Error::BaseUnusable {
                name: source.to_owned(),
                reason: format!("its index has no linux/{architecture} image"),
            })?;
        let platform = client
            .get_manifest(host, repository, entry.digest.as_ref())?
            .ok_or_else(|| Error::BaseUnusable {
                name: source.to_owned(),
                reason: format!("the index names {} but the registry lacks it", entry.digest),
            })?;
        store.blobs.put_blob(&platform.bytes)?;
        entry
    } else {
        named.clone()
    };
    let manifest = store.blobs.read_manifest(&manifest_descriptor)?;
    client.pull_blob_into(host, repository, &manifest.config, &store.blobs)?;
    for layer in &manifest.layers {
        client.pull_blob_into(host, repository, layer, &store.blobs)?;
    }
    Ok(named)
}
