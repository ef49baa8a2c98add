//! The patch layer of a dpkg image, written the way `dpkg --unpack` and
//! `--configure` would leave the filesystem, without running either:
//!
//! - every data entry of each new `.deb`, streamed from the package into
//!   the layer; directories that exist keep their metadata, and paths go
//!   through the image's directory symlinks (`/lib` → `usr/lib`) as dpkg
//!   follows them;
//! - conffiles as dpkg keeps them without a prompt (`--force-confold`):
//!   one the image never edited is replaced, an edited one stays and the
//!   new version lands beside it as `<path>.dpkg-dist`, a deleted one stays
//!   deleted; the status records the new distributed hash either way;
//! - whiteouts for what the old version owned and the new one does not
//!   (unless another package owns it), and for directories that end up
//!   empty and unowned;
//! - the database: the status paragraph, `info/` files, or the
//!   `status.d/` entries of a distroless image.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use md5::{Digest as _, Md5};
use sealcraft_deb::archive::EntryKind as DebKind;
use sealcraft_deb::{DataEntry, DebPackage};
use sealcraft_oci::image::{LayerOptions, WrittenLayer, write_layer};
use sealcraft_oci::layer::{EntryKind, EntryMeta};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::view::MergedView;
use sealcraft_pkgdb::FileChange;
use sealcraft_pkgdb::dpkg::{
    Conffile, DpkgDatabase, DpkgRecord, NewVersion, parse_control_conffiles,
};

use crate::{Error, Result};

/// What the layer did besides installing files.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerSummary {
    /// Files the layer writes (package content and database files).
    pub files_written: usize,
    /// Paths it removes.
    pub paths_removed: usize,
    /// Conffiles the image had edited: kept, the new version beside them as `.dpkg-dist`.
    pub conffiles_kept: Vec<String>,
}

/// A change of the layer, by real path.
enum Pending {
    Content(EntryMeta, Vec<u8>),
    Whiteout,
}

struct Writer<'v> {
    view: &'v MergedView,
    /// Real paths written so far (package paths resolved), with their kind.
    written: BTreeMap<PathBuf, bool>,
    /// Package directory path → real directory path, for directories this layer created.
    created_dirs: BTreeMap<PathBuf, PathBuf>,
    epoch: i64,
}

impl Writer<'_> {
    /// Where `path` (as a package names it) really is: its parent resolved
    /// through the image's symlinks, its last component kept.
    fn real_path(&self, path: &Path) -> PathBuf {
        let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        else {
            return path.to_path_buf();
        };
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        if let Some(real) = self.created_dirs.get(parent) {
            return real.join(name);
        }
        match self.view.resolve(parent) {
            Some((real, node)) if node.meta.kind == EntryKind::Directory => real.join(name),
            _ => {
                let real_parent = self.real_path(parent);
                real_parent.join(name)
            }
        }
    }

    /// Whether `real` is a directory in the image (symlinks followed).
    fn is_directory(&self, real: &Path) -> bool {
        self.view
            .resolve(real)
            .is_some_and(|(_, node)| node.meta.kind == EntryKind::Directory)
    }

    fn meta(&self, real: &Path, entry: &DataEntry, kind: EntryKind) -> EntryMeta {
        EntryMeta {
            path: real.to_path_buf(),
            kind,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime.min(self.epoch),
            size: entry.size,
            xattrs: BTreeMap::new(),
        }
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// What dpkg does with a conffile the new version ships.
enum ConffileAction {
    Install,
    KeepCurrent,
    KeepAndDist,
}

fn conffile_action(old: Option<&Conffile>, current: Option<&str>, new: &str) -> ConffileAction {
    match (old, current) {
        (_, Some(current)) if current == new => ConffileAction::KeepCurrent,
        // Never recorded (or recorded as not yet configured) and absent: install it.
        (None, None) => ConffileAction::Install,
        (Some(old), None) if old.md5 == "newconffile" => ConffileAction::Install,
        // The administrator deleted it: it stays deleted.
        (Some(_), None) => ConffileAction::KeepCurrent,
        // A file at a conffile's path that no version recorded: kept, as dpkg's default answer.
        (None, Some(_)) => ConffileAction::KeepAndDist,
        (Some(old), Some(current)) if current == old.md5 => ConffileAction::Install,
        (Some(old), Some(_)) if new == old.md5 => ConffileAction::KeepCurrent,
        (Some(_), Some(_)) => ConffileAction::KeepAndDist,
    }
}

/// Writes the patch layer into `output`; `database` ends up describing the patched image.
pub(crate) fn write_patch_layer(
    view: &MergedView,
    database: &mut DpkgDatabase,
    debs: &[&DebPackage],
    output: &Layout,
    options: &LayerOptions,
    epoch: i64,
) -> Result<(WrittenLayer, LayerSummary)> {
    let mut summary = LayerSummary::default();
    let mut failure: Option<Error> = None;
    let mut writer = Writer {
        view,
        written: BTreeMap::new(),
        created_dirs: BTreeMap::new(),
        epoch,
    };
    let old_records: Vec<Option<DpkgRecord>> = debs
        .iter()
        .map(|deb| database.find(deb.name(), deb.architecture()).cloned())
        .collect();
    let mut new_versions: Vec<NewVersion> = Vec::new();
    let layer = write_layer(output, options, |tar| {
        let mut count = 0u64;
        for (deb, old) in debs.iter().zip(&old_records) {
            let control_conffiles: Vec<(String, Vec<String>)> = deb
                .control_files
                .get("conffiles")
                .map(|bytes| parse_control_conffiles(&String::from_utf8_lossy(bytes)))
                .unwrap_or_default();
            let conffile_paths: BTreeSet<&str> = control_conffiles
                .iter()
                .map(|(path, _)| path.as_str())
                .collect();
            let needs_md5s = !deb.control_files.contains_key("md5sums");
            let mut list = Vec::new();
            let mut file_md5s = Vec::new();
            let mut conffiles: Vec<Conffile> = Vec::new();
            let visited = deb.data_entries(|entry, content| {
                let absolute = if entry.path.as_os_str().is_empty() {
                    "/.".to_owned()
                } else {
                    format!("/{}", entry.path.display())
                };
                list.push(absolute.clone());
                if entry.path.as_os_str().is_empty() {
                    return Ok(());
                }
                let real = writer.real_path(&entry.path);
                let io_error = |source: io::Error| sealcraft_deb::Error::Io {
                    action: "writing the patch layer from",
                    path: PathBuf::from(deb.name()),
                    source,
                };
                match &entry.kind {
                    DebKind::Directory => {
                        if writer.is_directory(&real) || writer.written.get(&real) == Some(&true) {
                            return Ok(());
                        }
                        let meta = writer.meta(&real, &entry, EntryKind::Directory);
                        tar.append(&meta, &mut io::empty()).map_err(io_error)?;
                        writer.created_dirs.insert(entry.path.clone(), real.clone());
                        writer.written.insert(real, true);
                    }
                    DebKind::File if conffile_paths.contains(absolute.as_str()) => {
                        let mut bytes = Vec::new();
                        content.read_to_end(&mut bytes).map_err(io_error)?;
                        let new_md5 = md5_hex(&bytes);
                        let recorded = old.as_ref().and_then(|old| {
                            old.conffiles
                                .iter()
                                .find(|conffile| conffile.path == absolute)
                        });
                        let current = view
                            .resolve(&real)
                            .and_then(|(_, node)| view.read_node(node))
                            .and_then(Result::ok)
                            .map(|current| md5_hex(&current));
                        let target = match conffile_action(recorded, current.as_deref(), &new_md5) {
                            ConffileAction::Install => Some(real.clone()),
                            ConffileAction::KeepCurrent => None,
                            ConffileAction::KeepAndDist => {
                                summary.conffiles_kept.push(absolute.clone());
                                Some(PathBuf::from(format!("{}.dpkg-dist", real.display())))
                            }
                        };
                        if let Some(target) = target {
                            let mut meta = writer.meta(&target, &entry, EntryKind::File);
                            meta.size = bytes.len() as u64;
                            tar.append(&meta, &mut &bytes[..]).map_err(io_error)?;
                            writer.written.insert(target, false);
                        }
                        let flags = control_conffiles
                            .iter()
                            .find(|(path, _)| *path == absolute)
                            .map(|(_, flags)| flags.clone())
                            .unwrap_or_default();
                        conffiles.push(Conffile {
                            path: absolute,
                            md5: new_md5,
                            flags,
                        });
                    }
                    DebKind::File => {
                        let meta = writer.meta(&real, &entry, EntryKind::File);
                        if needs_md5s {
                            let mut bytes = Vec::new();
                            content.read_to_end(&mut bytes).map_err(io_error)?;
                            file_md5s.push((entry.path.display().to_string(), md5_hex(&bytes)));
                            tar.append(&meta, &mut &bytes[..]).map_err(io_error)?;
                        } else {
                            tar.append(&meta, content).map_err(io_error)?;
                        }
                        writer.written.insert(real, false);
                    }
                    DebKind::Symlink(target) => {
                        let mut meta =
                            writer.meta(&real, &entry, EntryKind::Symlink(target.clone()));
                        meta.size = 0;
                        tar.append(&meta, &mut io::empty()).map_err(io_error)?;
                        writer.written.insert(real, false);
                    }
                    DebKind::HardLink(target) => {
                        let real_target = writer.real_path(target);
                        let mut meta = writer.meta(&real, &entry, EntryKind::HardLink(real_target));
                        meta.size = 0;
                        tar.append(&meta, &mut io::empty()).map_err(io_error)?;
                        writer.written.insert(real, false);
                    }
                    DebKind::Special => {
                        return Err(sealcraft_deb::Error::BadPackage {
                            path: PathBuf::from(deb.name()),
                            reason: "it ships a device or fifo, which patching does not install",
                        });
                    }
                }
                count += 1;
                Ok(())
            });
            if let Err(error) = visited {
                failure = Some(Error::Package(error));
                return Err(io::Error::other("a package could not be installed"));
            }
            // Conffiles of the old version the new one no longer ships stay, marked obsolete.
            if let Some(old) = old {
                for conffile in &old.conffiles {
                    if conffiles.iter().any(|new| new.path == conffile.path) {
                        continue;
                    }
                    if view.resolve(conffile.relative()).is_some() {
                        let mut obsolete = conffile.clone();
                        if !obsolete.flags.iter().any(|flag| flag == "obsolete") {
                            obsolete.flags.push("obsolete".into());
                        }
                        conffiles.push(obsolete);
                    }
                }
            }
            new_versions.push(NewVersion {
                control: deb.control.clone(),
                control_files: deb.control_files.clone(),
                list,
                file_md5s,
                conffiles,
            });
        }
        for new in &new_versions {
            database.install(new.clone());
        }
        let mut pending: BTreeMap<PathBuf, Pending> = BTreeMap::new();
        // What the old versions owned and nothing owns now.
        let owned_now: BTreeSet<&str> = database
            .records
            .iter()
            .filter(|record| record.installed)
            .flat_map(|record| record.files.iter().map(String::as_str))
            .chain(database.records.iter().flat_map(|record| {
                record
                    .conffiles
                    .iter()
                    .map(|conffile| conffile.path.as_str())
            }))
            .collect();
        let mut removed_dirs: Vec<PathBuf> = Vec::new();
        for old in old_records.iter().flatten() {
            for path in &old.files {
                if owned_now.contains(path.as_str()) {
                    continue;
                }
                let relative = PathBuf::from(path.trim_start_matches('/'));
                let real = writer.real_path(&relative);
                if writer.written.contains_key(&real) {
                    continue;
                }
                match view.get(&real) {
                    Some(node) if node.meta.kind == EntryKind::Directory => removed_dirs.push(real),
                    Some(_) => {
                        pending.insert(real, Pending::Whiteout);
                    }
                    None => {}
                }
            }
        }
        // Deepest first, so a parent sees its children's removal.
        removed_dirs.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
        for directory in removed_dirs {
            let empty = view.under(&directory).all(|(child, _)| {
                pending.contains_key(child)
                    || child.ancestors().any(|ancestor| {
                        ancestor != directory
                            && matches!(pending.get(ancestor), Some(Pending::Whiteout))
                    })
            }) && !writer
                .written
                .keys()
                .any(|written| written.starts_with(&directory));
            if empty {
                pending.insert(directory, Pending::Whiteout);
            }
        }
        for change in database.changes() {
            match change {
                FileChange::Write(path, bytes) => {
                    let real = writer.real_path(&path);
                    let mut meta = match view.resolve(&real) {
                        Some((_, node)) => node.meta.clone(),
                        None => EntryMeta::new(real.clone(), EntryKind::File, 0o644),
                    };
                    meta.path = real.clone();
                    meta.kind = EntryKind::File;
                    meta.size = bytes.len() as u64;
                    meta.mtime = epoch;
                    pending.insert(real, Pending::Content(meta, bytes));
                }
                FileChange::Delete(path) => {
                    let real = writer.real_path(&path);
                    if view.get(&real).is_some() {
                        pending.entry(real).or_insert(Pending::Whiteout);
                    }
                }
            }
        }
        for (path, change) in &pending {
            // Parent directories the database files need that the image lacks.
            for ancestor in path
                .ancestors()
                .skip(1)
                .filter(|ancestor| !ancestor.as_os_str().is_empty())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                if !writer.is_directory(ancestor) && !writer.written.contains_key(ancestor) {
                    let mut meta =
                        EntryMeta::new(ancestor.to_path_buf(), EntryKind::Directory, 0o755);
                    meta.mtime = epoch;
                    tar.append(&meta, &mut io::empty())?;
                    writer.written.insert(ancestor.to_path_buf(), true);
                }
            }
            match change {
                Pending::Content(meta, bytes) => {
                    tar.append(meta, &mut &bytes[..])?;
                    summary.files_written += 1;
                }
                Pending::Whiteout => {
                    tar.append(
                        &EntryMeta::new(path.clone(), EntryKind::Whiteout, 0),
                        &mut io::empty(),
                    )?;
                    summary.paths_removed += 1;
                }
            }
            count += 1;
        }
        summary.files_written += writer.written.values().filter(|is_dir| !**is_dir).count();
        Ok(count)
    });
    if let Some(error) = failure {
        return Err(error);
    }
    Ok((layer?, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conffile(md5: &str) -> Conffile {
        Conffile {
            path: "/etc/x.conf".into(),
            md5: md5.into(),
            flags: Vec::new(),
        }
    }

    #[test]
    fn conffiles_follow_dpkg_s_keep_the_old_answer() {
        let action =
            |old: Option<&Conffile>, current: Option<&str>, new: &str| match conffile_action(
                old, current, new,
            ) {
                ConffileAction::Install => "install",
                ConffileAction::KeepCurrent => "keep",
                ConffileAction::KeepAndDist => "keep+dist",
            };
        let old = conffile("aaa");
        // Untouched since installed: the new version replaces it.
        assert_eq!(action(Some(&old), Some("aaa"), "bbb"), "install");
        // Edited, the package's version unchanged: nothing to do.
        assert_eq!(action(Some(&old), Some("eee"), "aaa"), "keep");
        // Edited and changed upstream: kept, the new one beside it.
        assert_eq!(action(Some(&old), Some("eee"), "bbb"), "keep+dist");
        // Deleted by the administrator: stays deleted.
        assert_eq!(action(Some(&old), None, "bbb"), "keep");
        // Already what the new version ships.
        assert_eq!(action(Some(&old), Some("bbb"), "bbb"), "keep");
        // A conffile new in this version.
        assert_eq!(action(None, None, "bbb"), "install");
        assert_eq!(
            action(Some(&conffile("newconffile")), None, "bbb"),
            "install"
        );
        assert_eq!(action(None, Some("eee"), "bbb"), "keep+dist");
    }
}
