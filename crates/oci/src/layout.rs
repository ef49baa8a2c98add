//! An OCI image layout directory used as a content-addressed store.
//!
//! Blobs are written to a temporary file in the layout and renamed into
//! place only after their digest is known, so a crash never leaves a blob
//! whose name does not match its content. Every read verifies digest and
//! size. `index.json` is replaced atomically too.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher, VerifyingReader, parse_digest, sha256_of};
use crate::error::{Error, Result, io_error};
use crate::manifest::{
    self, Descriptor, ImageConfig, Index, Manifest, REF_NAME_ANNOTATION, media_type,
};

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const BLOBS_DIR: &str = "blobs";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// An OCI image layout on disk.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// What [`Layout::collect_garbage`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GarbageReport {
    /// Digests of the removed blobs.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub bytes: u64,
}

impl Layout {
    /// Opens an existing layout.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let marker_path = root.join(LAYOUT_FILE);
        let bytes = fs::read(&marker_path).map_err(|source| Error::NoLayoutMarker {
            path: root.clone(),
            file: LAYOUT_FILE,
            source,
        })?;
        let marker: LayoutMarker =
            serde_json::from_slice(&bytes).map_err(|source| Error::MalformedFile {
                what: LAYOUT_FILE,
                path: marker_path,
                source,
            })?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(Error::UnsupportedLayoutVersion {
                path: root,
                version: marker.image_layout_version,
            });
        }
        Ok(Self { root })
    }

    /// Opens the layout at `root`, creating an empty one if nothing is there.
    pub fn open_or_create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if root.join(LAYOUT_FILE).exists() {
            return Self::open(root);
        }
        fs::create_dir_all(root.join(BLOBS_DIR).join("sha256"))
            .map_err(io_error("creating", &root))?;
        let layout = Self { root };
        let marker = serde_json::to_vec(&LayoutMarker {
            image_layout_version: "1.0.0".into(),
        })
        .map_err(|source| Error::Serialize {
            what: LAYOUT_FILE,
            source,
        })?;
        layout.write_file_atomically(LAYOUT_FILE, &marker)?;
        if !layout.root.join(INDEX_FILE).exists() {
            layout.write_index(&Index::new_oci())?;
        }
        Ok(layout)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join(BLOBS_DIR)
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    /// Whether the blob is present (not verified).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes` and returns its sha256 digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = sha256_of(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut writer = self.blob_writer()?;
        writer
            .write_all(bytes)
            .map_err(io_error("writing a blob into", &self.root))?;
        writer.commit()?;
        Ok(digest)
    }

    /// Stores a JSON document and returns its descriptor.
    pub fn put_json<T: Serialize>(
        &self,
        what: &'static str,
        media_type: &str,
        document: &T,
    ) -> Result<Descriptor> {
        let bytes = manifest::to_canonical_json(what, document)?;
        let digest = self.put_blob(&bytes)?;
        Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
    }

    /// A writer for a blob of yet unknown digest; [`BlobWriter::commit`] moves it into place.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join(BLOBS_DIR).join("sha256");
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let file = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&dir)
            .map_err(io_error("creating a temporary blob in", &dir))?;
        Ok(BlobWriter {
            file: io::BufWriter::with_capacity(1 << 20, file),
            hasher: Hasher::sha256(),
            size: 0,
            dir,
        })
    }

    /// Stores a blob from a reader that must match `digest` and `size`.
    pub fn put_blob_verified(&self, reader: impl Read, digest: &Digest, size: u64) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut verifying = VerifyingReader::new(reader, digest, size)?;
        let mut writer = self.blob_writer()?;
        io::copy(&mut verifying, &mut writer)
            .map_err(|source| unwrap_mismatch(source, "copying blob into", &self.root))?;
        let (written, _) = writer.commit()?;
        debug_assert_eq!(&written, digest);
        Ok(())
    }

    /// Copies a blob from another layout, verifying it on the way.
    pub fn copy_blob_from(&self, source: &Layout, descriptor: &Descriptor) -> Result<()> {
        if self.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let reader = source.open_blob(descriptor)?;
        self.put_blob_verified(reader, &descriptor.digest, descriptor.size)
    }

    /// A blob this process has just read in full and verified (a layer a
    /// merged view was built from) into this layout: hard-linked when both
    /// layouts share a filesystem (blobs are never written in place), else
    /// copied with the usual verification.
    pub fn link_verified_blob_from(&self, source: &Layout, descriptor: &Descriptor) -> Result<()> {
        if self.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let from = source.blob_path(&descriptor.digest);
        let to = self.blob_path(&descriptor.digest);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
        }
        match fs::hard_link(&from, &to) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(_) => self.copy_blob_from(source, descriptor),
        }
    }

    /// Reads a whole blob, verifying digest and size.
    pub fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let mut bytes =
            Vec::with_capacity(usize::try_from(descriptor.size.min(64 << 20)).unwrap_or(0));
        self.open_blob(descriptor)?
            .read_to_end(&mut bytes)
            .map_err(|source| {
                unwrap_mismatch(source, "reading blob", self.blob_path(&descriptor.digest))
            })?;
        Ok(bytes)
    }

    /// Opens a blob for streaming; the reader fails at end of stream unless
    /// digest and size matched.
    pub fn open_blob(&self, descriptor: &Descriptor) -> Result<VerifyingReader<BufReader<File>>> {
        let path = self.blob_path(&descriptor.digest);
        let file = File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    layout: self.root.clone(),
                    digest: descriptor.digest.to_string(),
                }
            } else {
                Error::Io {
                    action: "opening blob",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let actual_size = file
            .metadata()
            .map_err(io_error("reading metadata of", &path))?
            .len();
        if actual_size != descriptor.size {
            return Err(Error::BlobMismatch {
                digest: descriptor.digest.to_string(),
                expected_size: descriptor.size,
                actual_size,
                actual_digest: "(not computed)".into(),
            });
        }
        VerifyingReader::new(
            BufReader::with_capacity(1 << 20, file),
            &descriptor.digest,
            descriptor.size,
        )
    }

    /// Hashes a stored blob completely and fails unless it matches; returns its path.
    pub fn verify_blob(&self, descriptor: &Descriptor) -> Result<PathBuf> {
        let mut reader = self.open_blob(descriptor)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|source| {
            unwrap_mismatch(source, "verifying blob", self.blob_path(&descriptor.digest))
        })?;
        Ok(self.blob_path(&descriptor.digest))
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<Index> {
        let path = self.root.join(INDEX_FILE);
        let bytes = fs::read(&path).map_err(io_error("reading", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::MalformedFile {
            what: INDEX_FILE,
            path,
            source,
        })
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = manifest::to_canonical_json(INDEX_FILE, index)?;
        self.write_file_atomically(INDEX_FILE, &bytes)
    }

    fn write_file_atomically(&self, name: &str, bytes: &[u8]) -> Result<()> {
        Ok(sealcraft_files::write_atomically(
            &self.root.join(name),
            bytes,
        )?)
    }

    /// Names `descriptor` `tag` in `index.json`, replacing an entry of that name.
    pub fn tag(&self, tag: &str, descriptor: &Descriptor) -> Result<()> {
        let mut index = self.index()?;
        index
            .manifests
            .retain(|entry| entry.ref_name() != Some(tag));
        let mut entry = descriptor.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
        index.manifests.push(entry);
        index.manifests.sort_by(|a, b| {
            a.ref_name()
                .cmp(&b.ref_name())
                .then_with(|| a.digest.as_ref().cmp(b.digest.as_ref()))
        });
        self.write_index(&index)
    }

    /// Removes the name `tag` (not the blobs; see [`Self::collect_garbage`]).
    pub fn untag(&self, tag: &str) -> Result<bool> {
        let mut index = self.index()?;
        let before = index.manifests.len();
        index
            .manifests
            .retain(|entry| entry.ref_name() != Some(tag));
        let removed = index.manifests.len() != before;
        if removed {
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// The entry named `tag`, or the only entry when `tag` is `None`.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Descriptor> {
        let index = self.index()?;
        match tag {
            Some(tag) => index
                .manifests
                .into_iter()
                .find(|entry| entry.ref_name() == Some(tag))
                .ok_or_else(|| Error::TagNotFound {
                    layout: self.root.clone(),
                    tag: tag.to_owned(),
                }),
            None => {
                let count = index.manifests.len();
                let mut entries = index.manifests.into_iter();
                match (entries.next(), count) {
                    (Some(entry), 1) => Ok(entry),
                    _ => Err(Error::AmbiguousImage {
                        layout: self.root.clone(),
                        layout_display: format!("oci:{}", self.root.display()),
                        count,
                    }),
                }
            }
        }
    }

    /// Reads and parses a manifest.
    pub fn read_manifest(&self, descriptor: &Descriptor) -> Result<Manifest> {
        let bytes = self.read_blob(descriptor)?;
        manifest::from_blob("manifest", &descriptor.digest, &bytes)
    }

    /// Reads and parses an index.
    pub fn read_index_blob(&self, descriptor: &Descriptor) -> Result<Index> {
        let bytes = self.read_blob(descriptor)?;
        manifest::from_blob("image index", &descriptor.digest, &bytes)
    }

    /// Reads and parses an image config.
    pub fn read_config(&self, descriptor: &Descriptor) -> Result<ImageConfig> {
        let bytes = self.read_blob(descriptor)?;
        ImageConfig::from_blob(&descriptor.digest, &bytes)
    }

    /// Every blob reachable from `descriptor` (itself included), in no particular order.
    pub fn reachable_from(
        &self,
        descriptor: &Descriptor,
        reachable: &mut BTreeSet<String>,
    ) -> Result<()> {
        if !reachable.insert(descriptor.digest.to_string()) {
            return Ok(());
        }
        if media_type::is_index(&descriptor.media_type) {
            let index = self.read_index_blob(descriptor)?;
            for child in index.manifests.iter().chain(index.subject.iter()) {
                if self.has_blob(&child.digest) {
                    self.reachable_from(child, reachable)?;
                }
            }
        } else if media_type::is_manifest(&descriptor.media_type) {
            let manifest = self.read_manifest(descriptor)?;
            reachable.insert(manifest.config.digest.to_string());
            for layer in &manifest.layers {
                reachable.insert(layer.digest.to_string());
            }
        }
        Ok(())
    }

    /// Removes blobs that nothing in `index.json` reaches, and stale temporary files.
    pub fn collect_garbage(&self) -> Result<GarbageReport> {
        let mut reachable = BTreeSet::new();
        for entry in self.index()?.manifests {
            self.reachable_from(&entry, &mut reachable)?;
        }
        let mut report = GarbageReport::default();
        let blobs = self.root.join(BLOBS_DIR);
        let algorithms = fs::read_dir(&blobs).map_err(io_error("listing", &blobs))?;
        for algorithm in algorithms {
            let algorithm = algorithm.map_err(io_error("listing", &blobs))?;
            let algorithm_name = algorithm.file_name().to_string_lossy().into_owned();
            let entries =
                fs::read_dir(algorithm.path()).map_err(io_error("listing", algorithm.path()))?;
            for entry in entries {
                let entry = entry.map_err(io_error("listing", algorithm.path()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let digest = format!("{algorithm_name}:{name}");
                let keep = reachable.contains(&digest) && parse_digest(&digest).is_ok();
                if !keep {
                    let size = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
                    fs::remove_file(entry.path()).map_err(io_error("removing", entry.path()))?;
                    report.bytes += size;
                    report.removed.push(digest);
                }
            }
        }
        report.removed.sort();
        Ok(report)
    }
}

fn unwrap_mismatch(source: io::Error, action: &'static str, path: impl Into<PathBuf>) -> Error {
    if source.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Ok(inner) = source
            .into_inner()
            .unwrap_or_else(|| unreachable!())
            .downcast::<Error>()
        {
            return *inner;
        }
        unreachable!("checked above that the inner error is ours");
    }
    Error::Io {
        action,
        path: path.into(),
        source,
    }
}

/// Unwraps an I/O error that carries one of this crate's errors (such as a
/// digest mismatch detected while streaming) back into it.
pub(crate) fn io_to_error(
    source: io::Error,
    action: &'static str,
    path: impl Into<PathBuf>,
) -> Error {
    unwrap_mismatch(source, action, path)
}

/// A blob being written; dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    file: io::BufWriter<tempfile::NamedTempFile>,
    hasher: Hasher,
    size: u64,
    dir: PathBuf,
}

impl BlobWriter {
    /// Syncs the blob and moves it to its content address.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let digest = self.hasher.finish();
        let file = self.file.into_inner().map_err(|error| Error::Io {
            action: "flushing a blob in",
            path: self.dir.clone(),
            source: error.into_error(),
        })?;
        file.as_file()
            .sync_all()
            .map_err(io_error("syncing a blob in", &self.dir))?;
        let target = self.dir.join(digest.digest());
        if target.exists() {
            // Same content already stored; the temporary file goes away on drop.
            return Ok((digest, self.size));
        }
        file.persist(&target).map_err(|error| Error::Io {
            action: "storing blob",
            path: target,
            source: error.error,
        })?;
        Ok((digest, self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_content_addressed_and_verified_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path().join("l")).unwrap();
        let digest = layout.put_blob(b"content").unwrap();
        let descriptor = Descriptor::new("application/octet-stream", digest.clone(), 7);
        assert_eq!(layout.read_blob(&descriptor).unwrap(), b"content");

        // Same size, different bytes: refused.
        fs::write(layout.blob_path(&digest), b"CONTENT").unwrap();
        let error = layout.read_blob(&descriptor).unwrap_err();
        assert!(matches!(error, Error::BlobMismatch { .. }), "{error}");
        // Different size: refused before reading.
        fs::write(layout.blob_path(&digest), b"content!").unwrap();
        assert!(matches!(
            layout.read_blob(&descriptor).unwrap_err(),
            Error::BlobMismatch { .. }
        ));
        // Wrong declared size: refused.
        fs::write(layout.blob_path(&digest), b"content").unwrap();
        let wrong_size = Descriptor::new("application/octet-stream", digest, 6);
        assert!(matches!(
            layout.read_blob(&wrong_size).unwrap_err(),
            Error::BlobMismatch { .. }
        ));
    }

    #[test]
    fn put_blob_verified_refuses_wrong_content_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let digest = sha256_of(b"expected");
        assert!(
            layout
                .put_blob_verified(&b"tampered"[..], &digest, 8)
                .is_err()
        );
        assert!(!layout.has_blob(&digest));
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn tags_resolve_and_garbage_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let config = layout
            .put_json(
                "config",
                media_type::OCI_CONFIG,
                &ImageConfig::new("amd64", "linux").as_json(),
            )
            .unwrap();
        let layer = layout.put_blob(b"layer").unwrap();
        let manifest = Manifest::new_oci(
            config,
            vec![Descriptor::new(media_type::OCI_LAYER_TAR, layer, 5)],
        );
        let manifest_descriptor = layout
            .put_json("manifest", media_type::OCI_MANIFEST, &manifest)
            .unwrap();
        let orphan = layout.put_blob(b"orphan").unwrap();
        layout.tag("v1", &manifest_descriptor).unwrap();
        layout.tag("v1", &manifest_descriptor).unwrap();
        assert_eq!(layout.index().unwrap().manifests.len(), 1);
        assert_eq!(
            layout.resolve(Some("v1")).unwrap().digest,
            manifest_descriptor.digest
        );
        assert_eq!(
            layout.resolve(None).unwrap().digest,
            manifest_descriptor.digest
        );
        assert!(matches!(
            layout.resolve(Some("v2")),
            Err(Error::TagNotFound { .. })
        ));

        let report = layout.collect_garbage().unwrap();
        assert_eq!(report.removed, vec![orphan.to_string()]);
        assert!(layout.has_blob(&manifest_descriptor.digest));
        layout.untag("v1").unwrap();
        assert_eq!(layout.collect_garbage().unwrap().removed.len(), 3);
    }
}
