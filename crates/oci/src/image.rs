//! Images in a layout: naming (skopeo-style transports), loading, and
//! writing new layers and manifests.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result, io_error};
use crate::layer::{EntryKind, LayerWriter};
use crate::layout::{BlobWriter, Layout};
use crate::manifest::{Descriptor, ImageConfig, Manifest, media_type};
use crate::reference::Reference;
use crate::view::{ContentRef, MergedView};

/// Where an image is, named the way skopeo names images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageName {
    /// `oci:DIR[:TAG]`, an OCI image layout directory.
    Layout {
        /// The file or directory.
        path: PathBuf,
        /// The image's name inside it.
        tag: Option<String>,
    },
    /// `oci-archive:FILE[:TAG]`, a tar of an OCI layout.
    OciArchive {
        /// The file or directory.
        path: PathBuf,
        /// The image's name inside it.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:TAG]`, the output of `docker save`.
    DockerArchive {
        /// The file or directory.
        path: PathBuf,
        /// The image's name inside it.
        tag: Option<String>,
    },
    /// `rootfs:FILE`, a root filesystem tarball (plain, gzip or zstd).
    Rootfs {
        /// The tarball.
        path: PathBuf,
    },
    /// `[docker://]HOST/REPO:TAG[@DIGEST]`, an image in a registry.
    Registry(Reference),
}

impl ImageName {
    /// Parses a transport-prefixed image name.
    pub fn parse(text: &str) -> Result<Self> {
        let split = |rest: &str| -> (PathBuf, Option<String>) {
            match rest.split_once(':') {
                Some((path, tag)) if !tag.is_empty() => (PathBuf::from(path), Some(tag.to_owned())),
                Some((path, _)) => (PathBuf::from(path), None),
                None => (PathBuf::from(rest), None),
            }
        };
        let invalid = |reason: &str| Error::InvalidImageName {
            name: text.to_owned(),
            reason: reason.to_owned(),
        };
        let name = if let Some(rest) = text.strip_prefix("oci:") {
            let (path, tag) = split(rest);
            Self::Layout { path, tag }
        } else if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, tag) = split(rest);
            Self::OciArchive { path, tag }
        } else if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, tag) = split(rest);
            Self::DockerArchive { path, tag }
        } else if let Some(rest) = text.strip_prefix("rootfs:") {
            Self::Rootfs {
                path: PathBuf::from(rest),
            }
        } else {
            let reference = text.strip_prefix("docker://").unwrap_or(text);
            if !reference.contains('/') && !text.starts_with("docker://") {
                return Err(invalid(
                    "expected oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, rootfs:FILE or a registry reference HOST/REPO:TAG",
                ));
            }
            Self::Registry(Reference::parse(reference)?)
        };
        match &name {
            Self::Layout { path, .. }
            | Self::OciArchive { path, .. }
            | Self::DockerArchive { path, .. }
            | Self::Rootfs { path }
                if path.as_os_str().is_empty() =>
            {
                Err(invalid("the path is empty"))
            }
            _ => Ok(name),
        }
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with_tag = |formatter: &mut std::fmt::Formatter<'_>,
                        prefix: &str,
                        path: &Path,
                        tag: &Option<String>| {
            write!(formatter, "{prefix}:{}", path.display())?;
            if let Some(tag) = tag {
                write!(formatter, ":{tag}")?;
            }
            Ok(())
        };
        match self {
            Self::Layout { path, tag } => with_tag(formatter, "oci", path, tag),
            Self::OciArchive { path, tag } => with_tag(formatter, "oci-archive", path, tag),
            Self::DockerArchive { path, tag } => with_tag(formatter, "docker-archive", path, tag),
            Self::Rootfs { path } => write!(formatter, "rootfs:{}", path.display()),
            Self::Registry(reference) => write!(formatter, "{reference}"),
        }
    }
}

/// An image manifest with its config, as found in a layout.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor (its digest is the image digest).
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ImageConfig,
}

impl Image {
    /// Loads the image named `tag` (or the only image), choosing `architecture`
    /// from an index when the name points at one.
    pub fn load(layout: &Layout, tag: Option<&str>, architecture: Option<&str>) -> Result<Self> {
        let descriptor = layout.resolve(tag)?;
        Self::load_descriptor(layout, descriptor, architecture)
    }

    /// Loads the image `descriptor` points at.
    pub fn load_descriptor(
        layout: &Layout,
        descriptor: Descriptor,
        architecture: Option<&str>,
    ) -> Result<Self> {
        if media_type::is_index(&descriptor.media_type) {
            let index = layout.read_index_blob(&descriptor)?;
            let images: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|entry| media_type::is_manifest(&entry.media_type))
                .collect();
            let chosen = match architecture {
                Some(architecture) => images
                    .iter()
                    .find(|entry| {
                        entry
                            .platform
                            .as_ref()
                            .is_some_and(|platform| platform.architecture == architecture)
                    })
                    .ok_or_else(|| Error::PlatformNotFound {
                        digest: descriptor.digest.to_string(),
                        platform: format!("linux/{architecture}"),
                    })?,
                None if images.len() == 1 => &images[0],
                None => {
                    return Err(Error::IndexNeedsPlatform {
                        digest: descriptor.digest.to_string(),
                        count: images.len(),
                    });
                }
            };
            return Self::load_descriptor(layout, (*chosen).clone(), architecture);
        }
        if !media_type::is_manifest(&descriptor.media_type) {
            return Err(Error::UnsupportedMediaType {
                what: "an image",
                media_type: descriptor.media_type.clone(),
            });
        }
        let manifest = layout.read_manifest(&descriptor)?;
        let config = layout.read_config(&manifest.config)?;
        let diff_ids = config.diff_ids().len();
        if diff_ids != manifest.layers.len() {
            return Err(Error::LayerCountMismatch {
                digest: manifest.config.digest.to_string(),
                diff_ids,
                layers: manifest.layers.len(),
            });
        }
        Ok(Self {
            descriptor,
            manifest,
            config,
        })
    }

    /// Sum of the (compressed) layer sizes.
    pub fn layers_size(&self) -> u64 {
        self.manifest.layers.iter().map(|layer| layer.size).sum()
    }
}

/// How new layers are written.
#[derive(Debug, Clone, Copy)]
pub struct LayerOptions {
    /// Clamp every mtime to this (SOURCE_DATE_EPOCH).
    pub clamp_mtime: Option<i64>,
    /// Compression of the layer blob.
    pub compression: crate::layer::Compression,
    /// Keep device nodes (rootfs imports drop them: runtimes create /dev).
    pub keep_devices: bool,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self {
            clamp_mtime: None,
            compression: crate::layer::Compression::Gzip,
            keep_devices: false,
        }
    }
}

/// A layer that was written to a layout.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenLayer {
    /// The blob.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Entries written.
    pub entries: u64,
}

/// Writes the whole merged filesystem of `view` as one deterministic layer.
/// Paths that share content (hard links in the source) stay hard links: the
/// first in path order carries the content, the others link to it.
pub fn write_view_layer(
    layout: &Layout,
    view: &MergedView,
    options: &LayerOptions,
) -> Result<WrittenLayer> {
    let mut first_holder: BTreeMap<ContentRef, &Path> = BTreeMap::new();
    write_layer(layout, options, |writer| {
        let mut entries = 0;
        for (path, node) in view.iter() {
            if node.meta.kind.is_device() && !options.keep_devices {
                continue;
            }
            let mut meta = node.meta.clone();
            match node.content {
                Some(content) => {
                    if let Some(holder) = first_holder.get(&content) {
                        meta.kind = EntryKind::HardLink(holder.to_path_buf());
                        meta.size = 0;
                        writer.append(&meta, &mut io::empty())?;
                    } else {
                        first_holder.insert(content, path);
                        meta.kind = EntryKind::File;
                        meta.size = content.size;
                        writer.append(&meta, &mut view.open_content(content))?;
                    }
                }
                None => writer.append(&meta, &mut io::empty())?,
            }
            entries += 1;
        }
        Ok(entries)
    })
}

/// The tar writer handed to [`write_layer`]'s fill function.
pub type TarWriter = LayerWriter<HashingWriter<Compressor>>;

/// The compression stage between a layer's tar stream and its blob.
///
/// gzip and zstd run on a worker thread fed in chunks through a bounded
/// channel, so producing the tar (reading the view, decompressing
/// packages, hashing the diff ID) and compressing it share the cores.
pub struct Compressor {
    stage: Stage,
}

enum Stage {
    /// No compression: written straight to the blob.
    Plain(Box<BlobWriter>),
    /// Compressed on `worker`.
    Threaded {
        buffer: Vec<u8>,
        sender: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
        worker: Option<std::thread::JoinHandle<io::Result<BlobWriter>>>,
    },
}

/// Bytes handed to the compressing thread at a time.
const CHUNK: usize = 256 << 10;
/// Chunks in flight before the producer waits.
const CHUNKS_IN_FLIGHT: usize = 8;

enum Encoder {
    Gzip(flate2::write::GzEncoder<BlobWriter>),
    Zstd(zstd::stream::write::Encoder<'static, BlobWriter>),
}

impl Encoder {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.write_all(bytes),
            Self::Zstd(encoder) => encoder.write_all(bytes),
        }
    }

    fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Self::Gzip(encoder) => encoder.finish(),
            Self::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl Compressor {
    /// A compressor writing a new blob of `layout`.
    fn new(layout: &Layout, compression: crate::layer::Compression) -> Result<Self> {
        use crate::layer::Compression;
        let blob = layout.blob_writer()?;
        let encoder = match compression {
            Compression::None => {
                return Ok(Self {
                    stage: Stage::Plain(Box::new(blob)),
                });
            }
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                blob,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(blob, 3)
                    .map_err(io_error("starting zstd in", layout.root()))?,
            ),
        };
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let worker = std::thread::Builder::new()
            .name("layer-compressor".into())
            .spawn(move || {
                let mut encoder = encoder;
                for chunk in receiver {
                    encoder.write_all(&chunk)?;
                }
                encoder.finish()
            })
            .map_err(io_error("starting the compressor for", layout.root()))?;
        Ok(Self {
            stage: Stage::Threaded {
                buffer: Vec::with_capacity(CHUNK),
                sender: Some(sender),
                worker: Some(worker),
            },
        })
    }

    /// The worker's own error once it has stopped taking chunks.
    fn stopped(worker: &mut Option<std::thread::JoinHandle<io::Result<BlobWriter>>>) -> io::Error {
        match worker.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(error))) => error,
            _ => io::Error::other("the layer compressor stopped"),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if let Stage::Threaded {
            buffer,
            sender,
            worker,
        } = &mut self.stage
            && !buffer.is_empty()
        {
            let chunk = std::mem::replace(buffer, Vec::with_capacity(CHUNK));
            let sent = sender.as_ref().map(|sender| sender.send(chunk));
            if !matches!(sent, Some(Ok(()))) {
                *sender = None;
                return Err(Self::stopped(worker));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<BlobWriter> {
        self.send_buffer()?;
        match self.stage {
            Stage::Plain(blob) => Ok(*blob),
            Stage::Threaded {
                mut sender,
                mut worker,
                ..
            } => {
                sender.take();
                match worker.take().map(std::thread::JoinHandle::join) {
                    Some(Ok(result)) => result,
                    _ => Err(io::Error::other("the layer compressor panicked")),
                }
            }
        }
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stage {
            Stage::Plain(blob) => blob.write(buf),
            Stage::Threaded { buffer, .. } => {
                let room = CHUNK - buffer.len();
                let taken = room.min(buf.len());
                buffer.extend_from_slice(&buf[..taken]);
                if buffer.len() == CHUNK {
                    self.send_buffer()?;
                }
                Ok(taken)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stage {
            Stage::Plain(blob) => blob.flush(),
            // Chunks reach the blob when the layer is finished.
            Stage::Threaded { .. } => Ok(()),
        }
    }
}

/// Writes a layer whose entries `fill` appends (in the order it chooses),
/// hashing the tar stream for the diff ID and the compressed stream for the
/// blob digest in the same pass.
pub fn write_layer(
    layout: &Layout,
    options: &LayerOptions,
    fill: impl FnOnce(&mut TarWriter) -> io::Result<u64>,
) -> Result<WrittenLayer> {
    let compressor = Compressor::new(layout, options.compression)?;
    let mut writer = LayerWriter::new(HashingWriter::new(compressor), options.clamp_mtime);
    let entries = fill(&mut writer).map_err(|source| {
        crate::layout::io_to_error(source, "writing a layer into", layout.root())
    })?;
    let tar = writer
        .finish()
        .map_err(io_error("finishing a layer in", layout.root()))?;
    let (diff_id, uncompressed_size, compressor) = tar.finish();
    let blob = compressor
        .finish()
        .map_err(io_error("compressing a layer in", layout.root()))?;
    let (digest, size) = blob.commit()?;
    Ok(WrittenLayer {
        descriptor: Descriptor::new(options.compression.layer_media_type(), digest, size),
        diff_id,
        uncompressed_size,
        entries,
    })
}

/// The layer `descriptor` of `source` as a blob of `target` with
/// `compression`: decompressed first whatever it was, so nothing is ever
/// compressed twice, and returned as it is when it already has that
/// compression. The diff ID stays the same (it is the digest of the tar).
pub fn compress_layer(
    source: &Layout,
    descriptor: &Descriptor,
    compression: crate::layer::Compression,
    target: &Layout,
) -> Result<Descriptor> {
    let reader = source.open_blob(descriptor)?;
    let (current, mut tar) = crate::layer::decompressed(
        reader,
        descriptor.digest.as_ref(),
        &crate::layer::LayerLimits::default(),
    )?;
    if current == compression {
        target.copy_blob_from(source, descriptor)?;
        return Ok(Descriptor::new(
            compression.layer_media_type(),
            descriptor.digest.clone(),
            descriptor.size,
        ));
    }
    let mut compressor = Compressor::new(target, compression)?;
    io::copy(&mut tar, &mut compressor).map_err(|error| {
        crate::layout::io_to_error(error, "compressing a layer into", target.root())
    })?;
    let blob = compressor
        .finish()
        .map_err(io_error("compressing a layer in", target.root()))?;
    let (digest, size) = blob.commit()?;
    Ok(Descriptor::new(
        compression.layer_media_type(),
        digest,
        size,
    ))
}

/// Stores `config` and a manifest for it and `layers`; returns the manifest descriptor.
pub fn commit_image(
    layout: &Layout,
    config: &ImageConfig,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor> {
    let config_bytes = config.to_bytes()?;
    let config_digest = layout.put_blob(&config_bytes)?;
    let config_descriptor = Descriptor::new(
        media_type::OCI_CONFIG,
        config_digest,
        config_bytes.len() as u64,
    );
    let mut manifest = Manifest::new_oci(config_descriptor, layers);
    manifest.annotations = annotations;
    let mut descriptor = layout.put_json("manifest", media_type::OCI_MANIFEST, &manifest)?;
    if let (Some(architecture), Some(os)) = (config.architecture(), config.os()) {
        descriptor.platform = Some(crate::manifest::Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            variant: config.variant().map(str::to_owned),
            os_version: None,
        });
    }
    Ok(descriptor)
}

/// Formats seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|moment| {
            moment
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Compression, EntryMeta, LayerLimits, decompressed};
    use std::io::Read;

    fn tar_digest(layout: &Layout, descriptor: &Descriptor) -> (Compression, Digest) {
        let (compression, mut tar) = decompressed(
            layout.open_blob(descriptor).unwrap(),
            "test",
            &LayerLimits::default(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        tar.read_to_end(&mut bytes).unwrap();
        (compression, crate::digest::sha256_of(&bytes))
    }

    #[test]
    fn layers_are_compressed_once_whatever_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let plain = write_layer(
            &layout,
            &LayerOptions {
                compression: Compression::None,
                ..LayerOptions::default()
            },
            |writer| {
                let content = b"content of a file";
                let meta = EntryMeta {
                    size: content.len() as u64,
                    ..EntryMeta::new("file", EntryKind::File, 0o644)
                };
                writer.append(&meta, &mut &content[..])?;
                Ok(1)
            },
        )
        .unwrap();
        let gzip = compress_layer(&layout, &plain.descriptor, Compression::Gzip, &layout).unwrap();
        assert_eq!(
            tar_digest(&layout, &gzip),
            (Compression::Gzip, plain.diff_id.clone())
        );
        // Asked for what it already is: the same blob, not gzip of gzip.
        let again = compress_layer(&layout, &gzip, Compression::Gzip, &layout).unwrap();
        assert_eq!(again.digest, gzip.digest);
        let zstd = compress_layer(&layout, &gzip, Compression::Zstd, &layout).unwrap();
        assert_eq!(
            tar_digest(&layout, &zstd),
            (Compression::Zstd, plain.diff_id.clone())
        );
        assert_eq!(zstd.media_type, Compression::Zstd.layer_media_type());
    }
}
