//! Getting images into a layout: from a rootfs tarball, another OCI layout,
//! an OCI archive, or a `docker save` archive.
//!
//! Every blob copied in is verified against its digest; a rootfs tarball is
//! rewritten as one deterministic layer (sorted, mtimes clamped, device
//! nodes dropped since runtimes provide /dev).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, parse_digest};
use crate::error::{Error, Result, io_error};
use crate::image::{Image, ImageName, LayerOptions, commit_image, rfc3339, write_view_layer};
use crate::layer::{LayerLimits, decompressed};
use crate::layout::Layout;
use crate::manifest::{
    self, Descriptor, HistoryEntry, ImageConfig, Index, Manifest, RuntimeConfig, media_type,
};
use crate::view::{ContentReader, MergedView};

/// Settings for an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Architecture of a rootfs import (and the platform to pick from an index).
    pub architecture: Option<String>,
    /// Layer writing settings for rootfs imports.
    pub layer: LayerOptions,
    /// Limits on layer streams.
    pub limits: LayerLimits,
}

/// What an import produced.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The imported image's manifest (or index) descriptor.
    pub descriptor: Descriptor,
    /// Blobs copied (or written).
    pub blobs: usize,
    /// Bytes copied (or written).
    pub bytes: u64,
}

/// Imports `source` into `target` under `tag`.
pub fn import(
    source: &ImageName,
    target: &Layout,
    tag: &str,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let report = match source {
        ImageName::Rootfs { path } => import_rootfs(path, target, options)?,
        ImageName::Layout {
            path,
            tag: source_tag,
        } => {
            let layout = Layout::open(path)?;
            let descriptor = layout.resolve(source_tag.as_deref())?;
            copy_image(&layout, &descriptor, target)?
        }
        ImageName::OciArchive {
            path,
            tag: source_tag,
        } => {
            let archive = Archive::open(path, &options.limits)?;
            let index: Index = archive.json("index.json")?;
            let descriptor = pick_index_entry(path, &index, source_tag.as_deref())?;
            copy_image(&archive, &descriptor, target)?
        }
        ImageName::DockerArchive {
            path,
            tag: source_tag,
        } => import_docker_archive(path, source_tag.as_deref(), target)?,
        ImageName::Registry(reference) => {
            return Err(Error::InvalidImageName {
                name: reference.to_string(),
                reason: "importing from a registry is not available in this build; pull it into an OCI layout first (skopeo copy docker://… oci:DIR:TAG)".into(),
            });
        }
    };
    // Reading the image back checks that the manifest, config and layer count are coherent.
    Image::load_descriptor(
        target,
        report.descriptor.clone(),
        options.architecture.as_deref(),
    )?;
    target.tag(tag, &report.descriptor)?;
    Ok(report)
}

fn pick_index_entry(archive: &Path, index: &Index, tag: Option<&str>) -> Result<Descriptor> {
    let entries: Vec<&Descriptor> = match tag {
        Some(tag) => index
            .manifests
            .iter()
            .filter(|entry| entry.ref_name() == Some(tag))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    match entries.as_slice() {
        [only] => {
            let mut descriptor = (*only).clone();
            descriptor.annotations.remove(manifest::REF_NAME_ANNOTATION);
            Ok(descriptor)
        }
        [] => Err(Error::BadArchive {
            archive: archive.to_path_buf(),
            reason: format!("no image named {:?}", tag.unwrap_or("")),
        }),
        many => Err(Error::BadArchive {
            archive: archive.to_path_buf(),
            reason: format!("{} images inside; name one with :TAG", many.len()),
        }),
    }
}

fn import_rootfs(path: &Path, target: &Layout, options: &ImportOptions) -> Result<ImportReport> {
    let file = File::open(path).map_err(io_error("opening", path))?;
    let in_place = File::open(path).map_err(io_error("opening", path))?;
    let mut probe = [0u8; 4];
    let probed = in_place
        .read_at(&mut probe, 0)
        .map_err(io_error("reading", path))?;
    let compressed = probe[..probed].starts_with(&[0x1f, 0x8b])
        || probe[..probed].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let mut view = MergedView::empty();
    let name = path.display().to_string();
    view.add_layer_stream(
        io::BufReader::with_capacity(1 << 20, file),
        &name,
        (!compressed).then_some(in_place),
        None,
        &options.limits,
    )?;
    let layer = write_view_layer(target, &view, &options.layer)?;
    let architecture = options
        .architecture
        .clone()
        .unwrap_or_else(host_architecture);
    let mut config = ImageConfig::new(&architecture, "linux");
    let created = rfc3339(options.layer.clamp_mtime.unwrap_or(0));
    config.set_created(&created);
    config.set_runtime_config(&RuntimeConfig {
        env: Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ]),
        ..RuntimeConfig::default()
    });
    config.set_diff_ids(std::slice::from_ref(&layer.diff_id));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    config.set_history(&[HistoryEntry {
        created: Some(created),
        created_by: Some(format!("sealcraft image import rootfs:{file_name}")),
        comment: Some("root filesystem tarball rewritten as one deterministic layer".into()),
        author: None,
        empty_layer: false,
    }]);
    let bytes = layer.descriptor.size;
    let descriptor = commit_image(target, &config, vec![layer.descriptor], BTreeMap::new())?;
    Ok(ImportReport {
        descriptor,
        blobs: 3,
        bytes,
    })
}

/// The GOARCH name of the machine sealcraft runs on.
pub fn host_architecture() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_owned()
}

/// Something blobs can be read from by digest.
trait BlobSource {
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>>;

    fn read(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut reader = crate::digest::VerifyingReader::new(
            self.open(descriptor)?,
            &descriptor.digest,
            descriptor.size,
        )?;
        reader.read_to_end(&mut bytes).map_err(|source| {
            crate::layout::io_to_error(source, "reading blob", descriptor.digest.to_string())
        })?;
        Ok(bytes)
    }
}

impl BlobSource for Layout {
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.open_blob(descriptor)?))
    }
}

/// Copies the image (or index) `root` and everything it references from `source` to `target`.
fn copy_image(source: &dyn BlobSource, root: &Descriptor, target: &Layout) -> Result<ImportReport> {
    let mut report = ImportReport {
        descriptor: root.clone(),
        blobs: 0,
        bytes: 0,
    };
    report
        .descriptor
        .annotations
        .remove(manifest::REF_NAME_ANNOTATION);
    let mut done = BTreeSet::new();
    copy_tree(
        source,
        &report.descriptor.clone(),
        target,
        &mut done,
        &mut report,
    )?;
    Ok(report)
}

fn copy_tree(
    source: &dyn BlobSource,
    descriptor: &Descriptor,
    target: &Layout,
    done: &mut BTreeSet<String>,
    report: &mut ImportReport,
) -> Result<()> {
    if !done.insert(descriptor.digest.to_string()) {
        return Ok(());
    }
    let children: Vec<Descriptor> = if media_type::is_index(&descriptor.media_type) {
        let bytes = source.read(descriptor)?;
        let index: Index = manifest::from_blob("image index", &descriptor.digest, &bytes)?;
        target.put_blob_verified(bytes.as_slice(), &descriptor.digest, descriptor.size)?;
        index.manifests
    } else if media_type::is_manifest(&descriptor.media_type) {
        let bytes = source.read(descriptor)?;
        let manifest: Manifest = manifest::from_blob("manifest", &descriptor.digest, &bytes)?;
        target.put_blob_verified(bytes.as_slice(), &descriptor.digest, descriptor.size)?;
        std::iter::once(manifest.config)
            .chain(manifest.layers)
            .collect()
    } else {
        if !target.has_blob(&descriptor.digest) {
            target.put_blob_verified(
                source.open(descriptor)?,
                &descriptor.digest,
                descriptor.size,
            )?;
        }
        Vec::new()
    };
    report.blobs += 1;
    report.bytes += descriptor.size;
    for child in &children {
        copy_tree(source, child, target, done, report)?;
    }
    Ok(())
}

/// A tar archive indexed by member name, read with positioned reads. A
/// compressed archive is decompressed to a temporary file first.
struct Archive {
    path: PathBuf,
    file: File,
    members: HashMap<String, (u64, u64)>,
}

impl Archive {
    fn open(path: &Path, limits: &LayerLimits) -> Result<Self> {
        let not_tar = |source| Error::NotATar {
            archive: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_error("opening", path))?;
        let (compression, mut stream) = decompressed(
            File::open(path).map_err(io_error("opening", path))?,
            &path.display().to_string(),
            limits,
        )?;
        if compression != crate::layer::Compression::None {
            let mut spool = tempfile::tempfile()
                .map_err(io_error("creating a spool in", std::env::temp_dir()))?;
            io::copy(&mut stream, &mut spool)
                .map_err(|source| crate::layout::io_to_error(source, "decompressing", path))?;
            file = spool;
        }
        drop(stream);
        let mut members = HashMap::new();
        let reader = io::BufReader::new(file.try_clone().map_err(io_error("reading", path))?);
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            if entry.header().entry_type().is_file() {
                let name = String::from_utf8_lossy(&entry.path_bytes())
                    .trim_start_matches("./")
                    .to_owned();
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            members,
        })
    }

    fn member(&self, name: &str) -> Result<ContentReader<'_>> {
        let (offset, size) = self
            .members
            .get(name.trim_start_matches("./"))
            .copied()
            .ok_or_else(|| Error::BadArchive {
                archive: self.path.clone(),
                reason: format!("missing member {name:?}"),
            })?;
        Ok(ContentReader::new(&self.file, offset, size))
    }

    fn member_size(&self, name: &str) -> Option<u64> {
        self.members
            .get(name.trim_start_matches("./"))
            .map(|(_, size)| *size)
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, name: &'static str) -> Result<T> {
        let mut bytes = Vec::new();
        self.member(name)?
            .read_to_end(&mut bytes)
            .map_err(io_error("reading", self.path.join(name)))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::MalformedFile {
            what: name,
            path: self.path.join(name),
            source,
        })
    }
}

impl BlobSource for Archive {
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let name = format!(
            "blobs/{}/{}",
            descriptor.digest.algorithm(),
            descriptor.digest.digest()
        );
        Ok(Box::new(self.member(&name)?))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker_archive(path: &Path, tag: Option<&str>, target: &Layout) -> Result<ImportReport> {
    let limits = LayerLimits::default();
    let archive = Archive::open(path, &limits)?;
    let entries: Vec<DockerManifestEntry> = archive.json("manifest.json")?;
    let bad = |reason: String| Error::BadArchive {
        archive: path.to_path_buf(),
        reason,
    };
    let chosen =
        match tag {
            Some(tag) => entries
                .iter()
                .find(|entry| {
                    entry.repo_tags.iter().flatten().any(|name| {
                        name == tag || name.rsplit_once(':').is_some_and(|(_, t)| t == tag)
                    })
                })
                .ok_or_else(|| bad(format!("no image tagged {tag:?} in manifest.json")))?,
            None if entries.len() == 1 => &entries[0],
            None => {
                return Err(bad(format!(
                    "{} images inside; name one with :TAG",
                    entries.len()
                )));
            }
        };
    let mut report = ImportReport {
        descriptor: Descriptor::new(media_type::OCI_MANIFEST, crate::digest::sha256_of(b""), 0),
        blobs: 0,
        bytes: 0,
    };
    let config_bytes = {
        let mut bytes = Vec::new();
        archive
            .member(&chosen.config)?
            .read_to_end(&mut bytes)
            .map_err(io_error("reading", path))?;
        bytes
    };
    let config_digest = target.put_blob(&config_bytes)?;
    if let Some(expected) = digest_in_name(&chosen.config)
        && expected != config_digest
    {
        return Err(bad(format!(
            "config {} does not match its name (content is {config_digest})",
            chosen.config
        )));
    }
    let config = ImageConfig::from_blob(&config_digest, &config_bytes)?;
    let diff_ids = config.diff_ids();
    if diff_ids.len() != chosen.layers.len() {
        return Err(Error::LayerCountMismatch {
            digest: config_digest.to_string(),
            diff_ids: diff_ids.len(),
            layers: chosen.layers.len(),
        });
    }
    let mut layers = Vec::new();
    for (name, diff_id) in chosen.layers.iter().zip(&diff_ids) {
        let size = archive
            .member_size(name)
            .ok_or_else(|| bad(format!("missing layer {name:?}")))?;
        let mut member = archive.member(name)?;
        let mut head = [0u8; 4];
        let head_len = archive
            .member(name)?
            .read(&mut head)
            .map_err(io_error("reading", path))?;
        let compression = if head[..head_len].starts_with(&[0x1f, 0x8b]) {
            crate::layer::Compression::Gzip
        } else if head[..head_len].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            crate::layer::Compression::Zstd
        } else {
            crate::layer::Compression::None
        };
        let mut writer = target.blob_writer()?;
        io::copy(&mut member, &mut writer).map_err(io_error("copying layer from", path))?;
        let (digest, written) = writer.commit()?;
        if compression == crate::layer::Compression::None && digest.as_ref() != diff_id {
            return Err(Error::DiffIdMismatch {
                layer: name.clone(),
                expected: diff_id.clone(),
                actual: digest.to_string(),
            });
        }
        debug_assert_eq!(written, size);
        report.blobs += 1;
        report.bytes += written;
        layers.push(Descriptor::new(
            compression.layer_media_type(),
            digest,
            written,
        ));
    }
    let config_descriptor = Descriptor::new(
        media_type::OCI_CONFIG,
        config_digest,
        config_bytes.len() as u64,
    );
    let manifest = Manifest::new_oci(config_descriptor, layers);
    report.descriptor = target.put_json("manifest", media_type::OCI_MANIFEST, &manifest)?;
    report.blobs += 2;
    Ok(report)
}

/// `blobs/sha256/<hex>` or `<hex>.json` names carry the digest of their content.
fn digest_in_name(name: &str) -> Option<Digest> {
    if let Some(rest) = name.strip_prefix("blobs/") {
        let (algorithm, hex_value) = rest.split_once('/')?;
        return parse_digest(&format!("{algorithm}:{hex_value}")).ok();
    }
    let stem = name.strip_suffix(".json")?;
    parse_digest(&format!("sha256:{stem}")).ok()
}
