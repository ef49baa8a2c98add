//! Which files the binary catalogers open, and how they read them.

use std::path::Path;

use crate::{FileSource, Limits, SourceFile};

/// The files worth opening as ELF executables: an execute bit set, room
/// for the headers, and within the size limit.
pub(crate) fn executables<'a>(
    files: &'a [SourceFile],
    limits: &Limits,
) -> impl Iterator<Item = &'a SourceFile> {
    let largest = limits.max_binary_bytes;
    files
        .iter()
        .filter(move |file| file.mode & 0o111 != 0 && file.size >= 64 && file.size <= largest)
}

/// Positioned reads of `path` in `source` for the ELF reader: only complete ones count.
pub(crate) fn exact_reads<'a>(
    source: &'a dyn FileSource,
    path: &'a Path,
) -> impl Fn(u64, u64) -> Option<Vec<u8>> + 'a {
    move |offset, length| {
        source
            .read_at(path, offset, length)
            .ok()
            .filter(|bytes| bytes.len() as u64 == length)
    }
}
