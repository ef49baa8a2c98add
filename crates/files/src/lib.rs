//! Writing files so that a reader never sees half of one.
//!
//! [`write_atomically`] puts the bytes in a temporary file in the target's
//! own directory (so the rename never crosses a filesystem), syncs it,
//! renames it over the target and syncs the directory, so after a crash
//! the target holds either the old content or the new, never a mix, and
//! no temporary is left that looks like the real file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A write that failed, with the path it was about.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct Error {
    /// What was being done.
    pub action: &'static str,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// How the new file is created.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Permission bits of the new file (the temporary's 0600 otherwise,
    /// widened to 0644 so that the result reads like an ordinary file).
    pub mode: Option<u32>,
    /// Refuse to replace an existing file (keys are never overwritten).
    pub create_new: bool,
}

/// Replaces `path` with `bytes` atomically; the file gets mode 0644.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically_with(path, bytes, WriteOptions::default())
}

/// [`write_atomically`] with a mode, or refusing to replace a file.
pub fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    options: WriteOptions,
) -> Result<(), Error> {
    let mut file = AtomicFile::create(path, options)?;
    file.write_all(bytes).map_err(file.error("writing"))?;
    file.commit()
}

/// A file written in pieces that appears at its path only when
/// [`AtomicFile::commit`] succeeds; dropped uncommitted, it leaves nothing.
pub struct AtomicFile {
    temporary: tempfile::NamedTempFile,
    path: PathBuf,
    directory: PathBuf,
    options: WriteOptions,
}

fn error_at(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error {
        action,
        path,
        source,
    }
}

impl AtomicFile {
    /// Starts the file that will replace (or, with `create_new`, create) `path`.
    pub fn create(path: &Path, options: WriteOptions) -> Result<Self, Error> {
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map_or_else(
            || "file".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
        let temporary = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&directory)
            .map_err(error_at("creating a temporary file in", &directory))?;
        temporary
            .as_file()
            .set_permissions(fs::Permissions::from_mode(options.mode.unwrap_or(0o644)))
            .map_err(error_at("setting the mode of", temporary.path()))?;
        Ok(Self {
            temporary,
            path: path.to_path_buf(),
            directory,
            options,
        })
    }

    /// An error about this file (for failures of writes to it).
    pub fn error(&self, action: &'static str) -> impl FnOnce(io::Error) -> Error + use<> {
        error_at(action, &self.path)
    }

    /// Syncs the content, renames it into place and syncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        self.temporary
            .as_file()
            .sync_all()
            .map_err(error_at("writing", &self.path))?;
        if self.options.create_new {
            self.temporary
                .persist_noclobber(&self.path)
                .map_err(|failure| error_at("creating", &self.path)(failure.error))?;
        } else {
            self.temporary
                .persist(&self.path)
                .map_err(|failure| error_at("replacing", &self.path)(failure.error))?;
        }
        // The rename is durable only once the directory entry is.
        fs::File::open(&self.directory)
            .and_then(|handle| handle.sync_all())
            .map_err(error_at("syncing", &self.directory))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.temporary.write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temporary.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["report.json"]);
    }

    #[test]
    fn create_new_never_overwrites_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cosign.key");
        let options = WriteOptions {
            mode: Some(0o600),
            create_new: true,
        };
        write_atomically_with(&path, b"key", options).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let error = write_atomically_with(&path, b"other", options).unwrap_err();
        assert_eq!(error.source.kind(), io::ErrorKind::AlreadyExists);
        assert!(error.to_string().contains("cosign.key"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"key");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_streamed_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let mut file = AtomicFile::create(&path, WriteOptions::default()).unwrap();
        file.write_all(b"one\n").unwrap();
        assert!(!path.exists(), "visible before commit");
        drop(file);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a dropped file leaves nothing"
        );
        let mut file = AtomicFile::create(&path, WriteOptions::default()).unwrap();
        file.write_all(b"one\ntwo\n").unwrap();
        file.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/out.json");
        let error = write_atomically(&path, b"x").unwrap_err();
        assert!(error.to_string().contains("absent"), "{error}");
    }
}
