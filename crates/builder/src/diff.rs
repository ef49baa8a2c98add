//! An overlay upper directory to an OCI layer.
//!
//! What a step changed is exactly what overlayfs put in the upper
//! directory. Converting it: a 0/0 character device is a whiteout (the
//! kernel hard-links all whiteouts to one inode, so they are never treated
//! as hard links), a directory with `trusted.overlay.opaque=y` is followed
//! by an opaque marker, `trusted.overlay.*` attributes (origin, impure) are
//! dropped, and files that share an inode inside the diff stay hard links.
//! Entries are written in path order with mtimes clamped to
//! SOURCE_DATE_EPOCH, and the directory itself is given the same clamped
//! times, so that reusing it as a lower layer later is the same as
//! unpacking the blob.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sealcraft_oci::image::{LayerOptions, WrittenLayer, write_layer};
use sealcraft_oci::layer::{EntryKind, EntryMeta};
use sealcraft_oci::layout::Layout;

/// The overlay attribute that marks an opaque directory.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// One path of the upper directory, classified.
struct DiffEntry {
    meta: EntryMeta,
    host: PathBuf,
    opaque: bool,
}

/// Lists `upper` in path order (parents before children).
fn walk(upper: &Path) -> io::Result<Vec<DiffEntry>> {
    let mut entries = Vec::new();
    let mut first_of_inode: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk_dir(upper, Path::new(""), &mut entries, &mut first_of_inode)?;
    Ok(entries)
}

fn walk_dir(
    dir: &Path,
    relative: &Path,
    entries: &mut Vec<DiffEntry>,
    first_of_inode: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<io::Result<_>>()?;
    children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in children {
        let host = dir.join(&name);
        let path = relative.join(&name);
        let metadata = host.symlink_metadata()?;
        let file_type = metadata.file_type();
        let mut meta = EntryMeta {
            uid: u64::from(metadata.uid()),
            gid: u64::from(metadata.gid()),
            mtime: metadata.mtime(),
            xattrs: BTreeMap::new(),
            ..EntryMeta::new(path.clone(), EntryKind::File, metadata.mode() & 0o7777)
        };
        let mut opaque = false;
        if file_type.is_char_device() && metadata.rdev() == 0 {
            meta = EntryMeta::new(path.clone(), EntryKind::Whiteout, 0);
        } else {
            let xattrs = read_xattrs(&host)?;
            opaque = xattrs
                .get(OPAQUE_XATTR)
                .is_some_and(|value| value.as_slice() == b"y");
            meta.xattrs = xattrs
                .into_iter()
                .filter(|(name, _)| !name.starts_with(OVERLAY_XATTR_PREFIX))
                .collect();
            if file_type.is_dir() {
                meta.kind = EntryKind::Directory;
            } else if file_type.is_symlink() {
                meta.kind = EntryKind::Symlink(fs::read_link(&host)?);
            } else if file_type.is_file() {
                let key = (metadata.dev(), metadata.ino());
                match (metadata.nlink() > 1)
                    .then(|| first_of_inode.get(&key))
                    .flatten()
                {
                    Some(first) => meta.kind = EntryKind::HardLink(first.clone()),
                    None => {
                        if metadata.nlink() > 1 {
                            first_of_inode.insert(key, path.clone());
                        }
                        meta.size = metadata.len();
                    }
                }
            } else if file_type.is_char_device() || file_type.is_block_device() {
                let (major, minor) = (
                    rustix::fs::major(metadata.rdev()),
                    rustix::fs::minor(metadata.rdev()),
                );
                meta.kind = if file_type.is_char_device() {
                    EntryKind::CharDevice { major, minor }
                } else {
                    EntryKind::BlockDevice { major, minor }
                };
            } else if file_type.is_fifo() {
                meta.kind = EntryKind::Fifo;
            } else {
                // Sockets are not image content.
                continue;
            }
        }
        let is_dir = meta.kind == EntryKind::Directory;
        entries.push(DiffEntry { meta, host, opaque });
        if is_dir {
            walk_dir(&dir.join(&name), &path, entries, first_of_inode)?;
        }
    }
    Ok(())
}

fn read_xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut names = vec![0u8; 1024];
    let length = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(length) => break length,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(BTreeMap::new()),
            Err(errno) => return Err(errno.into()),
        }
    };
    let mut xattrs = BTreeMap::new();
    for name in names[..length].split(|&byte| byte == 0) {
        if name.is_empty() {
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let mut value = vec![0u8; 256];
        let size = loop {
            match rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]) {
                Ok(size) => break size,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(rustix::io::Errno::NODATA) => break usize::MAX,
                Err(errno) => return Err(errno.into()),
            }
        };
        if size != usize::MAX {
            value.truncate(size);
            xattrs.insert(name, value);
        }
    }
    Ok(xattrs)
}

/// What converting an upper directory produced.
pub(crate) struct Diff {
    /// The layer, or `None` when the step changed nothing.
    pub(crate) layer: Option<WrittenLayer>,
}

/// Writes `upper` as a layer into `layout` and normalises the directory
/// (clamped times, overlay bookkeeping attributes removed) so it can serve
/// as a lower layer that matches the blob.
pub(crate) fn commit_upper(
    layout: &Layout,
    upper: &Path,
    options: &LayerOptions,
) -> crate::Result<Diff> {
    let entries = walk(upper).map_err(crate::Error::store("reading", upper))?;
    if entries.is_empty() {
        return Ok(Diff { layer: None });
    }
    let layer = write_layer(layout, options, |writer| {
        let mut count = 0;
        for entry in &entries {
            match entry.meta.kind {
                EntryKind::File => {
                    let mut file = fs::File::open(&entry.host)?;
                    writer.append(&entry.meta, &mut file)?;
                }
                _ => writer.append(&entry.meta, &mut io::empty())?,
            }
            count += 1;
            if entry.opaque {
                writer.append(
                    &EntryMeta::new(entry.meta.path.clone(), EntryKind::OpaqueWhiteout, 0),
                    &mut io::empty(),
                )?;
                count += 1;
            }
        }
        Ok(count)
    })?;
    normalise(&entries, options.clamp_mtime).map_err(crate::Error::store("normalising", upper))?;
    Ok(Diff { layer: Some(layer) })
}

fn normalise(entries: &[DiffEntry], clamp: Option<i64>) -> io::Result<()> {
    // Children before parents, so a parent's time is set last.
    for entry in entries.iter().rev() {
        if entry.meta.kind == EntryKind::Whiteout {
            continue;
        }
        for name in ["trusted.overlay.origin", "trusted.overlay.impure"] {
            match rustix::fs::lremovexattr(&entry.host, name) {
                Ok(()) | Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
        if let Some(clamp) = clamp
            && entry.meta.mtime > clamp
        {
            crate::rootfs::set_mtime(&entry.host, clamp)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcraft_oci::layer::{Compression, LayerLimits, read_layer};
    use sealcraft_runtime::OverlayMount;
    use std::os::unix::fs::PermissionsExt;

    /// Every entry of a layer blob.
    fn entries(layout: &Layout, layer: &WrittenLayer) -> Vec<EntryMeta> {
        let mut found = Vec::new();
        read_layer(
            layout.open_blob(&layer.descriptor).unwrap(),
            "test",
            &LayerLimits::default(),
            |entry, _| {
                found.push(entry.meta.clone());
                Ok(())
            },
        )
        .unwrap();
        found
    }

    fn changes_through(mount_with_fsconfig: bool) {
        assert!(
            rustix::process::geteuid().is_root(),
            "overlay mounts need root (the test suite runs as root)"
        );
        let dir = tempfile::tempdir().unwrap();
        let [lower, upper, work, merged, empty] = ["lower", "upper", "work", "merged", "empty"]
            .map(|name| {
                let path = dir.path().join(name);
                fs::create_dir(&path).unwrap();
                path
            });
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/motd"), "welcome").unwrap();
        fs::write(lower.join("etc/issue"), "issue").unwrap();
        fs::create_dir_all(lower.join("var/log/apt")).unwrap();
        fs::write(lower.join("var/log/apt/old.log"), "old").unwrap();
        fs::create_dir_all(lower.join("doc/bash")).unwrap();
        fs::write(lower.join("doc/bash/README"), "bash").unwrap();
        let lowers = [lower.clone()];
        let mount = if mount_with_fsconfig {
            OverlayMount::mount(&lowers, Some((&upper, &work)), &merged, &empty).unwrap()
        } else {
            OverlayMount::mount_classic(&lowers, (&upper, &work), &merged).unwrap()
        };
        let root = mount.path();
        fs::remove_file(root.join("etc/motd")).unwrap();
        fs::set_permissions(root.join("etc/issue"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_dir_all(root.join("var/log/apt")).unwrap();
        fs::create_dir(root.join("var/log/apt")).unwrap();
        fs::write(root.join("var/log/apt/new.log"), "new").unwrap();
        // A lower directory cannot be renamed with redirect_dir off: the way `mv` copes.
        assert!(fs::rename(root.join("doc/bash"), root.join("doc/bash2")).is_err());
        fs::create_dir(root.join("doc/bash2")).unwrap();
        fs::copy(root.join("doc/bash/README"), root.join("doc/bash2/README")).unwrap();
        fs::remove_dir_all(root.join("doc/bash")).unwrap();
        fs::write(root.join("a"), "linked").unwrap();
        fs::hard_link(root.join("a"), root.join("b")).unwrap();
        rustix::fs::lsetxattr(
            root.join("a"),
            "user.kept",
            b"yes",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        mount.unmount().unwrap();

        let layout = Layout::open_or_create(dir.path().join("layout")).unwrap();
        let options = LayerOptions {
            clamp_mtime: Some(1_000),
            compression: Compression::None,
            keep_devices: true,
        };
        let layer = commit_upper(&layout, &upper, &options)
            .unwrap()
            .layer
            .expect("the step changed files");
        let listed = entries(&layout, &layer);
        let find = |path: &str| {
            listed
                .iter()
                .find(|entry| entry.display_path() == path)
                .unwrap_or_else(|| panic!("{path} not in {listed:?}"))
        };
        assert_eq!(find("etc/motd").kind, EntryKind::Whiteout);
        assert_eq!(find("doc/bash").kind, EntryKind::Whiteout);
        assert!(
            listed
                .iter()
                .any(|entry| entry.display_path() == "var/log/apt"
                    && entry.kind == EntryKind::OpaqueWhiteout),
            "the recreated directory hides the old one: {listed:?}"
        );
        assert_eq!(
            find("etc/issue").mode,
            0o600,
            "a chmod-only change copies the whole file up"
        );
        assert_eq!(find("b").kind, EntryKind::HardLink(PathBuf::from("a")));
        assert_eq!(
            find("a").xattrs.get("user.kept").map(Vec::as_slice),
            Some(&b"yes"[..])
        );
        for entry in &listed {
            assert!(
                entry
                    .xattrs
                    .keys()
                    .all(|name| !name.starts_with("trusted.overlay.")),
                "{entry:?}"
            );
            assert!(entry.mtime <= 1_000, "mtimes are clamped: {entry:?}");
        }
        assert_eq!(
            listed
                .iter()
                .filter(|entry| entry.kind == EntryKind::Whiteout)
                .count(),
            2
        );
        // The upper directory, kept as the layer's directory, now matches the blob's times.
        assert!(
            fs::symlink_metadata(upper.join("var/log/apt/new.log"))
                .unwrap()
                .mtime()
                <= 1_000
        );
        // Nothing changed: no layer.
        let untouched = dir.path().join("untouched");
        fs::create_dir(&untouched).unwrap();
        assert!(
            commit_upper(&layout, &untouched, &options)
                .unwrap()
                .layer
                .is_none()
        );
    }

    #[test]
    fn overlay_changes_become_oci_layer_entries() {
        changes_through(true);
    }

    #[test]
    fn the_classic_mount_options_give_the_same_diff() {
        changes_through(false);
    }
}
