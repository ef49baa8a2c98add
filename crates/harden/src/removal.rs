//! The removal set: which paths go, by category, with keep patterns
//! honoured and subtrees absorbing what was already removed below them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sealcraft_glob::Pattern;
use sealcraft_oci::layer::EntryKind;
use sealcraft_oci::view::{ContentRef, MergedView};

use crate::Removed;

/// Manager state that is not in any package's file list.
pub(crate) fn manager_state(name: &str) -> &'static [&'static str] {
    match name {
        "apt" => &["etc/apt", "var/lib/apt", "var/cache/apt", "var/log/apt"],
        "debconf" => &["var/cache/debconf", "etc/debconf.conf"],
        "dpkg" => &[
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/available",
            "var/lib/dpkg/available-old",
            "var/lib/dpkg/diversions-old",
            "var/lib/dpkg/statoverride-old",
            "var/lib/dpkg/lock",
            "var/lib/dpkg/lock-frontend",
            "var/lib/dpkg/triggers",
            "var/lib/dpkg/updates",
            "var/lib/dpkg/parts",
            "var/log/dpkg.log",
            "var/log/alternatives.log",
            "etc/dpkg",
        ],
        "apk-tools" => &["etc/apk", "var/cache/apk", "lib/apk/exec"],
        "rpm" => &[
            "var/lib/rpm/.rpm.lock",
            "var/lib/rpm/rpmdb.sqlite-shm",
            "var/lib/rpm/rpmdb.sqlite-wal",
            "etc/rpm",
        ],
        "dnf" | "dnf5" | "yum" | "microdnf" | "tdnf" => &[
            "etc/dnf",
            "etc/yum",
            "etc/yum.repos.d",
            "var/cache/dnf",
            "var/cache/yum",
            "var/lib/dnf",
            "var/log/dnf.log",
            "var/log/dnf.librepo.log",
            "var/log/dnf.rpm.log",
        ],
        _ => &[],
    }
}

pub(crate) struct Plan<'a> {
    pub(crate) view: &'a MergedView,
    pub(crate) keep: Vec<Pattern>,
    /// Path → category of its removal (subtrees go with their root).
    pub(crate) removed: BTreeMap<PathBuf, &'static str>,
}

impl Plan<'_> {
    pub(crate) fn kept_by_pattern(&self, path: &Path) -> bool {
        let text = path.to_string_lossy();
        self.keep
            .iter()
            .any(|pattern| pattern.matches_or_parent(&text))
    }

    pub(crate) fn is_removed(&self, path: &Path) -> bool {
        path.ancestors()
            .filter(|ancestor| !ancestor.as_os_str().is_empty())
            .any(|ancestor| self.removed.contains_key(ancestor))
    }

    /// Removes `path` (a subtree when it is a directory), unless kept.
    pub(crate) fn remove(&mut self, path: &Path, category: &'static str) {
        if path.as_os_str().is_empty() || self.is_removed(path) || self.view.get(path).is_none() {
            return;
        }
        if self.kept_by_pattern(path) {
            return;
        }
        // A directory with something kept below it is emptied child by child instead.
        let is_dir = self
            .view
            .get(path)
            .is_some_and(|node| node.meta.kind == EntryKind::Directory);
        if is_dir && self.has_kept_below(path) {
            let children: Vec<PathBuf> = self.children(path);
            for child in children {
                self.remove(&child, category);
            }
            return;
        }
        // A subtree absorbs what was already removed below it (whiteouts inside a
        // whited-out directory would make readers recreate it).
        let below: Vec<PathBuf> = self
            .removed
            .range::<Path, _>((std::ops::Bound::Excluded(path), std::ops::Bound::Unbounded))
            .take_while(|(candidate, _)| candidate.starts_with(path))
            .map(|(candidate, _)| candidate.clone())
            .collect();
        for candidate in below {
            self.removed.remove(&candidate);
        }
        self.removed.insert(path.to_path_buf(), category);
    }

    /// Resolves `path` as the image will be: nothing removed is passed through.
    pub(crate) fn resolve(&self, path: &Path) -> Option<PathBuf> {
        self.view
            .resolve_visible(path, |candidate| !self.is_removed(candidate))
            .map(|(real, _)| real)
    }

    pub(crate) fn has_kept_below(&self, path: &Path) -> bool {
        !self.keep.is_empty()
            && self
                .view
                .iter()
                .filter(|(candidate, _)| candidate.starts_with(path) && *candidate != path)
                .any(|(candidate, _)| self.kept_by_pattern(candidate))
    }

    pub(crate) fn children(&self, path: &Path) -> Vec<PathBuf> {
        self.view
            .iter()
            .filter(|(candidate, _)| candidate.parent() == Some(path))
            .map(|(candidate, _)| candidate.to_path_buf())
            .collect()
    }

    /// Removes everything below `path` but the directory itself (and what `except` keeps).
    pub(crate) fn empty(
        &mut self,
        path: &Path,
        category: &'static str,
        except: &dyn Fn(&Path) -> bool,
    ) {
        for child in self.children(path) {
            let is_dir = self
                .view
                .get(&child)
                .is_some_and(|node| node.meta.kind == EntryKind::Directory);
            let protected_below = is_dir
                && self
                    .view
                    .iter()
                    .any(|(candidate, _)| candidate.starts_with(&child) && except(candidate));
            if except(&child) {
                continue;
            }
            if protected_below {
                self.empty(&child, category, except);
            } else {
                self.remove(&child, category);
            }
        }
    }

    /// Whether anything under `path` survives.
    pub(crate) fn survives_below(&self, path: &Path) -> bool {
        self.view
            .iter()
            .filter(|(candidate, _)| candidate.starts_with(path) && *candidate != path)
            .any(|(candidate, _)| !self.is_removed(candidate))
    }
}

/// Where a path a package lists is in the image: its directories resolved
/// (packages list `/lib/…`, which merged-/usr images keep under `/usr/lib`),
/// the last component as it is.
pub(crate) fn in_image(view: &MergedView, file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?;
    let parent = match file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        Some(parent) => view.resolve(parent)?.0,
        None => PathBuf::new(),
    };
    let path = parent.join(name);
    view.get(&path).is_some().then_some(path)
}

/// The entries a package's removal deletes: its files and symlinks, never its
/// directories (they go only once empty) and never a symlink to a directory
/// (such as merged-/usr's `/lib`), except among the docs.
pub(crate) fn owned_entries(view: &MergedView, files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter_map(|file| in_image(view, file))
        .filter(|path| match view.get(path).map(|node| &node.meta.kind) {
            Some(EntryKind::Directory) | None => false,
            Some(EntryKind::Symlink(_)) => {
                path.starts_with("usr/share/doc")
                    || !view
                        .resolve(path)
                        .is_some_and(|(_, node)| node.meta.kind == EntryKind::Directory)
            }
            Some(_) => true,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

pub(crate) fn tally(
    view: &MergedView,
    plan: &Plan<'_>,
) -> (BTreeMap<&'static str, Removed>, usize, u64) {
    let mut by_category: BTreeMap<&'static str, Removed> = BTreeMap::new();
    for category in plan.removed.values() {
        by_category.entry(category).or_default().paths += 1;
    }
    // Each path's category is that of its removed ancestor (or itself); shared content counts once.
    let mut counted: BTreeSet<ContentRef> = BTreeSet::new();
    let mut total_bytes = 0;
    for (path, node) in view.iter() {
        let Some(content) = node.content else {
            continue;
        };
        let category = path
            .ancestors()
            .find_map(|ancestor| plan.removed.get(ancestor));
        if let Some(category) = category
            && counted.insert(content)
        {
            by_category.entry(category).or_default().bytes += content.size;
            total_bytes += content.size;
        }
    }
    (by_category, plan.removed.len(), total_bytes)
}
