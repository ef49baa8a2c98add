//! The hardened stage: an image that cannot install packages, with no more
//! on it than its programs need.
//!
//! Working on the image's merged view (nothing is unpacked, nothing runs):
//!
//! 1. package managers (apt, dpkg and debconf, apk, rpm, dnf, yum, …) are removed with
//!    the packages only they needed (libraries, and tools the manager marks
//!    as installed for a dependency), through the package database, which
//!    is rewritten to list exactly the packages that remain;
//! 2. documentation, man and info pages, locales, caches and temporary
//!    files go (Debian copyright files stay by default: SBOMs read licenses
//!    from them); shells too when asked;
//! 3. shared libraries in the loader's directories that no kept executable
//!    reaches through `DT_NEEDED` (with RPATH, RUNPATH, ld.so.conf and the
//!    defaults, transitively) are pruned; a package left without files
//!    leaves the database as well.
//!
//! Hardening refuses to break the image: if a `DT_NEEDED` entry that
//! resolved before would no longer resolve, or the entrypoint would be
//! removed, it fails instead. The result is the original layers plus one
//! layer of whiteouts and rewritten databases.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use sealcraft_inventory::ViewSource;
use sealcraft_inventory::pkgdb::{DbKind, FileChange, PackageDb, RemovalReason};
use sealcraft_oci::digest::parse_digest;
use sealcraft_oci::image::{Image, LayerOptions, commit_image, rfc3339, write_layer};
use sealcraft_oci::layer::{Compression, EntryKind, EntryMeta, LayerLimits};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{Descriptor, HistoryEntry};
use sealcraft_oci::view::{ContentRef, MergedView};
use serde::Serialize;

use crate::elf::{self, ElfInfo, ImageFiles, Unresolved};
use crate::ignore::Pattern;
use crate::{Error, Result};

/// Packages that install or configure packages (debconf is dpkg's configuration front end).
const PACKAGE_MANAGERS: [&str; 12] = [
    "apt",
    "apt-utils",
    "aptitude",
    "debconf",
    "dpkg",
    "apk-tools",
    "rpm",
    "dnf",
    "dnf5",
    "yum",
    "microdnf",
    "tdnf",
];
const SHELL_PACKAGES: [&str; 7] = ["bash", "dash", "zsh", "ksh", "mksh", "tcsh", "csh"];
const SHELL_NAMES: [&str; 10] = [
    "sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh",
];
/// Libraries the C library or the loader open by name at run time, never through DT_NEEDED.
const LOADED_BY_NAME: [&str; 4] = ["ld-", "libnss_", "libgcc_s", "libidn2"];
/// The largest file read to check whether it is ELF.
const MAX_ELF_BYTES: u64 = 1 << 30;

/// What to remove.
#[derive(Debug, Clone)]
pub struct HardenSpec {
    /// Remove shells (and the packages that ship them).
    pub remove_shells: bool,
    /// Further packages to remove, by name.
    pub remove_packages: Vec<String>,
    /// Paths (globs, relative to the root) never removed.
    pub keep: Vec<String>,
    /// Keep `/usr/share/doc/*/copyright` (license data for SBOMs).
    pub keep_copyright: bool,
    /// Timestamp of the new layer and history entry.
    pub source_date_epoch: i64,
    /// Compression of the new layer.
    pub compression: Compression,
}

impl Default for HardenSpec {
    fn default() -> Self {
        Self {
            remove_shells: false,
            remove_packages: Vec::new(),
            keep: Vec::new(),
            keep_copyright: true,
            source_date_epoch: 0,
            compression: Compression::Gzip,
        }
    }
}

/// A package that left the image.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedPackage {
    /// The database it left.
    pub database: DbKind,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `requested`, `only-needed-by-removed` or `no-files-left`.
    pub reason: &'static str,
}

/// What one category of removal freed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Removed {
    /// Paths removed (a removed directory counts once).
    pub paths: usize,
    /// Bytes of regular files removed.
    pub bytes: u64,
}

/// What hardening did.
#[derive(Debug, Clone, Serialize)]
pub struct HardenReport {
    /// The hardened image in the output layout.
    pub manifest: Descriptor,
    /// The package databases found.
    pub databases: Vec<DbKind>,
    /// Packages removed.
    pub packages_removed: Vec<RemovedPackage>,
    /// Shared libraries outside the ELF closure.
    pub libraries_pruned: Vec<String>,
    /// By category: package-managers, exclusive-dependencies, docs, caches, shells, libraries.
    pub removed: BTreeMap<&'static str, Removed>,
    /// Paths removed in all.
    pub paths_removed: usize,
    /// Bytes of regular files removed in all.
    pub bytes_saved: u64,
    /// ELF objects kept.
    pub elf_objects: usize,
    /// `DT_NEEDED` entries that did not resolve in the original image either.
    pub unresolved: Vec<Unresolved>,
}

/// Manager state that is not in any package's file list.
fn manager_state(name: &str) -> &'static [&'static str] {
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

struct Plan<'a> {
    view: &'a MergedView,
    keep: Vec<Pattern>,
    /// Path → category of its removal (subtrees go with their root).
    removed: BTreeMap<PathBuf, &'static str>,
}

impl Plan<'_> {
    fn kept_by_pattern(&self, path: &Path) -> bool {
        let text = path.to_string_lossy();
        self.keep
            .iter()
            .any(|pattern| pattern.matches_or_parent(&text))
    }

    fn is_removed(&self, path: &Path) -> bool {
        path.ancestors()
            .filter(|ancestor| !ancestor.as_os_str().is_empty())
            .any(|ancestor| self.removed.contains_key(ancestor))
    }

    /// Removes `path` (a subtree when it is a directory), unless kept.
    fn remove(&mut self, path: &Path, category: &'static str) {
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
    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        self.view
            .resolve_visible(path, |candidate| !self.is_removed(candidate))
            .map(|(real, _)| real)
    }

    fn has_kept_below(&self, path: &Path) -> bool {
        !self.keep.is_empty()
            && self
                .view
                .iter()
                .filter(|(candidate, _)| candidate.starts_with(path) && *candidate != path)
                .any(|(candidate, _)| self.kept_by_pattern(candidate))
    }

    fn children(&self, path: &Path) -> Vec<PathBuf> {
        self.view
            .iter()
            .filter(|(candidate, _)| candidate.parent() == Some(path))
            .map(|(candidate, _)| candidate.to_path_buf())
            .collect()
    }

    /// Removes everything below `path` but the directory itself (and what `except` keeps).
    fn empty(&mut self, path: &Path, category: &'static str, except: &dyn Fn(&Path) -> bool) {
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
    fn survives_below(&self, path: &Path) -> bool {
        self.view
            .iter()
            .filter(|(candidate, _)| candidate.starts_with(path) && *candidate != path)
            .any(|(candidate, _)| !self.is_removed(candidate))
    }
}

/// Hardens `image` (from `source`) into `output` (not tagged: the caller names it).
pub fn harden(
    source: &Layout,
    image: &Image,
    spec: &HardenSpec,
    output: &Layout,
) -> Result<HardenReport> {
    let view = MergedView::from_image(
        source,
        &image.manifest,
        &image.config,
        &LayerLimits::default(),
    )?;
    let mut plan = Plan {
        view: &view,
        keep: spec
            .keep
            .iter()
            .filter_map(|pattern| Pattern::new(pattern))
            .collect(),
        removed: BTreeMap::new(),
    };
    let files = ViewSource(&view);
    let databases = PackageDb::read_all(&files).map_err(|error| Error::Instruction {
        keyword: "HARDEN",
        message: error.to_string(),
    })?;

    // 1. Package managers and what only they needed.
    let mut requested: BTreeSet<String> = PACKAGE_MANAGERS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    requested.extend(spec.remove_packages.iter().cloned());
    if spec.remove_shells {
        requested.extend(SHELL_PACKAGES.iter().map(|name| (*name).to_owned()));
    }
    // Per database: package index → the reason the report gives.
    let mut removals: Vec<BTreeMap<usize, &'static str>> = Vec::new();
    for database in &databases {
        let removal = database.removal(&requested);
        for (index, reason) in &removal {
            let package = &database.packages[*index];
            let category = match reason {
                RemovalReason::Requested if SHELL_PACKAGES.contains(&package.name.as_str()) => {
                    "shells"
                }
                RemovalReason::Requested if PACKAGE_MANAGERS.contains(&package.name.as_str()) => {
                    "package-managers"
                }
                RemovalReason::Requested => "packages",
                RemovalReason::OnlyNeededByRemoved => "exclusive-dependencies",
            };
            for file in owned_entries(&view, &package.files) {
                plan.remove(&file, category);
            }
            for state in manager_state(&package.name) {
                plan.remove(Path::new(state), "package-managers");
            }
        }
        removals.push(
            removal
                .into_iter()
                .map(|(index, reason)| {
                    let reason = match reason {
                        RemovalReason::Requested => "requested",
                        RemovalReason::OnlyNeededByRemoved => "only-needed-by-removed",
                    };
                    (index, reason)
                })
                .collect(),
        );
    }

    // 2. Docs, man pages, locales, caches, temporary files; shells.
    let keep_copyright = spec.keep_copyright;
    let copyright = move |path: &Path| {
        keep_copyright && path.file_name().is_some_and(|name| name == "copyright")
    };
    plan.empty(Path::new("usr/share/doc"), "docs", &copyright);
    for directory in [
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
        "usr/share/linda",
        "usr/share/doc-base",
    ] {
        plan.remove(Path::new(directory), "docs");
    }
    plan.empty(Path::new("usr/share/locale"), "docs", &|path: &Path| {
        path.file_name().is_some_and(|name| name == "locale.alias")
    });
    let nothing = |_: &Path| false;
    for directory in ["var/cache", "var/lib/apt/lists", "tmp", "var/tmp"] {
        plan.empty(Path::new(directory), "caches", &nothing);
    }
    // Logs are files; the directories stay for whatever writes them at run time.
    let logs: Vec<PathBuf> = view
        .iter()
        .filter(|(path, node)| {
            path.starts_with("var/log") && node.meta.kind != EntryKind::Directory
        })
        .map(|(path, _)| path.to_path_buf())
        .collect();
    for log in logs {
        plan.remove(&log, "caches");
    }
    if spec.remove_shells {
        for directory in ["bin", "usr/bin", "usr/local/bin", "sbin", "usr/sbin"] {
            for name in SHELL_NAMES {
                plan.remove(&Path::new(directory).join(name), "shells");
            }
        }
    }

    // 3. The ELF closure over what is left.
    let conf_dirs = elf::ld_so_conf_dirs(
        &|path: &Path| {
            view.read(path)
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        },
        &|directory: &Path| {
            view.iter()
                .filter(|(path, _)| path.parent() == Some(directory))
                .map(|(path, _)| path.to_path_buf())
                .collect()
        },
    );
    let objects = elf_objects(&view)?;
    let resolve = |path: &Path| -> Option<PathBuf> { view.resolve(path).map(|(real, _)| real) };
    let search_dirs: BTreeSet<PathBuf> = conf_dirs
        .iter()
        .cloned()
        .chain(elf::default_dirs(true))
        .map(|dir| resolve(&dir).unwrap_or(dir))
        .collect();
    let before = ImageFiles {
        objects: &objects,
        resolve: &resolve,
        conf_dirs: &conf_dirs,
    };
    let (_, unresolved_before) = before.closure(&objects.keys().cloned().collect::<Vec<_>>());
    let remaining: BTreeMap<PathBuf, ElfInfo> = objects
        .iter()
        .filter(|(path, _)| !plan.is_removed(path))
        .map(|(path, info)| (path.clone(), info.clone()))
        .collect();
    let prunable = |path: &Path, info: &ElfInfo| -> bool {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        !info.executable
            && name.contains(".so")
            && path
                .parent()
                .is_some_and(|parent| search_dirs.contains(parent))
            && !LOADED_BY_NAME.iter().any(|prefix| name.starts_with(prefix))
            && !plan.kept_by_pattern(path)
    };
    let roots: Vec<PathBuf> = remaining
        .iter()
        .filter(|(path, info)| !prunable(path, info))
        .map(|(path, _)| path.clone())
        .collect();
    let pruned: Vec<PathBuf> = {
        let visible_resolve = |path: &Path| plan.resolve(path);
        let after = ImageFiles {
            objects: &remaining,
            resolve: &visible_resolve,
            conf_dirs: &conf_dirs,
        };
        let (kept, _) = after.closure(&roots);
        remaining
            .iter()
            .filter(|(path, info)| prunable(path, info) && !kept.contains(*path))
            .map(|(path, _)| path.clone())
            .collect()
    };
    for library in &pruned {
        plan.remove(library, "libraries");
    }
    // Symlinks in the library directories that led only to pruned libraries.
    let dangling: Vec<PathBuf> = view
        .iter()
        .filter(|(path, node)| {
            matches!(node.meta.kind, EntryKind::Symlink(_))
                && path
                    .parent()
                    .is_some_and(|parent| search_dirs.contains(parent))
                && resolve(path).is_some_and(|target| plan.is_removed(&target))
                && plan.resolve(path).is_none()
        })
        .map(|(path, _)| path.to_path_buf())
        .collect();
    for link in dangling {
        plan.remove(&link, "libraries");
    }

    // Nothing that resolved before may stop resolving.
    let surviving: BTreeMap<PathBuf, ElfInfo> = objects
        .iter()
        .filter(|(path, _)| !plan.is_removed(path))
        .map(|(path, info)| (path.clone(), info.clone()))
        .collect();
    let check = ImageFiles {
        objects: &surviving,
        resolve: &|path: &Path| plan.resolve(path),
        conf_dirs: &conf_dirs,
    };
    let (_, unresolved_after) = check.closure(&surviving.keys().cloned().collect::<Vec<_>>());
    if let Some(broken) = unresolved_after
        .iter()
        .find(|entry| !unresolved_before.contains(entry))
    {
        return Err(Error::Instruction {
            keyword: "HARDEN",
            message: format!(
                "removing what was asked would leave {} without {}; keep it with a keep pattern",
                broken.object, broken.needed
            ),
        });
    }
    check_entrypoint(image, &view, &plan)?;

    // Packages whose every file is gone leave the database too.
    for (database, removal) in databases.iter().zip(removals.iter_mut()) {
        for (index, package) in database.packages.iter().enumerate() {
            if package.name.is_empty() || removal.contains_key(&index) {
                continue;
            }
            let entries = owned_entries(&view, &package.files);
            let substantive: Vec<&PathBuf> = entries
                .iter()
                .filter(|file| !file.starts_with("usr/share/doc"))
                .collect();
            if !substantive.is_empty() && substantive.iter().all(|file| plan.is_removed(file)) {
                removal.insert(index, "no-files-left");
                for file in &entries {
                    plan.remove(file, "libraries");
                }
            }
        }
    }

    // Directories that removed packages listed and that are now empty.
    let mut listed_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut kept_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for (database, removal) in databases.iter().zip(&removals) {
        for (index, package) in database.packages.iter().enumerate() {
            for file in package
                .files
                .iter()
                .filter_map(|file| in_image(&view, file))
            {
                if view
                    .get(&file)
                    .is_some_and(|node| node.meta.kind == EntryKind::Directory)
                {
                    if removal.contains_key(&index) {
                        listed_dirs.insert(file);
                    } else {
                        kept_dirs.insert(file);
                    }
                }
            }
        }
    }
    let mut deepest_first: Vec<PathBuf> = listed_dirs.difference(&kept_dirs).cloned().collect();
    deepest_first.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    for directory in deepest_first {
        if !plan.survives_below(&directory) {
            plan.remove(&directory, "package-managers");
        }
    }

    // The databases, rewritten.
    let mut rewritten: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let mut packages_removed = Vec::new();
    for (database, removal) in databases.iter().zip(&removals) {
        let indexes: BTreeSet<usize> = removal.keys().copied().collect();
        let changes = database
            .without(&indexes)
            .map_err(|error| Error::Instruction {
                keyword: "HARDEN",
                message: error.to_string(),
            })?;
        for change in changes {
            match change {
                FileChange::Write(path, bytes) => {
                    rewritten.insert(path, bytes);
                }
                FileChange::Delete(path) => plan.remove(&path, "package-managers"),
            }
        }
        for (index, reason) in removal {
            let package = &database.packages[*index];
            packages_removed.push(RemovedPackage {
                database: database.kind,
                name: package.name.clone(),
                version: package.version.clone(),
                reason,
            });
        }
    }
    packages_removed.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));

    let (removed, paths_removed, bytes_saved) = tally(&view, &plan);
    let manifest = write_hardened(
        source,
        image,
        spec,
        output,
        &view,
        &plan,
        &rewritten,
        &packages_removed,
    )?;
    Ok(HardenReport {
        manifest,
        databases: databases.iter().map(|database| database.kind).collect(),
        packages_removed,
        libraries_pruned: pruned
            .iter()
            .map(|path| format!("/{}", path.display()))
            .collect(),
        removed,
        paths_removed,
        bytes_saved,
        elf_objects: surviving.len(),
        unresolved: unresolved_before,
    })
}

/// Where a path a package lists is in the image: its directories resolved
/// (packages list `/lib/…`, which merged-/usr images keep under `/usr/lib`),
/// the last component as it is.
fn in_image(view: &MergedView, file: &Path) -> Option<PathBuf> {
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
fn owned_entries(view: &MergedView, files: &[PathBuf]) -> Vec<PathBuf> {
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

/// Every ELF object of the image by path (hard links each under their own path).
fn elf_objects(view: &MergedView) -> Result<BTreeMap<PathBuf, ElfInfo>> {
    let mut objects = BTreeMap::new();
    for (path, node) in view.iter() {
        let Some(content) = node.content else {
            continue;
        };
        if content.size < 64 || content.size > MAX_ELF_BYTES {
            continue;
        }
        let magic = view
            .read_content(ContentRef { size: 4, ..content })
            .map_err(|source| Error::Host {
                path: path.to_path_buf(),
                source,
            })?;
        if magic != b"\x7fELF" {
            continue;
        }
        let bytes = view.read_content(content).map_err(|source| Error::Host {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(info) = elf::parse(&bytes) {
            objects.insert(path.to_path_buf(), info);
        }
    }
    Ok(objects)
}

/// Refuses to remove the program the image runs.
fn check_entrypoint(image: &Image, view: &MergedView, plan: &Plan<'_>) -> Result<()> {
    let runtime = image.config.runtime_config();
    let program = runtime
        .entrypoint
        .as_ref()
        .and_then(|list| list.first())
        .or_else(|| runtime.cmd.as_ref().and_then(|list| list.first()));
    let Some(program) = program.filter(|program| program.starts_with('/')) else {
        return Ok(());
    };
    let relative = Path::new(program.trim_start_matches('/'));
    let gone = view.resolve(relative).is_some()
        && view
            .resolve_visible(relative, |candidate| !plan.is_removed(candidate))
            .is_none();
    if gone {
        return Err(Error::Instruction {
            keyword: "HARDEN",
            message: format!(
                "the image runs {program}, which hardening would remove; keep it or change the entrypoint"
            ),
        });
    }
    Ok(())
}

fn tally(view: &MergedView, plan: &Plan<'_>) -> (BTreeMap<&'static str, Removed>, usize, u64) {
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

#[allow(clippy::too_many_arguments)]
fn write_hardened(
    source: &Layout,
    image: &Image,
    spec: &HardenSpec,
    output: &Layout,
    view: &MergedView,
    plan: &Plan<'_>,
    rewritten: &BTreeMap<PathBuf, Vec<u8>>,
    packages_removed: &[RemovedPackage],
) -> Result<Descriptor> {
    enum Change<'a> {
        Directory(EntryMeta),
        Whiteout,
        Content(EntryMeta, &'a [u8]),
    }
    let mut changes: BTreeMap<PathBuf, Change<'_>> = BTreeMap::new();
    let parents = |path: &Path, changes: &mut BTreeMap<PathBuf, Change<'_>>| {
        for ancestor in path
            .ancestors()
            .skip(1)
            .filter(|ancestor| !ancestor.as_os_str().is_empty())
        {
            if let Some(node) = view.get(ancestor) {
                changes
                    .entry(ancestor.to_path_buf())
                    .or_insert_with(|| Change::Directory(node.meta.clone()));
            }
        }
    };
    for path in plan.removed.keys() {
        parents(path, &mut changes);
        changes.insert(path.clone(), Change::Whiteout);
    }
    for (path, bytes) in rewritten {
        let Some((real, node)) = view.resolve(path) else {
            continue;
        };
        parents(&real, &mut changes);
        let meta = EntryMeta {
            path: real.clone(),
            kind: EntryKind::File,
            size: bytes.len() as u64,
            ..node.meta.clone()
        };
        changes.insert(real, Change::Content(meta, bytes));
    }
    let options = LayerOptions {
        clamp_mtime: Some(spec.source_date_epoch),
        compression: spec.compression,
        keep_devices: true,
    };
    let layer = write_layer(output, &options, |writer| {
        let mut count = 0;
        for (path, change) in &changes {
            match change {
                Change::Directory(meta) => writer.append(meta, &mut io::empty())?,
                Change::Whiteout => writer.append(
                    &EntryMeta::new(path.clone(), EntryKind::Whiteout, 0),
                    &mut io::empty(),
                )?,
                Change::Content(meta, bytes) => writer.append(meta, &mut &bytes[..])?,
            }
            count += 1;
        }
        Ok(count)
    })?;
    for descriptor in &image.manifest.layers {
        output.copy_blob_from(source, descriptor)?;
    }
    let mut config = image.config.clone();
    let mut diff_ids = Vec::new();
    for id in image.config.diff_ids() {
        diff_ids.push(parse_digest(&id)?);
    }
    diff_ids.push(layer.diff_id.clone());
    config.set_diff_ids(&diff_ids);
    let created = rfc3339(spec.source_date_epoch);
    let mut history = image.config.history();
    history.push(HistoryEntry {
        created: Some(created.clone()),
        created_by: Some(format!(
            "sealcraft harden: {} packages and {} paths removed",
            packages_removed.len(),
            plan.removed.len()
        )),
        comment: Some("package managers, exclusive dependencies, unreachable libraries, docs and caches removed".into()),
        author: None,
        empty_layer: false,
    });
    config.set_history(&history);
    config.set_created(&created);
    let mut layers = image.manifest.layers.clone();
    layers.push(layer.descriptor.clone());
    Ok(commit_image(
        output,
        &config,
        layers,
        image.manifest.annotations.clone(),
    )?)
}
