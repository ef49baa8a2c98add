//! COPY and ADD: collecting sources, fingerprinting them for the cache, and
//! writing them into a stage's filesystem.
//!
//! Sources come from the context (with `.dockerignore` applied), from
//! another stage's or image's root, or from a heredoc. A named source path
//! follows symlinks inside its root; inside a copied directory symlinks stay
//! symlinks. The destination follows Docker's rules: a trailing `/`, several
//! sources, or an existing directory mean "into this directory"; a directory
//! source copies its contents. New files belong to 0:0 unless `--chown`
//! says otherwise, and keep their mode unless `--chmod` says otherwise.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::rootfs::{self, NewDir, Root, set_mtime};
use sealcraft_dockerfile::IgnoreRules;
use sealcraft_glob::Pattern;

/// Why a COPY or ADD cannot be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// A file of the sources or the destination failed.
    #[error("{}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A compressed archive ADD does not read.
    #[error(
        "{} is a bzip2 or xz archive, which ADD does not extract here; decompress it (or use a gzip or zstd tar)",
        path.display()
    )]
    UnsupportedArchive {
        /// The archive.
        path: PathBuf,
    },
    /// A source climbs out of the context.
    #[error("{pattern} is outside the build context: sources must stay inside it")]
    OutsideContext {
        /// The source as written.
        pattern: String,
    },
    /// A glob matches nothing.
    #[error("no source file matches {pattern}")]
    NoMatch {
        /// The glob.
        pattern: String,
    },
    /// A named source is absent from the context.
    #[error("{pattern}: not found in the build context (or excluded by .dockerignore)")]
    NotInContext {
        /// The source.
        pattern: String,
    },
    /// A named source is absent from a stage or image.
    #[error("{pattern}: not found")]
    NotFound {
        /// The source.
        pattern: String,
    },
    /// A source could not be resolved inside its root.
    #[error("{pattern}")]
    Resolve {
        /// The source.
        pattern: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A source is a socket, fifo or device.
    #[error("{} is not a file, directory or symbolic link", path.display())]
    NotCopyable {
        /// The source.
        path: PathBuf,
    },
    /// Walking a source directory failed.
    #[error("walking the sources")]
    Walk {
        /// The cause.
        #[source]
        source: walkdir::Error,
    },
    /// Several sources need a directory destination.
    #[error(
        "with several sources the destination must be a directory ending in '/' (got {destination:?})"
    )]
    SeveralSources {
        /// The destination.
        destination: String,
    },
    /// Writing an entry failed.
    #[error("writing {}", path.display())]
    Write {
        /// The image path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The sources could not be read to fingerprint them.
    #[error("reading the sources")]
    Fingerprint {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An archive could not be extracted.
    #[error("extracting {}", archive.display())]
    Extract {
        /// The archive.
        archive: PathBuf,
        /// The cause.
        #[source]
        source: Box<sealcraft_oci::Error>,
    },
    /// `--chmod` is invalid.
    #[error(transparent)]
    Chmod(#[from] ChmodError),
}

impl CopyError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { path, source }
    }
}

/// Why a `--chmod` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChmodError {
    /// Octal digits that are no mode.
    #[error("--chmod={text} is not a mode")]
    NotAMode {
        /// The value.
        text: String,
    },
    /// A clause without an operator.
    #[error("--chmod={text}: {clause:?} has no +, - or =")]
    NoOperator {
        /// The value.
        text: String,
        /// The clause.
        clause: String,
    },
    /// An unknown class letter.
    #[error("--chmod={text}: unknown class {class:?}")]
    UnknownClass {
        /// The value.
        text: String,
        /// The letter.
        class: char,
    },
    /// An unknown permission letter.
    #[error("--chmod={text}: unknown permission {permission:?}")]
    UnknownPermission {
        /// The value.
        text: String,
        /// The letter.
        permission: char,
    },
}

/// What one entry of a source tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Symlink(PathBuf),
    /// A heredoc's content.
    Inline(Vec<u8>),
    /// A local tar archive ADD extracts.
    Archive,
}

/// One entry, relative to the top of its source.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Empty for the source itself.
    pub(crate) relative: PathBuf,
    pub(crate) host: Option<PathBuf>,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) mtime: i64,
    pub(crate) size: u64,
}

/// One named source and everything below it.
#[derive(Debug, Clone)]
pub(crate) struct SourceTree {
    /// Its name, used when it is copied into a directory.
    pub(crate) name: OsString,
    /// The source's own entry first, then its contents in path order.
    pub(crate) entries: Vec<Entry>,
}

impl SourceTree {
    fn is_dir(&self) -> bool {
        self.entries
            .first()
            .is_some_and(|entry| entry.kind == EntryKind::Dir)
    }
}

/// A heredoc source.
pub(crate) fn inline(name: &str, content: &[u8], mtime: i64) -> SourceTree {
    SourceTree {
        name: OsString::from(name),
        entries: vec![Entry {
            relative: PathBuf::new(),
            host: None,
            kind: EntryKind::Inline(content.to_vec()),
            mode: 0o644,
            mtime,
            size: content.len() as u64,
        }],
    }
}

/// Local archives ADD extracts: tar, gzip and zstd tars. `Err` names formats it cannot read.
fn archive_kind(path: &Path) -> Result<bool, CopyError> {
    let mut header = [0u8; 512];
    let mut file = fs::File::open(path).map_err(CopyError::io(path))?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(count) => read += count,
            Err(error) => return Err(CopyError::io(path)(error)),
        }
    }
    let header = &header[..read];
    if header.starts_with(&[0x1f, 0x8b]) || header.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(true);
    }
    if header.len() >= 262 && &header[257..262] == b"ustar" {
        return Ok(true);
    }
    if header.starts_with(b"BZh") || header.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(CopyError::UnsupportedArchive {
            path: path.to_path_buf(),
        });
    }
    Ok(false)
}

/// Collects the sources `patterns` name in `root`; `ignore` applies to the context only.
pub(crate) fn collect(
    root: &Root,
    patterns: &[String],
    ignore: Option<&IgnoreRules>,
    extract_archives: bool,
) -> Result<Vec<SourceTree>, CopyError> {
    let mut trees = Vec::new();
    for pattern in patterns {
        let cleaned = sealcraft_glob::clean(pattern).ok_or_else(|| CopyError::OutsideContext {
            pattern: pattern.clone(),
        })?;
        // Each match is (the name it was found by, its resolved host path).
        let matches: Vec<(OsString, PathBuf)> = if sealcraft_glob::has_glob(&cleaned) {
            let glob = Pattern::new(&cleaned).unwrap_or_else(|| unreachable!("cleaned above"));
            let mut found = Vec::new();
            glob_walk(root, root.path(), "", &glob, &cleaned, ignore, &mut found)?;
            if found.is_empty() {
                return Err(CopyError::NoMatch {
                    pattern: pattern.clone(),
                });
            }
            found
        } else {
            let host = root
                .resolve(Path::new(&cleaned), true)
                .map_err(|source| CopyError::Resolve {
                    pattern: pattern.clone(),
                    source,
                })?
                .ok_or_else(|| not_found(pattern, ignore.is_some()))?;
            if let Some(rules) = ignore
                && !cleaned.is_empty()
                && rules.excludes(&context_relative(root, &host))
            {
                return Err(not_found(pattern, true));
            }
            let name = Path::new(&cleaned)
                .file_name()
                .map(OsString::from)
                .unwrap_or_default();
            vec![(name, host)]
        };
        for (name, host) in matches {
            trees.push(tree(root, name, &host, ignore, extract_archives)?);
        }
    }
    Ok(trees)
}

fn not_found(pattern: &str, context: bool) -> CopyError {
    let pattern = pattern.to_owned();
    if context {
        CopyError::NotInContext { pattern }
    } else {
        CopyError::NotFound { pattern }
    }
}

fn context_relative(root: &Root, host: &Path) -> String {
    host.strip_prefix(root.path())
        .unwrap_or(host)
        .to_string_lossy()
        .into_owned()
}

/// Walks `dir` matching `glob` one segment per level.
fn glob_walk(
    root: &Root,
    dir: &Path,
    prefix: &str,
    glob: &Pattern,
    text: &str,
    ignore: Option<&IgnoreRules>,
    found: &mut Vec<(OsString, PathBuf)>,
) -> Result<(), CopyError> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(CopyError::io(dir))?
        .filter_map(std::result::Result::ok)
        .map(|entry| entry.file_name())
        .collect();
    children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let depth_limit = if text.contains("**") {
        usize::MAX
    } else {
        text.split('/').count()
    };
    for name in children {
        let relative = if prefix.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{prefix}/{}", name.to_string_lossy())
        };
        if ignore.is_some_and(|rules| rules.excludes(&relative)) {
            continue;
        }
        let host = dir.join(&name);
        if glob.matches(&relative) {
            // A matched symlink is followed, like a named source.
            let resolved = root
                .resolve(Path::new(&relative), true)
                .map_err(|source| CopyError::Resolve {
                    pattern: relative.clone(),
                    source,
                })?
                .unwrap_or(host.clone());
            found.push((name.clone(), resolved));
        }
        let depth = relative.split('/').count();
        if depth < depth_limit && host.symlink_metadata().is_ok_and(|meta| meta.is_dir()) {
            glob_walk(root, &host, &relative, glob, text, ignore, found)?;
        }
    }
    Ok(())
}

fn entry_of(host: &Path, relative: PathBuf, follow: bool) -> Result<Entry, CopyError> {
    let metadata = if follow {
        fs::metadata(host)
    } else {
        fs::symlink_metadata(host)
    }
    .map_err(CopyError::io(host))?;
    let file_type = metadata.file_type();
    let kind = if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_symlink() {
        EntryKind::Symlink(fs::read_link(host).map_err(CopyError::io(host))?)
    } else if file_type.is_file() {
        EntryKind::File
    } else {
        return Err(CopyError::NotCopyable {
            path: host.to_path_buf(),
        });
    };
    Ok(Entry {
        relative,
        host: Some(host.to_path_buf()),
        size: if kind == EntryKind::File {
            metadata.len()
        } else {
            0
        },
        kind,
        mode: metadata.mode() & 0o7777,
        mtime: metadata.mtime(),
    })
}

fn tree(
    root: &Root,
    name: OsString,
    host: &Path,
    ignore: Option<&IgnoreRules>,
    extract_archives: bool,
) -> Result<SourceTree, CopyError> {
    let mut top = entry_of(host, PathBuf::new(), true)?;
    if extract_archives && top.kind == EntryKind::File && archive_kind(host)? {
        top.kind = EntryKind::Archive;
    }
    let mut entries = vec![top];
    if entries[0].kind == EntryKind::Dir {
        let walker = walkdir::WalkDir::new(host)
            .follow_links(false)
            .min_depth(1)
            .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
        let mut walker = walker.into_iter();
        while let Some(item) = walker.next() {
            let item = item.map_err(|source| CopyError::Walk { source })?;
            let relative = item
                .path()
                .strip_prefix(host)
                .unwrap_or(item.path())
                .to_path_buf();
            if let Some(rules) = ignore
                && rules.excludes(&context_relative(root, item.path()))
            {
                if item.file_type().is_dir() && !rules.has_exceptions() {
                    walker.skip_current_dir();
                }
                continue;
            }
            let file_type = item.file_type();
            // Sockets, fifos and devices in a source tree are not files to ship.
            if file_type.is_dir() || file_type.is_file() || file_type.is_symlink() {
                entries.push(entry_of(item.path(), relative, false)?);
            }
        }
    }
    Ok(SourceTree { name, entries })
}

/// Feeds everything that decides a copy's result into `hasher`.
pub(crate) fn fingerprint(trees: &[SourceTree], clamp: i64, hasher: &mut Sha256) -> io::Result<()> {
    for tree in trees {
        hasher.update(b"source\0");
        hasher.update(tree.name.as_bytes());
        for entry in &tree.entries {
            hasher.update(b"\0entry\0");
            hasher.update(entry.relative.as_os_str().as_bytes());
            hasher.update(format!(
                "\0{:o}\0{}\0{}\0",
                entry.mode,
                entry.mtime.min(clamp),
                entry.size
            ));
            match &entry.kind {
                EntryKind::Dir => hasher.update(b"dir"),
                EntryKind::Symlink(target) => {
                    hasher.update(b"symlink\0");
                    hasher.update(target.as_os_str().as_bytes());
                }
                EntryKind::Inline(content) => {
                    hasher.update(b"inline\0");
                    hasher.update(content);
                }
                EntryKind::File | EntryKind::Archive => {
                    hasher.update(if entry.kind == EntryKind::File {
                        b"file\0" as &[u8]
                    } else {
                        b"archive\0"
                    });
                    let path = entry.host.as_deref().unwrap_or(Path::new(""));
                    let mut file = fs::File::open(path)?;
                    let mut content = Sha256::new();
                    io::copy(&mut file, &mut content)?;
                    hasher.update(content.finalize());
                }
            }
        }
    }
    Ok(())
}

/// `--chmod`: an octal mode, or symbolic clauses like `u+x,go-w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chmod {
    Octal(u32),
    Symbolic(Vec<(u32, char, u32, bool)>),
}

impl Chmod {
    pub(crate) fn parse(text: &str) -> Result<Self, ChmodError> {
        let text_owned = || text.to_owned();
        if !text.is_empty() && text.chars().all(|ch| ch.is_digit(8)) {
            return u32::from_str_radix(text, 8)
                .ok()
                .filter(|mode| *mode <= 0o7777)
                .map(Self::Octal)
                .ok_or_else(|| ChmodError::NotAMode { text: text_owned() });
        }
        let mut clauses = Vec::new();
        for clause in text.split(',') {
            let operator_at =
                clause
                    .find(['+', '-', '='])
                    .ok_or_else(|| ChmodError::NoOperator {
                        text: text_owned(),
                        clause: clause.to_owned(),
                    })?;
            let (who, rest) = clause.split_at(operator_at);
            let mut who_mask = 0;
            for ch in who.chars() {
                who_mask |= match ch {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => {
                        return Err(ChmodError::UnknownClass {
                            text: text_owned(),
                            class: ch,
                        });
                    }
                };
            }
            if who.is_empty() {
                who_mask = 0o7777;
            }
            let operator = rest.chars().next().unwrap_or('+');
            let mut bits = 0;
            let mut conditional_x = false;
            for ch in rest[1..].chars() {
                bits |= match ch {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' => {
                        conditional_x = true;
                        0
                    }
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => {
                        return Err(ChmodError::UnknownPermission {
                            text: text_owned(),
                            permission: ch,
                        });
                    }
                };
            }
            clauses.push((who_mask, operator, bits, conditional_x));
        }
        Ok(Self::Symbolic(clauses))
    }

    pub(crate) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Self::Octal(mode) => *mode,
            Self::Symbolic(clauses) => {
                let mut mode = mode & 0o7777;
                for &(who, operator, bits, conditional_x) in clauses {
                    let mut bits = bits;
                    if conditional_x && (is_dir || mode & 0o111 != 0) {
                        bits |= 0o111;
                    }
                    let bits = bits & who;
                    mode = match operator {
                        '+' => mode | bits,
                        '-' => mode & !bits,
                        _ => (mode & !who) | bits,
                    };
                }
                mode
            }
        }
    }
}

/// How new entries are owned and moded.
pub(crate) struct Ownership<'a> {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) chmod: Option<&'a Chmod>,
}

/// Writes `trees` at `destination` (an absolute image path) inside `root`.
pub(crate) fn apply(
    trees: &[SourceTree],
    root: &Root,
    destination: &str,
    ownership: &Ownership<'_>,
    extract: &dyn Fn(&Path, &Path) -> Result<(), CopyError>,
) -> Result<u64, CopyError> {
    let several = trees.len() > 1;
    let slash = destination.ends_with('/');
    if several && !slash {
        return Err(CopyError::SeveralSources {
            destination: destination.to_owned(),
        });
    }
    let destination = Path::new(destination);
    let destination_is_dir = root
        .resolve(destination, true)
        .map_err(CopyError::io(destination))?
        .is_some_and(|host| host.is_dir());
    let mut directories: Vec<(PathBuf, u32, i64)> = Vec::new();
    let mut written = 0;
    for tree in trees {
        let top = &tree.entries[0];
        let base = if tree.is_dir() || top.kind == EntryKind::Archive {
            destination.to_path_buf()
        } else if slash || several || destination_is_dir {
            destination.join(&tree.name)
        } else {
            destination.to_path_buf()
        };
        if top.kind == EntryKind::Archive {
            let host = root
                .create_dir_all(&base, NewDir::default())
                .map_err(CopyError::io(&base))?;
            extract(top.host.as_deref().unwrap_or(Path::new("")), &host)?;
            written += 1;
            continue;
        }
        for entry in &tree.entries {
            let inner = if entry.relative.as_os_str().is_empty() {
                base.clone()
            } else {
                base.join(&entry.relative)
            };
            write_entry(root, &inner, entry, ownership, &mut directories).map_err(|source| {
                CopyError::Write {
                    path: inner.clone(),
                    source,
                }
            })?;
            written += 1;
        }
    }
    // Directory times last, deepest first, so writing children does not move them.
    directories.sort_by_key(|(path, _, _)| std::cmp::Reverse(path.components().count()));
    for (path, _mode, mtime) in directories {
        set_mtime(&path, mtime).map_err(CopyError::io(&path))?;
    }
    Ok(written)
}

fn write_entry(
    root: &Root,
    inner: &Path,
    entry: &Entry,
    ownership: &Ownership<'_>,
    directories: &mut Vec<(PathBuf, u32, i64)>,
) -> io::Result<()> {
    let is_dir = entry.kind == EntryKind::Dir;
    let mode = ownership
        .chmod
        .map_or(entry.mode, |chmod| chmod.apply(entry.mode, is_dir));
    if is_dir {
        let host = root.create_dir_all(inner, NewDir::default())?;
        std::os::unix::fs::lchown(&host, Some(ownership.uid), Some(ownership.gid))?;
        fs::set_permissions(&host, fs::Permissions::from_mode(mode))?;
        directories.push((host, mode, entry.mtime));
        return Ok(());
    }
    let parent = inner.parent().unwrap_or(Path::new("/"));
    let name = inner
        .file_name()
        .ok_or_else(|| io::Error::other("the destination names no file"))?;
    let parent_host = root.create_dir_all(parent, NewDir::default())?;
    let host = parent_host.join(name);
    if host.symlink_metadata().is_ok_and(|meta| meta.is_dir()) {
        return Err(io::Error::other(format!(
            "{} is a directory in the image; a file cannot replace it",
            root.inner_path(&host).display()
        )));
    }
    rootfs::remove_any(&host)?;
    match &entry.kind {
        EntryKind::File => {
            let source = entry.host.as_deref().unwrap_or(Path::new(""));
            fs::copy(source, &host)?;
        }
        EntryKind::Inline(content) => fs::write(&host, content)?,
        EntryKind::Symlink(target) => {
            std::os::unix::fs::symlink(target, &host)?;
            std::os::unix::fs::lchown(&host, Some(ownership.uid), Some(ownership.gid))?;
            return set_mtime(&host, entry.mtime);
        }
        EntryKind::Dir | EntryKind::Archive => unreachable!("handled by the caller"),
    }
    std::os::unix::fs::lchown(&host, Some(ownership.uid), Some(ownership.gid))?;
    // After chown, which clears setuid and setgid.
    fs::set_permissions(&host, fs::Permissions::from_mode(mode))?;
    set_mtime(&host, entry.mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(Chmod::parse("0755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(Chmod::parse("u+x").unwrap().apply(0o644, false), 0o744);
        assert_eq!(Chmod::parse("go-w,a+r").unwrap().apply(0o666, false), 0o644);
        assert_eq!(Chmod::parse("a=rX").unwrap().apply(0o600, true), 0o555);
        assert_eq!(Chmod::parse("a=rX").unwrap().apply(0o600, false), 0o444);
        assert!(Chmod::parse("0999").is_err());
        assert!(Chmod::parse("z+x").is_err());
        assert!(Chmod::parse("u*x").is_err());
    }

    fn context() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/nested")).unwrap();
        fs::write(root.join("src/a.c"), "int a;").unwrap();
        fs::write(root.join("src/b.txt"), "b").unwrap();
        fs::write(root.join("src/nested/c.c"), "int c;").unwrap();
        fs::write(root.join("top.c"), "int top;").unwrap();
        fs::write(root.join("debug.log"), "log").unwrap();
        std::os::unix::fs::symlink("src/a.c", root.join("link.c")).unwrap();
        let opened = Root::open(root).unwrap();
        (dir, opened)
    }

    #[test]
    fn sources_honour_globs_ignore_rules_and_the_context_boundary() {
        let (_dir, root) = context();
        let rules = IgnoreRules::parse("*.log\nsrc/nested\n");
        let names = |patterns: &[&str]| -> Vec<String> {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            collect(&root, &patterns, Some(&rules), false)
                .unwrap()
                .iter()
                .map(|tree| tree.name.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(&["*.c"]), ["link.c", "top.c"]);
        assert_eq!(names(&["src/*.c"]), ["a.c"]);
        let trees = collect(&root, &["src".to_owned()], Some(&rules), false).unwrap();
        let relatives: Vec<String> = trees[0]
            .entries
            .iter()
            .map(|entry| entry.relative.to_string_lossy().into_owned())
            .collect();
        assert_eq!(relatives, ["", "a.c", "b.txt"]);
        // A named symlink is followed.
        let linked = collect(&root, &["link.c".to_owned()], Some(&rules), false).unwrap();
        assert_eq!(linked[0].entries[0].kind, EntryKind::File);
        for (pattern, needle) in [
            ("debug.log", "excluded by .dockerignore"),
            ("missing.c", "not found"),
            ("../etc/passwd", "outside the build context"),
            ("*.rs", "no source file matches"),
        ] {
            let error = collect(&root, &[pattern.to_owned()], Some(&rules), false).unwrap_err();
            assert!(error.to_string().contains(needle), "{pattern}: {error}");
        }
    }

    #[test]
    fn destinations_follow_the_dockerfile_rules() {
        let (_dir, context_root) = context();
        let target = tempfile::tempdir().unwrap();
        fs::create_dir_all(target.path().join("usr/lib")).unwrap();
        fs::create_dir_all(target.path().join("existing")).unwrap();
        std::os::unix::fs::symlink("usr/lib", target.path().join("lib")).unwrap();
        let root = Root::open(target.path()).unwrap();
        let ownership = Ownership {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            chmod: None,
        };
        let no_extract = |_: &Path, _: &Path| -> Result<(), CopyError> { Ok(()) };
        let trees = |patterns: &[&str]| {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            collect(&context_root, &patterns, None, false).unwrap()
        };
        apply(
            &trees(&["top.c"]),
            &root,
            "/renamed.c",
            &ownership,
            &no_extract,
        )
        .unwrap();
        apply(
            &trees(&["top.c"]),
            &root,
            "/existing",
            &ownership,
            &no_extract,
        )
        .unwrap();
        apply(
            &trees(&["top.c", "src/b.txt"]),
            &root,
            "/multi/",
            &ownership,
            &no_extract,
        )
        .unwrap();
        apply(&trees(&["src"]), &root, "/lib/app", &ownership, &no_extract).unwrap();
        let base = target.path();
        assert_eq!(
            fs::read_to_string(base.join("renamed.c")).unwrap(),
            "int top;"
        );
        assert!(base.join("existing/top.c").is_file());
        assert!(base.join("multi/top.c").is_file() && base.join("multi/b.txt").is_file());
        // Through the image's /lib symlink, not replacing it.
        assert!(
            base.join("lib")
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(base.join("usr/lib/app/nested/c.c").is_file());
        let error = apply(
            &trees(&["top.c", "src/b.txt"]),
            &root,
            "/nodir",
            &ownership,
            &no_extract,
        )
        .unwrap_err();
        assert!(error.to_string().contains("ending in '/'"), "{error}");
        let error = apply(
            &trees(&["top.c"]),
            &root,
            "/existing/",
            &ownership,
            &no_extract,
        );
        assert!(error.is_ok());
        let heredoc = inline("app.conf", b"key=1\n", 0);
        apply(&[heredoc], &root, "/etc/", &ownership, &no_extract).unwrap();
        assert_eq!(
            fs::read_to_string(base.join("etc/app.conf")).unwrap(),
            "key=1\n"
        );
        assert_eq!(
            fs::metadata(base.join("etc/app.conf")).unwrap().mode() & 0o7777,
            0o644
        );
    }
}
