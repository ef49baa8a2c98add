//! Paths resolved inside a root directory, the way a container sees them.
//!
//! A build context, a stage's mounted filesystem and a COPY destination are
//! directories on the host whose symlinks mean something *inside* them:
//! `/lib -> usr/lib` in an image must lead to the image's `usr/lib`, never
//! the host's. [`Root`] resolves every path with `openat2` and
//! `RESOLVE_IN_ROOT` (absolute targets and `..` stop at the root), then
//! hands back the real host path below the root. Nothing else changes the
//! tree while a build step works on it, so host-path operations on the
//! result (with the last component never followed) stay inside.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// A directory treated as `/`.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// Metadata for directories a resolution creates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewDir {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Default for NewDir {
    fn default() -> Self {
        Self {
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// `path` without its leading `/`, `.` components and trailing slash.
pub(crate) fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|component| !matches!(component, Component::RootDir | Component::CurDir))
        .collect()
}

impl Root {
    /// Opens `path` as a root.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let path = fs::canonicalize(path)?;
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { fd, path })
    }

    /// The root's host path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of `inner` (an image path), every symlink followed
    /// inside the root, the last one too when `follow_last`. `None` when it
    /// does not exist.
    pub(crate) fn resolve(&self, inner: &Path, follow_last: bool) -> io::Result<Option<PathBuf>> {
        let relative = relative(inner);
        if relative.as_os_str().is_empty() {
            return Ok(Some(self.path.clone()));
        }
        if !follow_last {
            let Some(name) = relative.file_name() else {
                return Ok(Some(self.path.clone()));
            };
            let parent = relative.parent().unwrap_or(Path::new(""));
            return Ok(self
                .resolve(parent, true)?
                .filter(|parent| parent.is_dir())
                .map(|parent| parent.join(name))
                .filter(|path| path.symlink_metadata().is_ok()));
        }
        let opened = rustix::fs::openat2(
            self.fd.as_fd(),
            &relative,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        );
        match opened {
            Ok(fd) => self.host_path_of(&fd).map(Some),
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(None),
            // A symlink loop is as good as missing.
            Err(rustix::io::Errno::LOOP) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    fn host_path_of(&self, fd: &OwnedFd) -> io::Result<PathBuf> {
        use std::os::fd::AsRawFd;
        let path = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        if !path.starts_with(&self.path) {
            return Err(io::Error::other(format!(
                "{} resolved outside its root {}",
                path.display(),
                self.path.display()
            )));
        }
        Ok(path)
    }

    /// The image path of a host path below the root.
    pub(crate) fn inner_path(&self, host: &Path) -> PathBuf {
        Path::new("/").join(host.strip_prefix(&self.path).unwrap_or(host))
    }

    /// Makes sure the directory `inner` exists, creating missing components
    /// with `new`'s metadata; returns its host path. Existing symlinks on
    /// the way are followed inside the root.
    pub(crate) fn create_dir_all(&self, inner: &Path, new: NewDir) -> io::Result<PathBuf> {
        let relative = relative(inner);
        let mut current = PathBuf::new();
        let mut host = self.path.clone();
        for component in relative.components() {
            current.push(component);
            match self.resolve(&current, true)? {
                Some(found) if found.is_dir() => host = found,
                Some(found) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!(
                            "{} exists in the image and is not a directory",
                            self.inner_path(&found).display()
                        ),
                    ));
                }
                None => {
                    let created = host.join(component);
                    if created.symlink_metadata().is_ok() {
                        // A dangling symlink: refuse rather than write through it.
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!(
                                "{} is a symbolic link to nothing",
                                self.inner_path(&created).display()
                            ),
                        ));
                    }
                    fs::DirBuilder::new().mode(new.mode).create(&created)?;
                    fs::set_permissions(&created, fs::Permissions::from_mode(new.mode))?;
                    std::os::unix::fs::lchown(&created, Some(new.uid), Some(new.gid))?;
                    host = created;
                }
            }
        }
        Ok(host)
    }

    /// Reads a file, following symlinks inside the root.
    pub(crate) fn read(&self, inner: &Path) -> io::Result<Option<Vec<u8>>> {
        match self.resolve(inner, true)? {
            Some(path) if path.is_file() => fs::read(path).map(Some),
            _ => Ok(None),
        }
    }
}

/// Sets a host path's access and modification times, never following a symlink.
pub(crate) fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let time = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: time,
            last_modification: time,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Removes whatever is at `path` (a host path, never followed).
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match path.symlink_metadata() {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::write(root.join("usr/lib/libx.so"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("up")).unwrap();
        let root = Root::open(root).unwrap();
        let canonical = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            root.resolve(Path::new("/lib/libx.so"), true).unwrap(),
            Some(canonical.join("usr/lib/libx.so"))
        );
        // An absolute target restarts at the root: the host's /etc/passwd is not reached.
        assert_eq!(root.resolve(Path::new("/escape"), true).unwrap(), None);
        assert_eq!(root.resolve(Path::new("/up/passwd"), true).unwrap(), None);
        assert_eq!(
            root.resolve(Path::new("/escape"), false).unwrap(),
            Some(canonical.join("escape"))
        );
        let made = root
            .create_dir_all(Path::new("/lib/app/plugins"), NewDir::default())
            .unwrap();
        assert_eq!(made, canonical.join("usr/lib/app/plugins"));
        assert!(
            root.create_dir_all(Path::new("/lib/libx.so/sub"), NewDir::default())
                .is_err()
        );
        assert!(
            root.create_dir_all(Path::new("/escape/x"), NewDir::default())
                .is_err()
        );
        assert!(!Path::new("/etc/passwd/x").exists());
    }
}
