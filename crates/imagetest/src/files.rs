//! File existence and file content tests, on the merged view: only the
//! paths a test names are looked at, nothing is unpacked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sealcraft_oci::layer::{EntryKind, EntryMeta};
use sealcraft_oci::view::MergedView;

use crate::expand::expand;
use crate::mode::go_mode_string;
use crate::report::TestResult;
use crate::spec::{FileContentTest, FileExistenceTest};

/// The metadata of `path` without following a final symlink (`lstat`);
/// parent directories are followed inside the image. `/` is the root directory.
pub(crate) fn lstat(view: &MergedView, path: &str) -> Option<EntryMeta> {
    let relative = Path::new(path.trim_start_matches('/'));
    let Some(name) = relative.file_name() else {
        return (path.starts_with('/') && relative.as_os_str().is_empty())
            .then(|| EntryMeta::new("", EntryKind::Directory, 0o755));
    };
    let parent = relative.parent().unwrap_or(Path::new(""));
    let real_parent = if parent.as_os_str().is_empty() {
        PathBuf::new()
    } else {
        let (real, node) = view.resolve(parent)?;
        if node.meta.kind != EntryKind::Directory {
            return None;
        }
        real
    };
    let node = view.get(real_parent.join(name))?;
    let mut meta = node.meta.clone();
    // A hard link has its target's metadata.
    if let EntryKind::HardLink(target) = &node.meta.kind
        && let Some(target) = view.get(target)
    {
        meta = EntryMeta {
            path: meta.path,
            ..target.meta.clone()
        };
        meta.kind = EntryKind::File;
    }
    Some(meta)
}

/// Runs one file existence test.
pub(crate) fn existence(
    view: &MergedView,
    test: &FileExistenceTest,
    env: &BTreeMap<String, String>,
) -> TestResult {
    let started = Instant::now();
    let path = expand(&test.path, env);
    let mut errors = Vec::new();
    match (lstat(view, &path), test.should_exist) {
        (None, true) => errors.push(format!("{} does not exist in the image", test.path)),
        (Some(_), false) => errors.push(format!("{} should not exist but does", test.path)),
        (None, false) => {}
        (Some(meta), true) => {
            let actual = go_mode_string(&meta.kind, meta.mode);
            if let Some(expected) = &test.permissions
                && *expected != actual
            {
                errors.push(format!(
                    "{} has permissions {actual}, expected {expected}",
                    test.path
                ));
            }
            if let Some(uid) = test.uid.filter(|uid| *uid >= 0)
                && u64::try_from(uid).ok() != Some(meta.uid)
            {
                errors.push(format!(
                    "{} is owned by uid {}, expected {uid}",
                    test.path, meta.uid
                ));
            }
            if let Some(gid) = test.gid.filter(|gid| *gid >= 0)
                && u64::try_from(gid).ok() != Some(meta.gid)
            {
                errors.push(format!(
                    "{} has group gid {}, expected {gid}",
                    test.path, meta.gid
                ));
            }
            if let Some(by) = &test.is_executable_by {
                let mask = match by.as_str() {
                    "owner" => 0o100,
                    "group" => 0o010,
                    "other" => 0o001,
                    _ => 0o111,
                };
                if meta.mode & mask == 0 {
                    errors.push(format!(
                        "{} is not executable by {by}: its mode is {actual}",
                        test.path
                    ));
                }
            }
        }
    }
    TestResult::new(
        format!("File Existence Test: {}", test.name),
        errors,
        started.elapsed(),
    )
}

/// Runs one file content test.
pub(crate) fn content(view: &MergedView, test: &FileContentTest) -> TestResult {
    let started = Instant::now();
    let mut errors = Vec::new();
    match view.read(&test.path) {
        Err(error) => errors.push(format!("cannot read {}: {error}", test.path)),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            errors.extend(crate::matching::expected(
                &test.expected_contents,
                &text,
                &format!("the content of {}", test.path),
            ));
            errors.extend(crate::matching::excluded(
                &test.excluded_contents,
                &text,
                &format!("the content of {}", test.path),
            ));
        }
    }
    TestResult::new(
        format!("File Content Test: {}", test.name),
        errors,
        started.elapsed(),
    )
}
