//! Pruning the build store: step records, base images and cache mounts no
//! build has used for a while go, and with them every layer directory,
//! compressed copy and blob that only they referred to.
//!
//! Use is read from modification times, which builds refresh on every use
//! (see the cache module). A prune takes the store lock exclusively, so it
//! never runs while a build has the store open, and a build started during
//! a prune waits for it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sealcraft_oci::manifest::Descriptor;
use serde::Serialize;

use crate::cache::{
    COMPRESSED_VERSION, STORE_LOCK, StepRecord, hex, remove_abandoned_work, try_lock,
};
use crate::{Error, Result};

/// JSON documents above this size are layers, not manifests; they are not read.
const LARGEST_MANIFEST: u64 = 4 << 20;

/// What a prune removed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PruneReport {
    /// The store.
    pub store: PathBuf,
    /// Step records.
    pub steps: usize,
    /// Base images (top-level index or manifest blobs).
    pub base_images: usize,
    /// Unpacked layer directories.
    pub layer_directories: usize,
    /// Blobs (layers, configs, manifests, compressed copies).
    pub blobs: usize,
    /// Cache mounts (`RUN --mount=type=cache`).
    pub cache_mounts: usize,
    /// Bytes freed.
    pub bytes: u64,
}

/// Removes what no build used within `unused_for` (everything when it is zero).
pub fn prune(root: &Path, unused_for: Duration) -> Result<PruneReport> {
    let is_store = root.join("steps").is_dir()
        && root.join("layers").is_dir()
        && root.join("blobs/oci-layout").is_file();
    if !is_store {
        return Err(Error::NotAStore {
            path: root.to_path_buf(),
        });
    }
    let lock_path = root.join(STORE_LOCK);
    let Some(_lock) = try_lock(&lock_path).map_err(Error::store("locking", &lock_path))? else {
        return Err(Error::StoreInUse {
            path: root.to_path_buf(),
        });
    };
    let work = root.join("work");
    remove_abandoned_work(&work).map_err(Error::store("cleaning", &work))?;

    let cutoff = SystemTime::now()
        .checked_sub(unused_for)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let recent = |metadata: &fs::Metadata| {
        !unused_for.is_zero() && metadata.modified().is_ok_and(|time| time >= cutoff)
    };
    let mut report = PruneReport {
        store: root.to_path_buf(),
        ..PruneReport::default()
    };
    let mut keep = Kept::default();

    // Step records: the recent ones keep their layers.
    for (path, metadata) in entries(&root.join("steps"))? {
        let record = recent(&metadata)
            .then(|| fs::read(&path).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<StepRecord>(&bytes).ok());
        match record {
            Some(record) => {
                if let Some(layer) = record.layer {
                    keep.blobs.insert(layer.descriptor.digest.to_string());
                    keep.diff_ids.insert(hex(&layer.diff_id).to_owned());
                }
            }
            None => {
                remove(&path, &mut report.bytes)?;
                report.steps += 1;
            }
        }
    }

    // Base images: a recently used index or manifest keeps everything below it.
    let blob_root = root.join("blobs/blobs");
    let mut bases = Vec::new();
    for algorithm_dir in directories(&blob_root)? {
        for (path, metadata) in entries(&algorithm_dir)? {
            if !metadata.is_file() || metadata.len() > LARGEST_MANIFEST {
                continue;
            }
            let Some(document) = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            else {
                continue;
            };
            let is_image = document.get("manifests").is_some()
                || (document.get("config").is_some() && document.get("layers").is_some());
            if is_image {
                bases.push((blob_digest(&path), document, recent(&metadata)));
            }
        }
    }
    for (digest, document, used) in &bases {
        if *used {
            keep.blobs.insert(digest.clone());
            keep.walk(&blob_root, document);
        }
    }
    // Only images nothing else points at count as images (not an index's children).
    let children: BTreeSet<String> = bases
        .iter()
        .flat_map(|(_, document, _)| listed_manifests(document))
        .collect();
    report.base_images = bases
        .iter()
        .filter(|(digest, _, _)| !keep.blobs.contains(digest) && !children.contains(digest))
        .count();

    // Compressed copies of kept layers, made by this version.
    for (path, _) in entries(&root.join("compressed"))? {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let diff_hex = name
            .strip_prefix(&format!("{COMPRESSED_VERSION}-"))
            .and_then(|rest| rest.split_once('.'))
            .map(|(hex, _)| hex.to_owned());
        let descriptor = diff_hex
            .filter(|hex| keep.diff_ids.contains(hex))
            .and_then(|_| fs::read(&path).ok())
            .and_then(|bytes| serde_json::from_slice::<Descriptor>(&bytes).ok());
        match descriptor {
            Some(descriptor) => {
                keep.blobs.insert(descriptor.digest.to_string());
            }
            None => remove(&path, &mut report.bytes)?,
        }
    }

    for (path, _) in entries(&root.join("layers"))? {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        if !name.is_some_and(|name| keep.diff_ids.contains(&name)) {
            remove(&path, &mut report.bytes)?;
            report.layer_directories += 1;
        }
    }

    for algorithm_dir in directories(&blob_root)? {
        for (path, metadata) in entries(&algorithm_dir)? {
            if metadata.is_file() && !keep.blobs.contains(&blob_digest(&path)) {
                remove(&path, &mut report.bytes)?;
                report.blobs += 1;
            }
        }
    }

    for (path, metadata) in entries(&root.join("mounts"))? {
        if metadata.is_dir() && !recent(&metadata) {
            remove(&path, &mut report.bytes)?;
            let lock = path.with_extension("lock");
            if lock.exists() {
                remove(&lock, &mut report.bytes)?;
            }
            report.cache_mounts += 1;
        }
    }
    Ok(report)
}

/// What survives: blobs by digest, layer directories by diff ID hex.
#[derive(Default)]
struct Kept {
    blobs: BTreeSet<String>,
    diff_ids: BTreeSet<String>,
}

impl Kept {
    /// Keeps what an index or manifest reaches, reading children from `blob_root`.
    fn walk(&mut self, blob_root: &Path, document: &serde_json::Value) {
        for child in listed_manifests(document) {
            if self.blobs.insert(child.clone())
                && let Some(child_document) = read_blob_json(blob_root, &child)
            {
                self.walk(blob_root, &child_document);
            }
        }
        if let Some(config) = digest_field(document.get("config")) {
            if let Some(config_document) = read_blob_json(blob_root, &config) {
                let diff_ids = config_document["rootfs"]["diff_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| id.as_str())
                    .filter_map(|id| id.split_once(':').map(|(_, hex)| hex.to_owned()));
                self.diff_ids.extend(diff_ids);
            }
            self.blobs.insert(config);
        }
        let layers = document["layers"].as_array().into_iter().flatten();
        self.blobs
            .extend(layers.filter_map(|layer| digest_field(Some(layer))));
    }
}

fn listed_manifests(document: &serde_json::Value) -> Vec<String> {
    document["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| digest_field(Some(entry)))
        .collect()
}

fn digest_field(descriptor: Option<&serde_json::Value>) -> Option<String> {
    descriptor?["digest"].as_str().map(str::to_owned)
}

fn read_blob_json(blob_root: &Path, digest: &str) -> Option<serde_json::Value> {
    let (algorithm, hex) = digest.split_once(':')?;
    let path = blob_root.join(algorithm).join(hex);
    if fs::metadata(&path).ok()?.len() > LARGEST_MANIFEST {
        return None;
    }
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// `algorithm:hex` from `blobs/<algorithm>/<hex>`.
fn blob_digest(path: &Path) -> String {
    let name = |path: Option<&Path>| {
        path.and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    format!("{}:{}", name(path.parent()), name(Some(path)))
}

/// The entries of `directory` with their metadata (not following links); none if it is missing.
fn entries(directory: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>> {
    let listing = match fs::read_dir(directory) {
        Ok(listing) => listing,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Error::store("listing", directory)(error)),
    };
    let mut found = Vec::new();
    for entry in listing {
        let entry = entry.map_err(Error::store("listing", directory))?;
        let path = entry.path();
        let metadata = fs::symlink_metadata(&path).map_err(Error::store("reading", &path))?;
        found.push((path, metadata));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn directories(directory: &Path) -> Result<Vec<PathBuf>> {
    Ok(entries(directory)?
        .into_iter()
        .filter(|(_, metadata)| metadata.is_dir())
        .map(|(path, _)| path)
        .collect())
}

/// Removes a file or a whole tree, adding its size to `bytes`.
fn remove(path: &Path, bytes: &mut u64) -> Result<()> {
    let metadata = fs::symlink_metadata(path).map_err(Error::store("reading", path))?;
    if metadata.is_dir() {
        *bytes += tree_size(path);
        fs::remove_dir_all(path).map_err(Error::store("removing", path))
    } else {
        *bytes += metadata.len();
        fs::remove_file(path).map_err(Error::store("removing", path))
    }
}

fn tree_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(listing) = fs::read_dir(&directory) else {
            continue;
        };
        for entry in listing.flatten() {
            match entry.metadata() {
                Ok(metadata) if metadata.is_dir() => pending.push(entry.path()),
                Ok(metadata) => total += metadata.len(),
                Err(_) => {}
            }
        }
    }
    total
}
