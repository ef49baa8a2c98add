//! Where catalogers read from: an image's merged view, or a directory.

use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sealcraft_oci::layer::EntryKind;
use sealcraft_oci::view::MergedView;

/// A regular file of the filesystem being cataloged.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the root.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// The layer that wrote it (images only).
    pub layer: Option<usize>,
}

/// A read-only filesystem.
pub trait FileSource {
    /// Every regular file, in path order.
    fn files(&self) -> Vec<SourceFile>;
    /// Reads a file (symlinks followed inside the root), at most `limit` bytes.
    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>>;
    /// Reads up to `length` bytes at `offset` of a regular file.
    fn read_at(&self, path: &Path, offset: u64, length: u64) -> io::Result<Vec<u8>>;
}

/// An image, through its merged layer view.
pub struct ViewSource<'a>(pub &'a MergedView);

impl FileSource for ViewSource<'_> {
    fn files(&self) -> Vec<SourceFile> {
        self.0
            .iter()
            .filter(|(_, node)| {
                matches!(node.meta.kind, EntryKind::File | EntryKind::HardLink(_))
                    && node.content.is_some()
            })
            .map(|(path, node)| SourceFile {
                path: path.to_path_buf(),
                size: node.content.map_or(0, |content| content.size),
                mode: node.meta.mode,
                layer: Some(node.layer),
            })
            .collect()
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let (_, node) = self.0.resolve(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not in the image", path.display()),
            )
        })?;
        let content = node.content.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            )
        })?;
        let mut bytes = Vec::with_capacity(usize::try_from(content.size.min(limit)).unwrap_or(0));
        self.0
            .open_content(content)
            .take(limit)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn read_at(&self, path: &Path, offset: u64, length: u64) -> io::Result<Vec<u8>> {
        let node = self.0.get(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not in the image", path.display()),
            )
        })?;
        let content = node.content.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            )
        })?;
        if offset >= content.size {
            return Ok(Vec::new());
        }
        let range = sealcraft_oci::view::ContentRef {
            offset: content.offset + offset,
            size: length.min(content.size - offset),
            ..content
        };
        let mut bytes = Vec::with_capacity(usize::try_from(range.size).unwrap_or(0));
        self.0.open_content(range).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// A root filesystem directory on disk (symlinks are never followed out of it).
pub struct DirectorySource {
    root: PathBuf,
}

impl DirectorySource {
    /// Catalogs the tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Resolves `path` inside the root, following symlinks but never above the root.
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let mut pending: Vec<std::ffi::OsString> = path
            .components()
            .rev()
            .filter_map(|component| match component {
                std::path::Component::Normal(name) => Some(name.to_owned()),
                std::path::Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut resolved = PathBuf::new();
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                resolved.pop();
                continue;
            }
            let candidate = resolved.join(&name);
            let metadata = std::fs::symlink_metadata(self.root.join(&candidate))?;
            if metadata.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "too many levels of symbolic links",
                    ));
                }
                let target = std::fs::read_link(self.root.join(&candidate))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(
                    target
                        .components()
                        .rev()
                        .filter_map(|component| match component {
                            std::path::Component::Normal(name) => Some(name.to_owned()),
                            std::path::Component::ParentDir => Some("..".into()),
                            _ => None,
                        }),
                );
            } else {
                resolved = candidate;
            }
        }
        Ok(self.root.join(resolved))
    }
}

impl FileSource for DirectorySource {
    fn files(&self) -> Vec<SourceFile> {
        let mut files = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(relative) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(self.root.join(&relative)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = relative.join(entry.file_name());
                let Ok(metadata) = entry.path().symlink_metadata() else {
                    continue;
                };
                if metadata.is_dir() {
                    stack.push(path);
                } else if metadata.is_file() {
                    files.push(SourceFile {
                        path,
                        size: metadata.len(),
                        mode: metadata.mode() & 0o7777,
                        layer: None,
                    });
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let file = std::fs::File::open(self.resolve(path)?)?;
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn read_at(&self, path: &Path, offset: u64, length: u64) -> io::Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        let mut file = std::fs::File::open(self.root.join(path))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.take(length).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}
