//! File modes printed as Go's `os.FileMode.String()` does, which is what
//! container-structure-test's `permissions` compares: type and special
//! letters first (`d`, `L`, `D`, `p`, `u`, `g`, `c`, `t`; `-` when none),
//! then nine `rwx` characters with no `s` or `t` in them.

use sealcraft_oci::layer::EntryKind;

/// The Go mode string of an entry of `kind` with permission bits `mode`.
pub(crate) fn go_mode_string(kind: &EntryKind, mode: u32) -> String {
    let mut out = String::new();
    match kind {
        EntryKind::Directory => out.push('d'),
        EntryKind::Symlink(_) => out.push('L'),
        EntryKind::BlockDevice { .. } | EntryKind::CharDevice { .. } => out.push('D'),
        EntryKind::Fifo => out.push('p'),
        _ => {}
    }
    if mode & 0o4000 != 0 {
        out.push('u');
    }
    if mode & 0o2000 != 0 {
        out.push('g');
    }
    if let EntryKind::CharDevice { .. } = kind {
        out.push('c');
    }
    if mode & 0o1000 != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (index, letter) in "rwxrwxrwx".chars().enumerate() {
        out.push(if mode & (1 << (8 - index)) != 0 {
            letter
        } else {
            '-'
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn prints_what_go_prints() {
        assert_eq!(go_mode_string(&EntryKind::File, 0o644), "-rw-r--r--");
        assert_eq!(go_mode_string(&EntryKind::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(go_mode_string(&EntryKind::Directory, 0o1777), "dtrwxrwxrwx");
        assert_eq!(go_mode_string(&EntryKind::File, 0o4755), "urwxr-xr-x");
        assert_eq!(go_mode_string(&EntryKind::File, 0o6755), "ugrwxr-xr-x");
        assert_eq!(
            go_mode_string(&EntryKind::Symlink(PathBuf::from("x")), 0o777),
            "Lrwxrwxrwx"
        );
        assert_eq!(
            go_mode_string(&EntryKind::CharDevice { major: 1, minor: 3 }, 0o666),
            "Dcrw-rw-rw-"
        );
    }
}
