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
use sealcraft_oci::image::Image;
use sealcraft_oci::layer::{Compression, EntryKind, LayerLimits};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::Descriptor;
use sealcraft_oci::view::MergedView;
use sealcraft_pkgdb::{DbKind, FileChange, PackageDb, RemovalReason};
use serde::Serialize;

use sealcraft_elf::{self as elf, ElfInfo, ImageFiles, Unresolved};
use sealcraft_glob::Pattern;

mod objects;
mod removal;
mod write;

use crate::objects::{check_entrypoint, elf_objects};
use crate::removal::{Plan, in_image, manager_state, owned_entries, tally};
use crate::write::write_hardened;

/// Why an image cannot be hardened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OCI layer failed.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// A package database could not be read or rewritten.
    #[error(transparent)]
    PackageDb(#[from] sealcraft_pkgdb::Error),
    /// A file of the image could not be read.
    #[error("reading /{} in the image", path.display())]
    Read {
        /// The path in the image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The removal would break a library dependency that resolves today.
    #[error(
        "removing what was asked would leave {object} without {needed}; keep it with a keep pattern"
    )]
    WouldBreak {
        /// The object that needs the library.
        object: String,
        /// The library name.
        needed: String,
    },
    /// The removal would take the program the image runs.
    #[error(
        "the image runs {program}, which hardening would remove; keep it or change the entrypoint"
    )]
    WouldRemoveEntrypoint {
        /// The entrypoint program.
        program: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// Leave setuid and setgid bits as they are (by default they are cleared).
    pub keep_setuid: bool,
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
            keep_setuid: false,
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
    /// Files whose setuid or setgid bits were cleared.
    pub setuid_cleared: Vec<String>,
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
    let databases = PackageDb::read_all(&files)?;

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
    let conf_dirs = sealcraft_inventory::loader_conf_dirs(&view);
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
        return Err(Error::WouldBreak {
            object: broken.object.clone(),
            needed: broken.needed.clone(),
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
        let changes = database.without(&indexes)?;
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

    // Setuid and setgid files that stay lose those bits: the same content
    // is written again in the new layer with the plain mode.
    let mut modes: BTreeMap<PathBuf, u32> = BTreeMap::new();
    if !spec.keep_setuid {
        for (path, node) in view.iter() {
            if node.meta.kind == EntryKind::File
                && node.meta.mode & 0o6000 != 0
                && !plan.is_removed(path)
                && !rewritten.contains_key(path)
            {
                let bytes = view
                    .read_node(node)
                    .unwrap_or_else(|| Ok(Vec::new()))
                    .map_err(|source| Error::Read {
                        path: path.to_path_buf(),
                        source,
                    })?;
                rewritten.insert(path.to_path_buf(), bytes);
                modes.insert(path.to_path_buf(), node.meta.mode & !0o6000);
            }
        }
    }
    let setuid_cleared = modes
        .keys()
        .map(|path| format!("/{}", path.display()))
        .collect();

    let (removed, paths_removed, bytes_saved) = tally(&view, &plan);
    let manifest = write_hardened(
        source,
        image,
        spec,
        output,
        &view,
        &plan,
        &rewritten,
        &modes,
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
        setuid_cleared,
    })
}
