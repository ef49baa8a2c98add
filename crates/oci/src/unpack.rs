//! Safe unpacking of layers into a directory.
//!
//! Nothing a layer says can make a write land outside the target: paths are
//! normalised (no absolute paths, no `..`), every parent directory on the
//! way is checked to be a real directory (never a symlink, so neither
//! symlink chains nor symlinked parents lead out), files are created with
//! `O_NOFOLLOW | O_EXCL`, and hard links may only point at non-directories
//! already inside the target. Device nodes are skipped unless asked for.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::Timespec;
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timestamps};
use rustix::process::{Gid, Uid};

use crate::error::{EntryProblem, Error, Result, io_error};
use crate::layer::{EntryKind, EntryMeta, LayerLimits, read_layer};
use crate::layout::Layout;
use crate::manifest::Manifest;

/// What unpacking does with whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Delete what they hide: the result is the merged filesystem.
    #[default]
    Apply,
    /// Keep them in overlayfs form (a 0/0 character device; an opaque
    /// directory gets `trusted.overlay.opaque=y`), so the directory can be
    /// stacked as an overlay lower layer. Needs root.
    Overlay,
}

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Create device nodes (needs privileges); otherwise they are skipped.
    pub allow_devices: bool,
    /// Set owners from the layer (needs root); otherwise files belong to the caller.
    pub preserve_owners: bool,
    /// Set extended attributes from the layer.
    pub xattrs: bool,
    /// Limits on the layer stream.
    pub limits: LayerLimits,
    /// Apply whiteouts, or keep them for overlayfs.
    pub whiteouts: WhiteoutMode,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            allow_devices: false,
            preserve_owners: rustix::process::geteuid().is_root(),
            xattrs: false,
            limits: LayerLimits::default(),
            whiteouts: WhiteoutMode::Apply,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
}

/// Unpacks every layer of `manifest`, base first, into `target` (created if missing).
pub fn unpack_image(
    layout: &Layout,
    manifest: &Manifest,
    target: &Path,
    options: &UnpackOptions,
) -> Result<UnpackStats> {
    fs::create_dir_all(target).map_err(io_error("creating", target))?;
    let mut total = UnpackStats::default();
    for descriptor in &manifest.layers {
        let reader = layout.open_blob(descriptor)?;
        let stats = unpack_layer(reader, descriptor.digest.as_ref(), target, options)?;
        total.entries += stats.entries;
        total.whiteouts += stats.whiteouts;
        total.skipped_devices += stats.skipped_devices;
    }
    Ok(total)
}

/// Unpacks one layer (any compression) onto `target`, applying its whiteouts.
pub fn unpack_layer(
    input: impl Read + Send,
    layer: &str,
    target: &Path,
    options: &UnpackOptions,
) -> Result<UnpackStats> {
    let mut unpacker = Unpacker {
        target: target.to_path_buf(),
        layer: layer.to_owned(),
        options,
        verified_dirs: HashSet::new(),
        added: HashSet::new(),
        directories: Vec::new(),
        stats: UnpackStats::default(),
    };
    read_layer(input, layer, &options.limits, |entry, data| {
        unpacker.entry(entry.meta, data)
    })?;
    unpacker.finish_directories()?;
    Ok(unpacker.stats)
}

struct Unpacker<'a> {
    target: PathBuf,
    layer: String,
    options: &'a UnpackOptions,
    verified_dirs: HashSet<PathBuf>,
    added: HashSet<PathBuf>,
    directories: Vec<EntryMeta>,
    stats: UnpackStats,
}

impl Unpacker<'_> {
    fn refuse(&self, meta: &EntryMeta, problem: EntryProblem) -> Error {
        Error::HostileEntry {
            layer: self.layer.clone(),
            entry: meta.display_path(),
            problem,
        }
    }

    /// An error while reading the layer stream: a limit of ours, or a broken stream.
    fn stream_error(&self, meta: &EntryMeta, source: io::Error) -> Error {
        if source.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return crate::layout::io_to_error(source, "unpacking", &self.target);
        }
        self.io(meta)(source)
    }

    fn io(&self, meta: &EntryMeta) -> impl FnOnce(io::Error) -> Error {
        let (layer, entry, target) = (self.layer.clone(), meta.display_path(), self.target.clone());
        move |source| Error::UnpackIo {
            layer,
            entry,
            target,
            source,
        }
    }

    /// Walks `relative`'s parents, creating missing ones and refusing symlinks
    /// or non-directories. Returns the full path of `relative`.
    fn prepare_parents(
        &mut self,
        meta: &EntryMeta,
        relative: &Path,
        create: bool,
    ) -> Result<Option<PathBuf>> {
        let mut current = self.target.clone();
        let mut parents = relative.components().peekable();
        while let Some(component) = parents.next() {
            if parents.peek().is_none() {
                current.push(component);
                return Ok(Some(current));
            }
            current.push(component);
            if self.verified_dirs.contains(&current) {
                continue;
            }
            let shown = || {
                current
                    .strip_prefix(&self.target)
                    .unwrap_or(&current)
                    .to_string_lossy()
                    .into_owned()
            };
            match fs::symlink_metadata(&current) {
                Ok(found) if found.file_type().is_symlink() => {
                    return Err(self.refuse(meta, EntryProblem::SymlinkParent { parent: shown() }));
                }
                Ok(found) if found.is_dir() => {}
                Ok(_) => {
                    return Err(
                        self.refuse(meta, EntryProblem::ParentNotDirectory { parent: shown() })
                    );
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&current)
                        .map_err(self.io(meta))?;
                }
                Err(error) => return Err(self.io(meta)(error)),
            }
            self.verified_dirs.insert(current.clone());
        }
        Ok(None)
    }

    fn remove_existing(&mut self, meta: &EntryMeta, full: &Path) -> Result<()> {
        match fs::symlink_metadata(full) {
            Ok(found) if found.is_dir() => {
                fs::remove_dir_all(full).map_err(self.io(meta))?;
                self.verified_dirs.retain(|dir| !dir.starts_with(full));
            }
            Ok(_) => fs::remove_file(full).map_err(self.io(meta))?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(self.io(meta)(error)),
        }
        Ok(())
    }

    fn entry(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<()> {
        match &meta.kind {
            EntryKind::Whiteout => return self.whiteout(meta),
            EntryKind::OpaqueWhiteout => return self.opaque(meta),
            _ => {}
        }
        if meta.kind.is_device() && !self.options.allow_devices {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        let Some(full) = self.prepare_parents(meta, &meta.path, true)? else {
            return Ok(());
        };
        let existing = fs::symlink_metadata(&full).ok();
        let keep_directory = meta.kind == EntryKind::Directory
            && existing.as_ref().is_some_and(|found| found.is_dir());
        if existing.is_some() && !keep_directory {
            self.remove_existing(meta, &full)?;
        }
        match &meta.kind {
            EntryKind::File => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&full)
                    .map_err(self.io(meta))?;
                let copied = io::copy(&mut data.take(meta.size), &mut file)
                    .map_err(|source| self.stream_error(meta, source))?;
                if copied != meta.size {
                    return Err(self.io(meta)(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "entry content ended early",
                    )));
                }
                self.set_owner_and_mode(meta, &full, Some(&file))?;
            }
            EntryKind::Directory => {
                if !keep_directory {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&full)
                        .map_err(self.io(meta))?;
                }
                self.verified_dirs.insert(full.clone());
                // Modes are applied once the layer is done, so a read-only directory can still be filled.
                self.directories.push(meta.clone());
            }
            EntryKind::Symlink(link_target) => {
                std::os::unix::fs::symlink(link_target, &full).map_err(self.io(meta))?;
                self.set_owner_and_mode(meta, &full, None)?;
            }
            EntryKind::HardLink(link_target) => {
                let escape = || EntryProblem::HardLinkEscape {
                    target: link_target.to_string_lossy().into_owned(),
                };
                let source = self
                    .prepare_parents(meta, link_target, false)?
                    .ok_or_else(|| self.refuse(meta, escape()))?;
                match fs::symlink_metadata(&source) {
                    Ok(found) if found.is_dir() => {
                        return Err(self.refuse(
                            meta,
                            EntryProblem::HardLinkToDirectory {
                                target: link_target.to_string_lossy().into_owned(),
                            },
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => return Err(self.refuse(meta, escape())),
                }
                fs::hard_link(&source, &full).map_err(self.io(meta))?;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let file_type = if matches!(meta.kind, EntryKind::CharDevice { .. }) {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                rustix::fs::mknodat(
                    CWD,
                    &full,
                    file_type,
                    Mode::from_raw_mode(meta.mode),
                    rustix::fs::makedev(*major, *minor),
                )
                .map_err(|errno| self.io(meta)(errno.into()))?;
                self.set_owner_and_mode(meta, &full, None)?;
            }
            EntryKind::Fifo => {
                rustix::fs::mknodat(
                    CWD,
                    &full,
                    FileType::Fifo,
                    Mode::from_raw_mode(meta.mode),
                    0,
                )
                .map_err(|errno| self.io(meta)(errno.into()))?;
                self.set_owner_and_mode(meta, &full, None)?;
            }
            EntryKind::Whiteout | EntryKind::OpaqueWhiteout => unreachable!("handled above"),
        }
        self.added.insert(meta.path.clone());
        self.stats.entries += 1;
        Ok(())
    }

    fn whiteout(&mut self, meta: &EntryMeta) -> Result<()> {
        if self.options.whiteouts == WhiteoutMode::Overlay {
            return self.overlay_whiteout(meta);
        }
        if let Some(full) = self.prepare_parents(meta, &meta.path, false)?
            && !self.added.contains(&meta.path)
        {
            self.remove_existing(meta, &full)?;
        }
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// A whiteout as overlayfs stores it; an entry of the same layer wins.
    fn overlay_whiteout(&mut self, meta: &EntryMeta) -> Result<()> {
        self.stats.whiteouts += 1;
        if self.added.contains(&meta.path) {
            return Ok(());
        }
        let Some(full) = self.prepare_parents(meta, &meta.path, true)? else {
            return Ok(());
        };
        self.remove_existing(meta, &full)?;
        rustix::fs::mknodat(
            CWD,
            &full,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|errno| self.io(meta)(errno.into()))?;
        self.added.insert(meta.path.clone());
        Ok(())
    }

    fn opaque(&mut self, meta: &EntryMeta) -> Result<()> {
        self.stats.whiteouts += 1;
        let Some(full) = self
            .prepare_parents(meta, &meta.path.join("x"), true)?
            .and_then(|p| p.parent().map(Path::to_path_buf))
        else {
            return Ok(());
        };
        if self.options.whiteouts == WhiteoutMode::Overlay {
            return rustix::fs::lsetxattr(
                &full,
                "trusted.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|errno| self.io(meta)(errno.into()));
        }
        let Ok(children) = fs::read_dir(&full) else {
            return Ok(());
        };
        for child in children {
            let child = child.map_err(self.io(meta))?;
            let relative = meta.path.join(child.file_name());
            if !self.added.contains(&relative) {
                self.remove_existing(meta, &child.path())?;
            }
        }
        Ok(())
    }

    fn set_owner_and_mode(
        &self,
        meta: &EntryMeta,
        full: &Path,
        file: Option<&fs::File>,
    ) -> Result<()> {
        let is_symlink = matches!(meta.kind, EntryKind::Symlink(_));
        if self.options.preserve_owners {
            let (uid, gid) = (
                Uid::from_raw(u32::try_from(meta.uid).unwrap_or(u32::MAX)),
                Gid::from_raw(u32::try_from(meta.gid).unwrap_or(u32::MAX)),
            );
            match file {
                Some(file) => rustix::fs::fchown(file, Some(uid), Some(gid)),
                None => {
                    rustix::fs::chownat(CWD, full, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                }
            }
            .map_err(|errno| self.io(meta)(errno.into()))?;
        }
        if !is_symlink {
            // After chown, which clears setuid and setgid bits.
            match file {
                Some(file) => file.set_permissions(fs::Permissions::from_mode(meta.mode)),
                None => fs::set_permissions(full, fs::Permissions::from_mode(meta.mode)),
            }
            .map_err(self.io(meta))?;
        }
        if self.options.xattrs {
            for (name, value) in &meta.xattrs {
                rustix::fs::lsetxattr(full, name.as_str(), value, rustix::fs::XattrFlags::empty())
                    .map_err(|errno| self.io(meta)(errno.into()))?;
            }
        }
        let time = Timespec {
            tv_sec: meta.mtime,
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: time,
            last_modification: time,
        };
        rustix::fs::utimensat(CWD, full, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| self.io(meta)(errno.into()))?;
        Ok(())
    }

    fn finish_directories(&mut self) -> Result<()> {
        let mut directories = std::mem::take(&mut self.directories);
        // Deepest first, so setting a parent's mtime is not undone by its children.
        directories.sort_by(|a, b| {
            b.path
                .as_os_str()
                .as_bytes()
                .cmp(a.path.as_os_str().as_bytes())
        });
        for meta in &directories {
            // Re-check the parents: a later entry may have replaced one with a symlink.
            let Some(full) = self.prepare_parents(meta, &meta.path, false)? else {
                continue;
            };
            if fs::symlink_metadata(&full).is_ok_and(|found| found.is_dir()) {
                self.set_owner_and_mode(meta, &full, None)?;
            }
        }
        Ok(())
    }
}
