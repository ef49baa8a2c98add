//! The build store: layer blobs, layer directories, the step cache and
//! cache mounts, under one directory that builds share.
//!
//! ```text
//! <cache>/
//!   blobs/        an OCI layout: base image blobs and every built layer
//!   layers/<hex>  a layer's directory in overlay form, by diff ID
//!   steps/<hex>   the result of a step, by cache key
//!   compressed/   compressed copies of built layers, by diff ID and algorithm
//!   mounts/<hex>  RUN --mount=type=cache directories
//!   work/<id>/    one build's scratch space (mount points, uppers, bundles,
//!                 temporary files), with its lock in work/<id>.lock
//!   empty/        an empty lower layer
//!   store.lock    held shared by every build, exclusively by a prune
//! ```
//!
//! Everything is written under a temporary name in the build's work
//! directory and renamed into place, so a build killed half-way never leaves
//! an entry that looks complete. A build locks `work/<id>.lock` before it
//! creates `work/<id>`; the next build to open the store unmounts and
//! removes work directories whose lock nobody holds.
//!
//! Use is recorded in modification times: a step record, a base image's
//! manifest and a cache mount are touched whenever a build uses them, which
//! is what `prune` goes by.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use sealcraft_oci::digest::Digest;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::Descriptor;
use sealcraft_oci::unpack::{UnpackOptions, WhiteoutMode, unpack_layer};
use serde::{Deserialize, Serialize};

use sealcraft_runtime::sweep_stale_mounts;

/// Bumped whenever how compressed copies are made changes, so older ones are not reused.
pub(crate) const COMPRESSED_VERSION: &str = "v2";

/// A layer: its blob and the digest of its uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRef {
    pub(crate) descriptor: Descriptor,
    pub(crate) diff_id: Digest,
}

/// What a cached step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    /// The layer, or `None` when the step changed no file.
    pub(crate) layer: Option<LayerRef>,
}

/// The store, with this build's work directory.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    pub(crate) blobs: Layout,
    work: WorkDir,
    /// Shared for the build's lifetime, so a prune never runs under it.
    _in_use: OwnedFd,
}

/// The lock file builds share and a prune takes alone.
pub(crate) const STORE_LOCK: &str = "store.lock";

/// Marks `path` as used now; best-effort, since use tracking only guides pruning.
pub(crate) fn touch(path: &Path) {
    if let Ok(file) = fs::File::open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// One build's work directory, locked while the build runs.
#[derive(Debug)]
pub(crate) struct WorkDir {
    path: PathBuf,
    lock_path: PathBuf,
    _lock: OwnedFd,
    counter: std::cell::Cell<u64>,
}

impl WorkDir {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A new, empty directory inside the work directory.
    pub(crate) fn fresh(&self, what: &str) -> io::Result<PathBuf> {
        let next = self.counter.get() + 1;
        self.counter.set(next);
        let path = self.path.join(format!("{what}-{next}"));
        fs::create_dir(&path)?;
        Ok(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        sweep_stale_mounts(&self.path);
        let _ = fs::remove_dir_all(&self.path);
        // Removed while still held, so no other build can take it for a live directory.
        let _ = fs::remove_file(&self.lock_path);
    }
}

pub(crate) fn hex(digest: &Digest) -> &str {
    digest
        .as_ref()
        .split_once(':')
        .map_or(digest.as_ref(), |(_, hex)| hex)
}

fn open_lock(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

pub(crate) fn try_lock(path: &Path) -> io::Result<Option<OwnedFd>> {
    let fd = open_lock(path)?;
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

impl Store {
    /// Opens (creating) the store at `root`, cleans up after killed builds,
    /// and claims a work directory for this build.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        for sub in ["layers", "steps", "compressed", "mounts", "work", "empty"] {
            let path = root.join(sub);
            fs::create_dir_all(&path).map_err(Error::store("creating", &path))?;
        }
        let work = root.join("work");
        fs::set_permissions(&work, fs::Permissions::from_mode(0o700))
            .map_err(Error::store("restricting", &work))?;
        let lock = root.join(STORE_LOCK);
        let in_use = open_lock(&lock).map_err(Error::store("opening", &lock))?;
        // Waits while a prune runs; builds share the lock with each other.
        rustix::fs::flock(&in_use, FlockOperation::LockShared)
            .map_err(|errno| Error::store("locking", &lock)(errno.into()))?;
        remove_abandoned_work(&work).map_err(Error::store("cleaning", &work))?;
        let blobs = Layout::open_or_create(root.join("blobs"))?;
        Ok(Self {
            root: root.to_path_buf(),
            blobs,
            work: claim_work_dir(&work).map_err(Error::store("claiming a directory in", &work))?,
            _in_use: in_use,
        })
    }

    /// This build's work directory.
    pub(crate) fn work(&self) -> &WorkDir {
        &self.work
    }

    /// An empty directory, the bottom of stacks that have no layers.
    pub(crate) fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    /// A temporary path in this build's work directory (for renames into place).
    fn temporary(&self, what: &str) -> PathBuf {
        let next = self.work.counter.get() + 1;
        self.work.counter.set(next);
        self.work.path.join(format!("tmp-{what}-{next}"))
    }

    /// The directory of `layer` in overlay form, unpacked from its blob once.
    pub(crate) fn layer_dir(&self, layer: &LayerRef) -> Result<PathBuf> {
        let path = self.root.join("layers").join(hex(&layer.diff_id));
        if path.is_dir() {
            return Ok(path);
        }
        let partial = self.temporary("unpack");
        fs::create_dir(&partial).map_err(Error::store("creating", &partial))?;
        let options = UnpackOptions {
            allow_devices: true,
            preserve_owners: true,
            xattrs: true,
            whiteouts: WhiteoutMode::Overlay,
            ..UnpackOptions::default()
        };
        let reader = self.blobs.open_blob(&layer.descriptor)?;
        let unpacked = unpack_layer(reader, layer.descriptor.digest.as_ref(), &partial, &options);
        if let Err(error) = unpacked {
            let _ = fs::remove_dir_all(&partial);
            return Err(error.into());
        }
        self.adopt(&partial, &path)
            .map_err(Error::store("moving the unpacked layer to", &path))?;
        Ok(path)
    }

    /// Moves a finished upper directory into place as `diff_id`'s layer directory.
    pub(crate) fn adopt_upper(&self, upper: &Path, diff_id: &Digest) -> io::Result<PathBuf> {
        let path = self.root.join("layers").join(hex(diff_id));
        self.adopt(upper, &path)?;
        Ok(path)
    }

    fn adopt(&self, from: &Path, to: &Path) -> io::Result<()> {
        match fs::rename(from, to) {
            Ok(()) => Ok(()),
            // Another build got there first with the same content.
            Err(_) if to.is_dir() => fs::remove_dir_all(from),
            Err(error) => Err(error),
        }
    }

    /// The cached result of the step with `key`, if its blob is still here.
    pub(crate) fn lookup_step(&self, key: &str) -> Option<StepRecord> {
        let path = self.root.join("steps").join(key);
        let bytes = fs::read(&path).ok()?;
        let record: StepRecord = serde_json::from_slice(&bytes).ok()?;
        match &record.layer {
            Some(layer) if !self.blobs.has_blob(&layer.descriptor.digest) => None,
            _ => {
                touch(&path);
                Some(record)
            }
        }
    }

    /// Marks a base image (its index or manifest blob) as used by this build.
    pub(crate) fn touch_blob(&self, digest: &Digest) {
        touch(&self.blobs.blob_path(digest));
    }

    /// Records the result of the step with `key`.
    pub(crate) fn record_step(&self, key: &str, record: &StepRecord) -> Result<()> {
        let path = self.root.join("steps").join(key);
        let bytes = serde_json::to_vec(record)
            .map_err(|error| Error::store("recording the step", &path)(io::Error::other(error)))?;
        sealcraft_files::write_atomically(&path, &bytes)
            .map_err(|error| Error::store("recording the step", &path)(error.source))
    }

    /// `layer` (an uncompressed blob) compressed with `compression`, made once
    /// and remembered by diff ID: built layers are stored uncompressed, and
    /// only those that end up in an image are ever compressed.
    pub(crate) fn compressed(
        &self,
        layer: &LayerRef,
        compression: sealcraft_oci::layer::Compression,
    ) -> Result<Descriptor> {
        // Records made before names were shared call uncompressed ones "tar".
        let name = match compression {
            sealcraft_oci::layer::Compression::None => "tar",
            other => other.name(),
        };
        let record = self.root.join("compressed").join(format!(
            "{}-{}.{name}",
            COMPRESSED_VERSION,
            hex(&layer.diff_id)
        ));
        if let Ok(bytes) = fs::read(&record)
            && let Ok(descriptor) = serde_json::from_slice::<Descriptor>(&bytes)
            && self.blobs.has_blob(&descriptor.digest)
        {
            return Ok(descriptor);
        }
        let descriptor = sealcraft_oci::image::compress_layer(
            &self.blobs,
            &layer.descriptor,
            compression,
            &self.blobs,
        )?;
        let bytes = serde_json::to_vec(&descriptor)
            .map_err(|error| Error::store("recording", &record)(io::Error::other(error)))?;
        sealcraft_files::write_atomically(&record, &bytes)
            .map_err(|error| Error::store("recording", &record)(error.source))?;
        Ok(descriptor)
    }

    /// The persistent directory of a cache mount.
    pub(crate) fn cache_mount(&self, id: &str) -> io::Result<(PathBuf, bool)> {
        let key = hex(&sealcraft_oci::digest::sha256_of(id.as_bytes())).to_owned();
        let path = self.root.join("mounts").join(key);
        let created = !path.exists();
        fs::create_dir_all(&path)?;
        touch(&path);
        Ok((path, created))
    }

    /// A lock for a `sharing=locked` cache mount.
    pub(crate) fn lock_cache_mount(&self, directory: &Path) -> io::Result<OwnedFd> {
        let fd = open_lock(&directory.with_extension("lock"))?;
        rustix::fs::flock(&fd, FlockOperation::LockExclusive)?;
        Ok(fd)
    }
}

/// Removes the work directories (and lock files) of builds that are gone.
pub(crate) fn remove_abandoned_work(work: &Path) -> io::Result<()> {
    for entry in fs::read_dir(work)? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "lock")
        {
            continue;
        }
        let lock_path = path.with_extension("lock");
        if let Some(_lock) = try_lock(&lock_path)? {
            sweep_stale_mounts(&path);
            if path.is_dir() {
                fs::remove_dir_all(&path)?;
            }
            fs::remove_file(&lock_path)?;
        }
    }
    Ok(())
}

/// A new work directory, locked before it exists so no sweep can take it.
fn claim_work_dir(work: &Path) -> io::Result<WorkDir> {
    let name = format!("{}-{}", std::process::id(), unique_suffix());
    let lock_path = work.join(format!("{name}.lock"));
    let lock = try_lock(&lock_path)?
        .ok_or_else(|| io::Error::other("a fresh work directory is already locked"))?;
    let path = work.join(name);
    fs::create_dir(&path)?;
    Ok(WorkDir {
        path,
        lock_path,
        _lock: lock,
        counter: std::cell::Cell::new(0),
    })
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_work_directories_survive_other_builds_and_abandoned_ones_do_not() {
        let root = tempfile::tempdir().unwrap();
        let first = Store::open(root.path()).unwrap();
        let first_dir = first.work().path().to_path_buf();
        let scratch = first.work().fresh("upper").unwrap();
        fs::write(scratch.join("file"), "in use").unwrap();
        // What a killed build leaves: a directory whose lock nobody holds.
        let abandoned = root.path().join("work/999999-dead");
        fs::create_dir_all(abandoned.join("upper")).unwrap();
        fs::write(abandoned.with_extension("lock"), "").unwrap();
        let second = Store::open(root.path()).unwrap();
        assert!(
            scratch.join("file").exists(),
            "a live build's work directory was swept"
        );
        assert!(!abandoned.exists() && !abandoned.with_extension("lock").exists());
        assert_ne!(first_dir, second.work().path());
        drop(first);
        assert!(!first_dir.exists() && !first_dir.with_extension("lock").exists());
        let left: Vec<_> = fs::read_dir(root.path().join("work")).unwrap().collect();
        assert_eq!(
            left.len(),
            2,
            "only the second build's directory and lock remain"
        );
    }
}
