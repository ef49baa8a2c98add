//! Which apt sources a patch reads, and where their keys come from.
//!
//! In order: the sources the configuration names (keys from the host);
//! else the image's own `/etc/apt/sources.list` and `sources.list.d/`
//! (keys from the image, then the host: a hardened image may have lost
//! its keyring with apt); else the host's apt configuration (a hardened
//! image has no sources of its own).

use std::path::{Path, PathBuf};

use sealcraft_apt::{KeyFiles, Source, sources};
use sealcraft_oci::layer::EntryKind;
use sealcraft_oci::view::MergedView;

use crate::{Error, Result};

/// Where the sources came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceOrigin {
    /// `[patch] sources` or `--source`.
    Configured,
    /// The image's apt configuration.
    Image,
    /// The apt configuration of the machine sealcraft runs on.
    Host,
}

/// The image's sources, in apt's order: `sources.list`, then `sources.list.d/` by name.
pub fn image_sources(view: &MergedView) -> Result<Vec<Source>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if view.resolve("etc/apt/sources.list").is_some() {
        files.push(PathBuf::from("etc/apt/sources.list"));
    }
    let directory = Path::new("etc/apt/sources.list.d");
    let mut listed: Vec<PathBuf> = view
        .under(directory)
        .filter(|(path, node)| {
            path.parent() == Some(directory)
                && !matches!(node.meta.kind, EntryKind::Directory | EntryKind::Whiteout)
                && path
                    .extension()
                    .is_some_and(|extension| extension == "list" || extension == "sources")
        })
        .map(|(path, _)| path.to_path_buf())
        .collect();
    listed.sort();
    files.extend(listed);
    let mut found = Vec::new();
    for file in files {
        let bytes = view.read(&file)?;
        let origin = format!("/{}", file.display());
        found.extend(
            sources::parse(&String::from_utf8_lossy(&bytes), &origin).map_err(Error::Sources)?,
        );
    }
    Ok(found)
}

/// The image's keyrings, then the host's for what the image lacks.
pub(crate) struct ImageKeys<'a> {
    pub(crate) view: &'a MergedView,
    pub(crate) host: &'a dyn KeyFiles,
}

impl KeyFiles for ImageKeys<'_> {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let relative = path.strip_prefix("/").unwrap_or(path);
        self.view
            .read(relative)
            .ok()
            .or_else(|| self.host.read(path))
    }

    fn defaults(&self) -> Vec<(String, Vec<u8>)> {
        let mut keys = Vec::new();
        if let Ok(bytes) = self.view.read("etc/apt/trusted.gpg") {
            keys.push(("/etc/apt/trusted.gpg (image)".to_owned(), bytes));
        }
        let directory = Path::new("etc/apt/trusted.gpg.d");
        for (path, node) in self.view.under(directory) {
            let keyring = path
                .extension()
                .is_some_and(|extension| extension == "gpg" || extension == "asc");
            if path.parent() == Some(directory)
                && keyring
                && !matches!(node.meta.kind, EntryKind::Directory | EntryKind::Whiteout)
                && let Ok(bytes) = self.view.read(path)
            {
                keys.push((format!("/{} (image)", path.display()), bytes));
            }
        }
        if keys.is_empty() {
            keys = self.host.defaults();
        }
        keys
    }
}
