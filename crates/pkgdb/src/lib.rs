//! Installed-package databases as editable records: dpkg, apk and RPM.
//!
//! Hardening removes packages from an image and must leave a database that
//! tells the truth: the removed packages gone, every other package exactly
//! as it was, so scanners still see what remains. This module reads a
//! database into packages with their dependencies, what they provide and
//! the files they own, decides which packages only removed ones needed,
//! and writes the database back without a given set.

pub mod dpkg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sealcraft_inventory::FileSource;
use sealcraft_inventory::rpm::{
    HeaderValue, TAG_BASENAMES, TAG_DIRINDEXES, TAG_DIRNAMES, TAG_NAME, TAG_PROVIDENAME,
    TAG_RELEASE, TAG_REQUIRENAME, TAG_VERSION, header_entries,
};

const DPKG_STATUS: &str = "var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";
const DPKG_INFO: &str = "var/lib/dpkg/info";
const APK_INSTALLED: &str = "lib/apk/db/installed";
const APK_WORLD: &str = "etc/apk/world";
const APT_EXTENDED_STATES: &str = "var/lib/apt/extended_states";
const MAX_DATABASE_BYTES: u64 = 256 << 20;

/// Which package manager keeps the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    /// Debian's dpkg.
    Dpkg,
    /// Alpine's apk.
    Apk,
    /// RPM (`rpmdb.sqlite`).
    Rpm,
}

/// Why a database could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file could not be read.
    #[error("reading the package database {path}")]
    Read {
        /// The database path in the image.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The RPM database could not be opened or changed.
    #[error("the RPM database {path}")]
    Rpm {
        /// The database path in the image.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The private copy of the RPM database could not be made or read back.
    #[error("copying the RPM database {path}")]
    RpmCopy {
        /// The database path in the image.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// dpkg's `Essential: yes`: other packages rely on it without saying so.
    pub essential: bool,
    /// Names it provides (its own name included), and for RPM and apk the files it owns.
    pub provides: Vec<String>,
    /// What it depends on: each group is satisfied by any one of its names.
    pub depends: Vec<Vec<String>>,
    /// The paths it owns (files and directories), relative to the root.
    pub files: Vec<PathBuf>,
    /// The database's own files about it (dpkg's `info/<name>.*`, a `status.d` entry).
    pub metadata_files: Vec<PathBuf>,
    /// Whether the manager installed it only as a dependency (apt's
    /// `extended_states`, apk's `world`); `None` when the image does not say.
    pub auto_installed: Option<bool>,
}

const COMMAND_DIRS: [&str; 6] = [
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
];

impl InstalledPackage {
    /// Whether it puts a command on the PATH.
    pub fn ships_commands(&self) -> bool {
        self.files.iter().any(|file| {
            file.parent()
                .is_some_and(|parent| COMMAND_DIRS.iter().any(|dir| parent == Path::new(dir)))
        })
    }

    fn placeholder() -> Self {
        // A record that is not an installed package (dpkg config-files): kept as written, never removed.
        Self {
            name: String::new(),
            version: String::new(),
            essential: true,
            provides: Vec::new(),
            depends: Vec::new(),
            files: Vec::new(),
            metadata_files: Vec::new(),
            auto_installed: Some(false),
        }
    }
}

/// One change to a database's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Write this content at this path.
    Write(PathBuf, Vec<u8>),
    /// Delete this path.
    Delete(PathBuf),
}

/// Why a package is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemovalReason {
    /// It was asked for (a package manager, a shell).
    Requested,
    /// Only removed packages depended on it.
    OnlyNeededByRemoved,
}

/// A database and its packages.
#[derive(Debug, Clone)]
pub struct PackageDb {
    /// The manager.
    pub kind: DbKind,
    /// The packages, in database order.
    pub packages: Vec<InstalledPackage>,
    /// The database file (relative).
    pub path: PathBuf,
    raw: Raw,
}

#[derive(Debug, Clone)]
enum Raw {
    /// dpkg `status`: each package's stanza as written.
    DpkgStatus(Vec<String>),
    /// dpkg `status.d/`: one file per package.
    DpkgStatusD,
    /// apk `installed`: each package's record as written.
    Apk(Vec<String>),
    /// RPM: the database bytes and each package's `hnum`.
    Rpm(Vec<u8>, Vec<i64>),
}

/// Splits `text` into blank-line separated blocks, keeping each as written.
fn blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The fields of a deb822 stanza (continuation lines joined with newlines).
fn fields(stanza: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in stanza.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(key) = &last
                && let Some(value) = fields.get_mut(key)
            {
                let value: &mut String = value;
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.insert(key.trim().to_owned(), value.trim().to_owned());
            last = Some(key.trim().to_owned());
        }
    }
    fields
}

/// `a (>= 1) | b, c:any` → [[a, b], [c]].
fn dpkg_depends(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alternative| {
                    let name = alternative.trim().split([' ', '(', '[']).next()?.trim();
                    let name = name.split(':').next().unwrap_or(name);
                    (!name.is_empty()).then(|| name.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .collect()
}

fn read(source: &dyn FileSource, path: &str) -> Result<Option<Vec<u8>>, Error> {
    match source.read(Path::new(path), MAX_DATABASE_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: format!("/{path}"),
            source,
        }),
    }
}

fn dpkg_package(
    stanza: &str,
    source: &dyn FileSource,
    names: &BTreeSet<PathBuf>,
) -> Option<InstalledPackage> {
    let fields = fields(stanza);
    let name = fields.get("Package")?.clone();
    if let Some(status) = fields.get("Status")
        && !status.split_whitespace().any(|word| word == "installed")
    {
        return None;
    }
    let architecture = fields.get("Architecture").cloned().unwrap_or_default();
    let mut depends = Vec::new();
    for key in ["Pre-Depends", "Depends"] {
        if let Some(value) = fields.get(key) {
            depends.extend(dpkg_depends(value));
        }
    }
    let mut provides = vec![name.clone()];
    if let Some(value) = fields.get("Provides") {
        provides.extend(dpkg_depends(value).into_iter().flatten());
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut metadata_files = Vec::new();
    let prefixes = [format!("{name}:{architecture}."), format!("{name}.")];
    for path in names {
        let Some(file_name) = path.file_name().map(|name| name.to_string_lossy()) else {
            continue;
        };
        if path.parent() == Some(Path::new(DPKG_INFO))
            && prefixes
                .iter()
                .any(|prefix| file_name.starts_with(prefix.as_str()))
        {
            // `foo.list` must not claim `foo.bar.list` (another package): check the suffix has no dot.
            let suffix = prefixes
                .iter()
                .find_map(|prefix| file_name.strip_prefix(prefix.as_str()))
                .unwrap_or("");
            if suffix.contains('.') {
                continue;
            }
            if suffix == "list"
                && let Ok(list) = source.read(path, MAX_DATABASE_BYTES)
            {
                files.extend(
                    String::from_utf8_lossy(&list)
                        .lines()
                        .map(|line| line.trim().trim_start_matches('/'))
                        // `/.` stands for the root, which no package owns alone.
                        .filter(|line| !line.is_empty() && *line != ".")
                        .map(PathBuf::from),
                );
            }
            metadata_files.push(path.clone());
        }
    }
    if let Some(conffiles) = fields.get("Conffiles") {
        for line in conffiles.lines() {
            if let Some(path) = line.split_whitespace().next() {
                let path = PathBuf::from(path.trim_start_matches('/'));
                if !files.contains(&path) {
                    files.push(path);
                }
            }
        }
    }
    Some(InstalledPackage {
        version: fields.get("Version").cloned().unwrap_or_default(),
        essential: fields.get("Essential").is_some_and(|value| value == "yes"),
        name,
        provides,
        depends,
        files,
        metadata_files,
        auto_installed: None,
    })
}

fn apk_package(record: &str) -> Option<InstalledPackage> {
    let mut name = None;
    let mut version = String::new();
    let mut provides = Vec::new();
    let mut depends = Vec::new();
    let mut files = Vec::new();
    let mut directory = String::new();
    let strip_version = |token: &str| -> String {
        token
            .split(['<', '>', '=', '~'])
            .next()
            .unwrap_or(token)
            .to_owned()
    };
    for line in record.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "P" => name = Some(value.to_owned()),
            "V" => version = value.to_owned(),
            "p" => provides.extend(value.split_whitespace().map(strip_version)),
            "D" => depends.extend(
                value
                    .split_whitespace()
                    .filter(|token| !token.starts_with('!'))
                    .map(|token| vec![strip_version(token)]),
            ),
            "F" => {
                directory = value.to_owned();
                files.push(PathBuf::from(value));
            }
            "R" => files.push(Path::new(&directory).join(value)),
            _ => {}
        }
    }
    let name = name?;
    provides.insert(0, name.clone());
    // File dependencies (`/bin/sh`) are met by the package owning the file.
    provides.extend(files.iter().map(|file| format!("/{}", file.display())));
    Some(InstalledPackage {
        name,
        version,
        essential: false,
        provides,
        depends,
        files,
        metadata_files: Vec::new(),
        auto_installed: None,
    })
}

fn rpm_package(blob: &[u8]) -> Option<InstalledPackage> {
    let values = header_entries(blob)?;
    let text = |tag| match values.get(&tag) {
        Some(HeaderValue::Text(text)) => Some(text.clone()),
        _ => None,
    };
    let texts = |tag| match values.get(&tag) {
        Some(HeaderValue::Texts(texts)) => texts.clone(),
        _ => Vec::new(),
    };
    let name = text(TAG_NAME)?;
    let version = match (text(TAG_VERSION), text(TAG_RELEASE)) {
        (Some(version), Some(release)) => format!("{version}-{release}"),
        (Some(version), None) => version,
        _ => String::new(),
    };
    let directories = texts(TAG_DIRNAMES);
    let indexes = match values.get(&TAG_DIRINDEXES) {
        Some(HeaderValue::Numbers(numbers)) => numbers.clone(),
        _ => Vec::new(),
    };
    let files: Vec<PathBuf> = texts(TAG_BASENAMES)
        .iter()
        .zip(indexes)
        .filter_map(|(base, index)| {
            let directory = directories.get(usize::try_from(index).ok()?)?;
            Some(PathBuf::from(
                format!("{directory}{base}").trim_start_matches('/'),
            ))
        })
        .collect();
    let mut provides = vec![name.clone()];
    provides.extend(texts(TAG_PROVIDENAME));
    provides.extend(files.iter().map(|file| format!("/{}", file.display())));
    let depends = texts(TAG_REQUIRENAME)
        .into_iter()
        // rpmlib(...) and config(...) describe rpm itself or the package's own files.
        .filter(|name| !name.starts_with("rpmlib(") && !name.starts_with("config("))
        .map(|name| vec![name])
        .collect();
    Some(InstalledPackage {
        name,
        version,
        essential: false,
        provides,
        depends,
        files,
        metadata_files: Vec::new(),
        auto_installed: None,
    })
}

/// apt's record of which packages it installed only as dependencies.
fn mark_auto_installed(
    source: &dyn FileSource,
    packages: &mut [InstalledPackage],
) -> Result<(), Error> {
    let Some(bytes) = read(source, APT_EXTENDED_STATES)? else {
        return Ok(());
    };
    let automatic: BTreeSet<String> = blocks(&String::from_utf8_lossy(&bytes))
        .iter()
        .map(|stanza| fields(stanza))
        .filter(|fields| {
            fields
                .get("Auto-Installed")
                .is_some_and(|value| value == "1")
        })
        .filter_map(|fields| fields.get("Package").cloned())
        .collect();
    for package in packages
        .iter_mut()
        .filter(|package| !package.name.is_empty())
    {
        package.auto_installed = Some(automatic.contains(&package.name));
    }
    Ok(())
}

/// A private copy of an RPM database, since SQLite reads files, not buffers.
fn rpm_connection(
    bytes: &[u8],
    path: &str,
) -> Result<(tempfile::NamedTempFile, rusqlite::Connection), Error> {
    let copy_failed = |source| Error::RpmCopy {
        path: format!("/{path}"),
        source,
    };
    let mut file = tempfile::NamedTempFile::new().map_err(copy_failed)?;
    std::io::Write::write_all(&mut file, bytes).map_err(copy_failed)?;
    let connection = rusqlite::Connection::open(file.path()).map_err(|source| Error::Rpm {
        path: format!("/{path}"),
        source,
    })?;
    Ok((file, connection))
}

impl PackageDb {
    /// Every package database the image holds (usually one).
    pub fn read_all(source: &dyn FileSource) -> Result<Vec<Self>, Error> {
        let mut databases = Vec::new();
        let names: BTreeSet<PathBuf> = source.files().into_iter().map(|file| file.path).collect();
        if let Some(bytes) = read(source, DPKG_STATUS)? {
            let stanzas = blocks(&String::from_utf8_lossy(&bytes));
            let packages = stanzas
                .iter()
                .map(|stanza| {
                    dpkg_package(stanza, source, &names)
                        .unwrap_or_else(InstalledPackage::placeholder)
                })
                .collect();
            let mut packages: Vec<InstalledPackage> = packages;
            mark_auto_installed(source, &mut packages)?;
            databases.push(Self {
                kind: DbKind::Dpkg,
                packages,
                path: PathBuf::from(DPKG_STATUS),
                raw: Raw::DpkgStatus(stanzas),
            });
        } else {
            let entries: Vec<&PathBuf> = names
                .iter()
                .filter(|path| path.parent() == Some(Path::new(DPKG_STATUS_D)))
                .collect();
            if !entries.is_empty() {
                let mut packages = Vec::new();
                for entry in entries {
                    let bytes =
                        source
                            .read(entry, MAX_DATABASE_BYTES)
                            .map_err(|source| Error::Read {
                                path: format!("/{}", entry.display()),
                                source,
                            })?;
                    for stanza in blocks(&String::from_utf8_lossy(&bytes)) {
                        if let Some(mut package) = dpkg_package(&stanza, source, &names) {
                            package.metadata_files.push(entry.clone());
                            packages.push(package);
                        }
                    }
                }
                databases.push(Self {
                    kind: DbKind::Dpkg,
                    packages,
                    path: PathBuf::from(DPKG_STATUS_D),
                    raw: Raw::DpkgStatusD,
                });
            }
        }
        if let Some(bytes) = read(source, APK_INSTALLED)? {
            let records = blocks(&String::from_utf8_lossy(&bytes));
            let packages = records
                .iter()
                .map(|record| apk_package(record).unwrap_or_else(InstalledPackage::placeholder))
                .collect();
            let mut packages: Vec<InstalledPackage> = packages;
            if let Some(world) = read(source, APK_WORLD)? {
                let wanted: BTreeSet<String> = String::from_utf8_lossy(&world)
                    .split_whitespace()
                    .map(|token| {
                        token
                            .split(['<', '>', '=', '~', '@'])
                            .next()
                            .unwrap_or(token)
                            .to_owned()
                    })
                    .collect();
                for package in packages
                    .iter_mut()
                    .filter(|package| !package.name.is_empty())
                {
                    package.auto_installed = Some(!wanted.contains(&package.name));
                }
            }
            databases.push(Self {
                kind: DbKind::Apk,
                packages,
                path: PathBuf::from(APK_INSTALLED),
                raw: Raw::Apk(records),
            });
        }
        if let Some(bytes) = read(source, sealcraft_inventory::rpm::DATABASE)? {
            let (_file, connection) = rpm_connection(&bytes, sealcraft_inventory::rpm::DATABASE)?;
            let fail = |error: rusqlite::Error| Error::Rpm {
                path: format!("/{}", sealcraft_inventory::rpm::DATABASE),
                source: error,
            };
            let mut statement = connection
                .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
                .map_err(fail)?;
            let rows: Vec<(i64, Vec<u8>)> = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(fail)?
                .collect::<Result<_, _>>()
                .map_err(fail)?;
            let mut packages = Vec::new();
            let mut numbers = Vec::new();
            for (number, blob) in rows {
                if let Some(package) = rpm_package(&blob) {
                    packages.push(package);
                    numbers.push(number);
                }
            }
            drop(statement);
            databases.push(Self {
                kind: DbKind::Rpm,
                packages,
                path: PathBuf::from(sealcraft_inventory::rpm::DATABASE),
                raw: Raw::Rpm(bytes, numbers),
            });
        }
        Ok(databases)
    }

    /// The packages to remove for `requested` names: those, and every package
    /// that only removed packages need (to a fixed point), as long as it was
    /// installed as a dependency or, where the image does not say, ships no
    /// command (a tool someone may use is never removed unasked). Essential
    /// dpkg packages are only removed when asked for by name.
    pub fn removal(&self, requested: &BTreeSet<String>) -> BTreeMap<usize, RemovalReason> {
        let mut removed: BTreeMap<usize, RemovalReason> = self
            .packages
            .iter()
            .enumerate()
            .filter(|(_, package)| !package.name.is_empty() && requested.contains(&package.name))
            .map(|(index, _)| (index, RemovalReason::Requested))
            .collect();
        // Who provides each name.
        let mut providers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, package) in self.packages.iter().enumerate() {
            for name in &package.provides {
                providers.entry(name.as_str()).or_default().push(index);
            }
        }
        let providers_of = |group: &Vec<String>| -> BTreeSet<usize> {
            group
                .iter()
                .flat_map(|name| providers.get(name.as_str()).cloned().unwrap_or_default())
                .collect()
        };
        loop {
            // Candidates: what removed packages depend on.
            let candidates: BTreeSet<usize> = removed
                .keys()
                .flat_map(|&index| self.packages[index].depends.iter().flat_map(providers_of))
                .filter(|index| !removed.contains_key(index))
                .filter(|&index| {
                    let package = &self.packages[index];
                    !package.essential
                        && !package.name.is_empty()
                        && match package.auto_installed {
                            Some(automatic) => automatic,
                            None => !package.ships_commands(),
                        }
                })
                .collect();
            let mut added = false;
            for candidate in candidates {
                // Still needed if some kept package has a dependency only it (among kept ones) satisfies.
                let needed = self.packages.iter().enumerate().any(|(index, package)| {
                    index != candidate
                        && !removed.contains_key(&index)
                        && package.depends.iter().any(|group| {
                            let satisfied: BTreeSet<usize> = providers_of(group)
                                .into_iter()
                                .filter(|provider| !removed.contains_key(provider))
                                .collect();
                            satisfied.contains(&candidate) && satisfied.len() == 1
                        })
                });
                if !needed {
                    removed.insert(candidate, RemovalReason::OnlyNeededByRemoved);
                    added = true;
                }
            }
            if !added {
                return removed;
            }
        }
    }

    /// The database files to write (`Some`) or delete (`None`) so that it lists
    /// every package but `removed`, each exactly as before.
    pub fn without(&self, removed: &BTreeSet<usize>) -> Result<Vec<FileChange>, Error> {
        let keep = |records: &[String]| -> Vec<u8> {
            let mut text = records
                .iter()
                .enumerate()
                .filter(|(index, _)| !removed.contains(index))
                .map(|(_, record)| record.as_str())
                .collect::<Vec<_>>()
                .join("\n\n");
            text.push_str("\n\n");
            text.into_bytes()
        };
        let mut changes: Vec<FileChange> = Vec::new();
        match &self.raw {
            Raw::DpkgStatus(stanzas) => {
                changes.push(FileChange::Write(self.path.clone(), keep(stanzas)))
            }
            Raw::Apk(records) => changes.push(FileChange::Write(self.path.clone(), keep(records))),
            Raw::DpkgStatusD => {}
            Raw::Rpm(bytes, numbers) => {
                let (file, connection) = rpm_connection(bytes, sealcraft_inventory::rpm::DATABASE)?;
                let fail = |error: rusqlite::Error| Error::Rpm {
                    path: format!("/{}", sealcraft_inventory::rpm::DATABASE),
                    source: error,
                };
                let doomed: Vec<i64> = removed
                    .iter()
                    .filter_map(|index| numbers.get(*index).copied())
                    .collect();
                let tables: Vec<String> = connection
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .and_then(|mut statement| {
                        statement
                            .query_map([], |row| row.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(fail)?;
                // Index tables reference Packages: their rows go first.
                let mut tables = tables;
                tables.sort_by_key(|table| table == "Packages");
                for table in tables {
                    let has_hnum = connection
                        .prepare(&format!(
                            "SELECT * FROM \"{}\" LIMIT 0",
                            table.replace('"', "\"\"")
                        ))
                        .map(|statement| statement.column_names().contains(&"hnum"))
                        .unwrap_or(false);
                    if !has_hnum {
                        continue;
                    }
                    for number in &doomed {
                        connection
                            .execute(
                                &format!(
                                    "DELETE FROM \"{}\" WHERE hnum = ?1",
                                    table.replace('"', "\"\"")
                                ),
                                [number],
                            )
                            .map_err(fail)?;
                    }
                }
                connection.execute_batch("VACUUM").map_err(fail)?;
                drop(connection);
                let rewritten = std::fs::read(file.path()).map_err(|error| Error::RpmCopy {
                    path: format!("/{}", sealcraft_inventory::rpm::DATABASE),
                    source: error,
                })?;
                changes.push(FileChange::Write(self.path.clone(), rewritten));
            }
        }
        for index in removed {
            for metadata in &self.packages[*index].metadata_files {
                changes.push(FileChange::Delete(metadata.clone()));
            }
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(BTreeMap<PathBuf, Vec<u8>>);

    /// The content the first change writes.
    fn written(changes: &[FileChange]) -> Vec<u8> {
        match &changes[0] {
            FileChange::Write(_, bytes) => bytes.clone(),
            FileChange::Delete(path) => panic!("{} deleted, not written", path.display()),
        }
    }

    impl FileSource for Files {
        fn files(&self) -> Vec<sealcraft_inventory::SourceFile> {
            self.0
                .iter()
                .map(|(path, bytes)| sealcraft_inventory::SourceFile {
                    path: path.clone(),
                    size: bytes.len() as u64,
                    mode: 0o644,
                    layer: None,
                })
                .collect()
        }
        fn read(&self, path: &Path, _limit: u64) -> std::io::Result<Vec<u8>> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "missing"))
        }
        fn read_at(&self, path: &Path, _offset: u64, _length: u64) -> std::io::Result<Vec<u8>> {
            self.read(path, 0)
        }
    }

    const STATUS: &str = "Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nDepends: libapt-pkg6.0 (>= 2.6.1), gpgv | gpgv2, libc6 (>= 2.34)\n\n\
Package: libapt-pkg6.0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.6.1\nDepends: libc6, zlib1g\n\n\
Package: gpgv\nStatus: install ok installed\nVersion: 2.2.40\nDepends: libc6\n\n\
Package: libc6\nStatus: install ok installed\nVersion: 2.36\n\n\
Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\nDepends: libc6\n\n\
Package: curl\nStatus: install ok installed\nVersion: 7.88\nDepends: zlib1g, libc6\n\n\
Package: dpkg\nEssential: yes\nStatus: install ok installed\nVersion: 1.21\nDepends: tar\nConffiles:\n /etc/dpkg/dpkg.cfg abc\n\n\
Package: tar\nEssential: yes\nStatus: install ok installed\nVersion: 1.34\n\n\
Package: old\nStatus: deinstall ok config-files\nVersion: 1\n";

    fn debian() -> Files {
        Files(BTreeMap::from([
            (PathBuf::from(DPKG_STATUS), STATUS.as_bytes().to_vec()),
            (
                PathBuf::from("var/lib/dpkg/info/apt.list"),
                b"/.\n/usr\n/usr/bin\n/usr/bin/apt\n".to_vec(),
            ),
            (
                PathBuf::from("var/lib/dpkg/info/apt.md5sums"),
                b"x  usr/bin/apt\n".to_vec(),
            ),
            (
                PathBuf::from("var/lib/dpkg/info/libapt-pkg6.0:amd64.list"),
                b"/usr/lib/libapt-pkg.so.6.0\n".to_vec(),
            ),
            (
                PathBuf::from("var/lib/dpkg/info/dpkg.list"),
                b"/usr/bin/dpkg\n".to_vec(),
            ),
            (
                PathBuf::from("var/lib/dpkg/info/dpkg.old.list"),
                b"/not/dpkgs\n".to_vec(),
            ),
        ]))
    }

    #[test]
    fn exclusive_dependencies_follow_removed_packages() {
        let files = debian();
        let databases = PackageDb::read_all(&files).unwrap();
        let database = &databases[0];
        assert_eq!(database.kind, DbKind::Dpkg);
        let names = |set: &BTreeMap<usize, RemovalReason>| -> Vec<String> {
            set.keys()
                .map(|index| database.packages[*index].name.clone())
                .collect()
        };
        let removed = database.removal(&BTreeSet::from(["apt".to_owned(), "dpkg".to_owned()]));
        // zlib1g stays for curl, libc6 for everyone; tar is Essential.
        assert_eq!(names(&removed), ["apt", "libapt-pkg6.0", "gpgv", "dpkg"]);
        assert_eq!(
            removed
                .values()
                .filter(|reason| **reason == RemovalReason::Requested)
                .count(),
            2
        );
        let apt = &database.packages[0];
        assert_eq!(
            apt.files,
            ["usr", "usr/bin", "usr/bin/apt"].map(PathBuf::from)
        );
        assert_eq!(
            database.packages[6].files,
            [
                PathBuf::from("usr/bin/dpkg"),
                PathBuf::from("etc/dpkg/dpkg.cfg")
            ]
        );
        assert_eq!(
            database.packages[1].files,
            [PathBuf::from("usr/lib/libapt-pkg.so.6.0")]
        );
    }

    #[test]
    fn the_rewritten_status_keeps_every_other_stanza_verbatim() {
        let files = debian();
        let database = &PackageDb::read_all(&files).unwrap()[0];
        let removed: BTreeSet<usize> = database
            .removal(&BTreeSet::from(["apt".to_owned(), "dpkg".to_owned()]))
            .into_keys()
            .collect();
        let changes = database.without(&removed).unwrap();
        assert!(
            matches!(&changes[0], FileChange::Write(path, _) if path == Path::new(DPKG_STATUS))
        );
        let status = String::from_utf8(written(&changes)).unwrap();
        let kept: Vec<&str> = status
            .split("\n\n")
            .filter(|block| !block.is_empty())
            .collect();
        assert_eq!(kept.len(), 5);
        for block in &kept {
            assert!(STATUS.contains(block), "{block:?} was changed");
        }
        assert!(!status.contains("Package: apt\n") && !status.contains("Package: dpkg\n"));
        assert!(status.contains("Package: old\nStatus: deinstall ok config-files"));
        let deleted: Vec<&PathBuf> = changes
            .iter()
            .filter_map(|change| match change {
                FileChange::Delete(path) => Some(path),
                FileChange::Write(..) => None,
            })
            .collect();
        assert_eq!(
            deleted,
            [
                "var/lib/dpkg/info/apt.list",
                "var/lib/dpkg/info/apt.md5sums",
                "var/lib/dpkg/info/libapt-pkg6.0:amd64.list",
                "var/lib/dpkg/info/dpkg.list"
            ]
            .map(PathBuf::from)
            .iter()
            .collect::<Vec<_>>()
        );
    }

    enum Value<'a> {
        Text(&'a str),
        Texts(&'a [&'a str]),
        Numbers(&'a [u32]),
    }

    /// An RPM header blob with the given entries.
    fn rpm_header(entries: &[(u32, Value<'_>)]) -> Vec<u8> {
        let (mut index, mut data) = (Vec::new(), Vec::new());
        for (tag, value) in entries {
            let (kind, count): (u32, usize) = match value {
                Value::Text(_) => (6, 1),
                Value::Texts(texts) => (8, texts.len()),
                Value::Numbers(numbers) => {
                    while data.len() % 4 != 0 {
                        data.push(0);
                    }
                    (4, numbers.len())
                }
            };
            index.extend(tag.to_be_bytes());
            index.extend(kind.to_be_bytes());
            index.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
            index.extend(u32::try_from(count).unwrap().to_be_bytes());
            match value {
                Value::Text(text) => data.extend(text.bytes().chain([0])),
                Value::Texts(texts) => texts
                    .iter()
                    .for_each(|text| data.extend(text.bytes().chain([0]))),
                Value::Numbers(numbers) => numbers
                    .iter()
                    .for_each(|number| data.extend(number.to_be_bytes())),
            }
        }
        let mut blob = u32::try_from(index.len() / 16)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        blob.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn rpm_packages_leave_every_table_of_the_database() {
        let package = |name: &str,
                       requires: &[&str],
                       provides: &[&str],
                       dirs: &[&str],
                       bases: &[&str],
                       indexes: &[u32]| {
            rpm_header(&[
                (TAG_NAME, Value::Text(name)),
                (TAG_VERSION, Value::Text("1.0")),
                (TAG_RELEASE, Value::Text("1.el9")),
                (TAG_REQUIRENAME, Value::Texts(requires)),
                (TAG_PROVIDENAME, Value::Texts(provides)),
                (TAG_DIRNAMES, Value::Texts(dirs)),
                (TAG_BASENAMES, Value::Texts(bases)),
                (TAG_DIRINDEXES, Value::Numbers(indexes)),
            ])
        };
        let rows = [
            package(
                "glibc",
                &[],
                &["libc.so.6()(64bit)"],
                &["/usr/lib64/"],
                &["libc.so.6"],
                &[0],
            ),
            package(
                "rpm",
                &["rpm-libs", "libc.so.6()(64bit)", "rpmlib(PayloadIsXz)"],
                &[],
                &["/usr/bin/"],
                &["rpm"],
                &[0],
            ),
            package(
                "rpm-libs",
                &["libc.so.6()(64bit)", "/bin/sh"],
                &["librpm.so.9()(64bit)"],
                &["/usr/lib64/"],
                &["librpm.so.9"],
                &[0],
            ),
            package(
                "dnf",
                &["librpm.so.9()(64bit)"],
                &[],
                &["/usr/bin/"],
                &["dnf"],
                &[0],
            ),
            package(
                "bash",
                &["libc.so.6()(64bit)"],
                &[],
                &["/usr/bin/", "/bin/"],
                &["bash", "sh"],
                &[0, 1],
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
                 CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES Packages(hnum));
                 CREATE TABLE Config (key TEXT, value TEXT);",
            )
            .unwrap();
        for (number, blob) in rows.iter().enumerate() {
            connection
                .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .unwrap();
            connection
                .execute(
                    "INSERT INTO Name VALUES (?1, ?2, 0)",
                    rusqlite::params![format!("p{number}"), number + 1],
                )
                .unwrap();
        }
        drop(connection);
        let files = Files(BTreeMap::from([(
            PathBuf::from(sealcraft_inventory::rpm::DATABASE),
            std::fs::read(&path).unwrap(),
        )]));
        let database = &PackageDb::read_all(&files).unwrap()[0];
        assert_eq!(database.kind, DbKind::Rpm);
        assert_eq!(
            database.packages[4].files,
            [PathBuf::from("usr/bin/bash"), PathBuf::from("bin/sh")]
        );
        let removed = database.removal(&BTreeSet::from(["rpm".to_owned(), "dnf".to_owned()]));
        let names: Vec<&str> = removed
            .keys()
            .map(|index| database.packages[*index].name.as_str())
            .collect();
        // rpm-libs goes with them; bash (which provides /bin/sh) is a command, and glibc stays for it.
        assert_eq!(names, ["rpm", "rpm-libs", "dnf"]);
        let changes = database.without(&removed.into_keys().collect()).unwrap();
        let rewritten = Files(BTreeMap::from([(
            PathBuf::from(sealcraft_inventory::rpm::DATABASE),
            written(&changes),
        )]));
        let after = &PackageDb::read_all(&rewritten).unwrap()[0];
        let left: Vec<&str> = after
            .packages
            .iter()
            .map(|package| package.name.as_str())
            .collect();
        assert_eq!(left, ["glibc", "bash"]);
        let check = dir.path().join("after.sqlite");
        std::fs::write(&check, written(&changes)).unwrap();
        let connection = rusqlite::Connection::open(&check).unwrap();
        let remaining: Vec<i64> = connection
            .prepare("SELECT hnum FROM Name ORDER BY hnum")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(remaining, [1, 5]);
    }

    #[test]
    fn apk_records_with_file_and_so_dependencies() {
        let installed = "P:musl\nV:1.2.4\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
P:apk-tools\nV:2.14\nD:musl>=1.2 so:libc.musl-x86_64.so.1 so:libcrypto.so.3\nF:sbin\nR:apk\n\n\
P:libcrypto3\nV:3.1\np:so:libcrypto.so.3=3\nD:so:libc.musl-x86_64.so.1\nF:usr/lib\nR:libcrypto.so.3\n\n\
P:busybox\nV:1.36\nD:so:libc.musl-x86_64.so.1\nF:bin\nR:busybox\n\n\
P:app\nV:1\nD:/bin/busybox\n";
        let files = Files(BTreeMap::from([(
            PathBuf::from(APK_INSTALLED),
            installed.as_bytes().to_vec(),
        )]));
        let database = &PackageDb::read_all(&files).unwrap()[0];
        assert_eq!(database.kind, DbKind::Apk);
        let removed = database.removal(&BTreeSet::from(["apk-tools".to_owned()]));
        let names: Vec<&str> = removed
            .keys()
            .map(|index| database.packages[*index].name.as_str())
            .collect();
        assert_eq!(names, ["apk-tools", "libcrypto3"]);
        assert_eq!(
            database.packages[1].files,
            [PathBuf::from("sbin"), PathBuf::from("sbin/apk")]
        );
        let changes = database.without(&removed.into_keys().collect()).unwrap();
        let text = String::from_utf8(written(&changes)).unwrap();
        assert!(
            text.starts_with("P:musl\n")
                && text.contains("P:busybox")
                && !text.contains("apk-tools")
        );
        // What the user asked for (world) stays even when only apk-tools needed it.
        let mut with_world = files.0.clone();
        with_world.insert(PathBuf::from(APK_WORLD), b"app\nlibcrypto3>=3\n".to_vec());
        let database = &PackageDb::read_all(&Files(with_world)).unwrap()[0];
        let removed = database.removal(&BTreeSet::from(["apk-tools".to_owned()]));
        assert_eq!(removed.len(), 1);
    }

    #[test]
    fn apt_marks_decide_for_tools() {
        let mut files = debian();
        // gpgv ships a command: without marks it stays; marked automatic it goes.
        files.0.insert(
            PathBuf::from("var/lib/dpkg/info/gpgv.list"),
            b"/usr/bin/gpgv\n".to_vec(),
        );
        let requested = BTreeSet::from(["apt".to_owned()]);
        let names = |files: &Files| -> Vec<String> {
            let database = &PackageDb::read_all(files).unwrap()[0];
            database
                .removal(&requested)
                .keys()
                .map(|index| database.packages[*index].name.clone())
                .collect()
        };
        assert_eq!(names(&files), ["apt", "libapt-pkg6.0"]);
        files.0.insert(
            PathBuf::from(APT_EXTENDED_STATES),
            b"Package: gpgv\nArchitecture: amd64\nAuto-Installed: 1\n\nPackage: libapt-pkg6.0\nAuto-Installed: 0\n".to_vec(),
        );
        // Marks are authoritative both ways: libapt-pkg6.0 was installed by hand here.
        assert_eq!(names(&files), ["apt", "gpgv"]);
    }
}
