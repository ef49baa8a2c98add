//! Kernel overlayfs mounts of layer directories.
//!
//! A stage's filesystem is a stack of layer directories in overlay format
//! (whiteouts as 0/0 character devices, opaque directories marked with
//! `trusted.overlay.opaque`), so a step mounts them as lower layers with a
//! fresh upper directory, and whatever the step changes lands in that upper
//! directory, ready to become the step's layer.
//!
//! Mounts are made with the new mount API, which takes one lower layer per
//! call (no length limit on the option string); kernels without `lowerdir+`
//! get the classic option string. `redirect_dir`, `index` and `metacopy` are
//! turned off so the upper directory is a plain OCI-convertible diff:
//! renamed directories come out as a whiteout plus a full copy, and a
//! chmod copies the whole file up.

use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;

use crate::{Error, Result};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount,
};

/// A mounted overlay; unmounted when dropped.
#[derive(Debug)]
pub struct OverlayMount {
    target: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    /// Mounts `lowers` (topmost first) at `target`; with `upper` (upper and
    /// work directories on one filesystem) the mount is writable, otherwise
    /// read-only.
    pub fn mount(
        lowers: &[PathBuf],
        upper: Option<(&Path, &Path)>,
        target: &Path,
        empty_dir: &Path,
    ) -> Result<Self> {
        let mut lowers: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        // Overlayfs needs a lower layer, and two when there is no upper one.
        if lowers.is_empty() || (upper.is_none() && lowers.len() < 2) {
            lowers.push(empty_dir);
        }
        match mount_with_fsconfig(&lowers, upper, target) {
            Ok(()) => {}
            Err(error)
                if error.raw_os_error() == Some(rustix::io::Errno::NOSYS.raw_os_error())
                    || error.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                mount_with_options(&lowers, upper, target).map_err(|source| Error::Mount {
                    target: target.to_path_buf(),
                    source,
                })?;
            }
            Err(source) => {
                return Err(Error::Mount {
                    target: target.to_path_buf(),
                    source,
                });
            }
        }
        Ok(Self {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting failure (dropping unmounts lazily instead).
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        rustix::mount::unmount(&self.target, UnmountFlags::empty()).map_err(|errno| {
            Error::Unmount {
                target: self.target.clone(),
                source: errno.into(),
            }
        })
    }

    /// Mounts with the classic option string, as kernels without the new
    /// mount API's `lowerdir+` get it (tests use it to cover that path).
    pub fn mount_classic(lowers: &[PathBuf], upper: (&Path, &Path), target: &Path) -> Result<Self> {
        let lowers: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        mount_with_options(&lowers, Some(upper), target).map_err(|source| Error::Mount {
            target: target.to_path_buf(),
            source,
        })?;
        Ok(Self {
            target: target.to_path_buf(),
            mounted: true,
        })
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            // Detach: nothing may still hold it open, but a failed step must not leave it behind.
            let _ = rustix::mount::unmount(&self.target, UnmountFlags::DETACH);
        }
    }
}

const OPTIONS: [(&str, &str); 3] = [
    ("redirect_dir", "off"),
    ("index", "off"),
    ("metacopy", "off"),
];

fn mount_with_fsconfig(
    lowers: &[&Path],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> io::Result<()> {
    let context = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for lower in lowers {
        fsconfig_set_string(&context, "lowerdir+", *lower)?;
    }
    if let Some((upper, work)) = upper {
        fsconfig_set_string(&context, "upperdir", upper)?;
        fsconfig_set_string(&context, "workdir", work)?;
    }
    for (key, value) in OPTIONS {
        fsconfig_set_string(&context, key, value)?;
    }
    fsconfig_create(&context)?;
    let attributes = if upper.is_none() {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mount = fsmount(&context, FsMountFlags::FSMOUNT_CLOEXEC, attributes)?;
    move_mount(
        &mount,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// Escapes the characters overlayfs's option parser treats specially.
fn escape_option_path(path: &Path) -> String {
    let mut escaped = String::new();
    for ch in path.to_string_lossy().chars() {
        if matches!(ch, ':' | ',' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

fn mount_with_options(
    lowers: &[&Path],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> io::Result<()> {
    let mut options = format!(
        "lowerdir={}",
        lowers
            .iter()
            .map(|lower| escape_option_path(lower))
            .collect::<Vec<_>>()
            .join(":")
    );
    if let Some((upper, work)) = upper {
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            escape_option_path(upper),
            escape_option_path(work)
        ));
    }
    for (key, value) in OPTIONS {
        options.push_str(&format!(",{key}={value}"));
    }
    let flags = if upper.is_none() {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    let options = std::ffi::CString::new(options).map_err(io::Error::other)?;
    rustix::mount::mount("overlay", target, "overlay", flags, options.as_c_str())?;
    Ok(())
}

/// Lazily unmounts every mount below `root` left by a build that was killed.
pub fn sweep_stale_mounts(root: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let mut targets: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|target| target.starts_with(root) && target != root)
        .collect();
    // Deepest first, so nested mounts go before their parents.
    targets.sort_by_key(|target| std::cmp::Reverse(target.components().count()));
    let mut count = 0;
    for target in targets {
        if rustix::mount::unmount(&target, UnmountFlags::DETACH).is_ok() {
            count += 1;
        }
    }
    count
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && index + 3 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[index + 1..index + 4]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                index += 4;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(
            unescape_mountinfo("/tmp/a\\040b\\134c"),
            PathBuf::from("/tmp/a b\\c")
        );
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
        assert_eq!(
            escape_option_path(Path::new("/a:b,c")),
            "/a\\:b\\,c".to_owned()
        );
    }
}
