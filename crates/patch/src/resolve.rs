//! Which package versions a patch installs.
//!
//! Each package to update moves to its candidate: the highest version the
//! configured suites offer for its architecture (as apt picks one when
//! every suite has the same priority). Then, to a fixed point, whatever
//! the new state no longer satisfies is fixed the way apt would fix it,
//! or the patch is refused:
//!
//! - a `Depends`/`Pre-Depends` relation of a changed package that nothing
//!   installed satisfies: an installed package of the name moves to its
//!   candidate, else a new package (by name, else a provider) is added;
//! - an installed package whose relation a change broke (`libfoo-dev`
//!   needing `libfoo1 (= old)`) moves to its candidate too;
//! - `Breaks` and `Conflicts` between the new state's packages: the
//!   package hit moves to its candidate, or the patch is refused (it
//!   would need a removal);
//! - `Multi-Arch: same` packages installed for several architectures move
//!   together, to one version.
//!
//! Nothing is ever removed and nothing moves to an older version.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use sealcraft_apt::PackageEntry;
use sealcraft_deb::Paragraph;
use sealcraft_deb::relations::{self, Alternative, Relation};
use sealcraft_vuln::version::parse_debian;

/// Why a set of updates cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No suite offers a version that high.
    #[error(
        "{package}: the fix needs {needed} or later, but the configured suites offer {}",
        best.as_deref().unwrap_or("no version of it")
    )]
    NoFixAvailable {
        /// The package.
        package: String,
        /// The version the fix needs.
        needed: String,
        /// The highest version offered.
        best: Option<String>,
    },
    /// A relation of the new state cannot be satisfied from the suites.
    #[error(
        "{package} {version} needs {relation}, which neither the image nor the suites can satisfy"
    )]
    Unsatisfiable {
        /// The package whose relation it is.
        package: String,
        /// Its version.
        version: String,
        /// The relation as written.
        relation: String,
    },
    /// An installed package would break and no update fixes it.
    #[error(
        "{package} {version} would stop working: it needs {relation}, which the update of {changed} no longer satisfies, and no version of it the suites offer does"
    )]
    WouldBreak {
        /// The installed package.
        package: String,
        /// Its version.
        version: String,
        /// Its relation.
        relation: String,
        /// The package whose update broke it.
        changed: String,
    },
    /// Two packages of the new state exclude each other; one would have to go.
    #[error("{0}")]
    WouldConflict(Box<Conflict>),
    /// A `Multi-Arch: same` package cannot move to one version on every architecture.
    #[error(
        "{package} is installed for {architectures} and must move to one version, but {version} is not offered for {missing}"
    )]
    MultiArchSkew {
        /// The package.
        package: String,
        /// Its installed architectures.
        architectures: String,
        /// The version wanted.
        version: String,
        /// The architecture without it.
        missing: String,
    },
}

/// Two packages that exclude each other (`Breaks` or `Conflicts`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{package} {version} {kind} {relation}, which {other} {other_version} matches; patching would have to remove a package"
)]
pub struct Conflict {
    /// The package declaring the relation.
    pub package: String,
    /// Its version.
    pub version: String,
    /// `Breaks` or `Conflicts`.
    pub kind: &'static str,
    /// The relation.
    pub relation: String,
    /// The package it hits.
    pub other: String,
    /// Its version.
    pub other_version: String,
}

/// Why a package changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "of")]
pub enum ChangeReason {
    /// It was asked for (a fix, or an update of everything).
    Requested,
    /// A changed package needs it (new or newer).
    Dependency(String),
    /// It would break otherwise (a relation on an old version, Breaks, Multi-Arch).
    Follows(String),
}

/// One package the patch installs.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The index entry installed.
    pub entry: &'a PackageEntry,
    /// The version it replaces (`None` for a new package).
    pub from: Option<String>,
    /// Why.
    pub reason: ChangeReason,
}

/// An installed package, as the resolver needs it.
#[derive(Debug, Clone)]
pub struct InstalledUnit {
    /// `Package`.
    pub name: String,
    /// `Architecture`.
    pub architecture: String,
    /// `Version`.
    pub version: String,
    /// `Multi-Arch`.
    pub multi_arch: Option<String>,
    /// `Pre-Depends` and `Depends`.
    pub depends: Vec<Relation>,
    /// `Breaks`.
    pub breaks: Vec<Relation>,
    /// `Conflicts`.
    pub conflicts: Vec<Relation>,
    /// `Provides`.
    pub provides: Vec<Alternative>,
}

impl InstalledUnit {
    /// From a status paragraph; malformed relation fields count as empty
    /// (dpkg accepted them once; the resolver checks only what changes).
    pub fn from_paragraph(paragraph: &Paragraph) -> Option<Self> {
        let field = |name: &str| {
            paragraph
                .get(name)
                .and_then(|value| relations::parse(value).ok())
                .unwrap_or_default()
        };
        let mut depends = field("Pre-Depends");
        depends.extend(field("Depends"));
        Some(Self {
            name: paragraph.single("Package")?.to_owned(),
            architecture: paragraph
                .single("Architecture")
                .unwrap_or_default()
                .to_owned(),
            version: paragraph.single("Version")?.to_owned(),
            multi_arch: paragraph.single("Multi-Arch").map(str::to_owned),
            depends,
            breaks: field("Breaks"),
            conflicts: field("Conflicts"),
            provides: field("Provides").into_iter().flatten().collect(),
        })
    }

    fn from_entry(entry: &PackageEntry) -> Self {
        let mut depends = entry.pre_depends.clone();
        depends.extend(entry.depends.iter().cloned());
        Self {
            name: entry.name.clone(),
            architecture: entry.architecture.clone(),
            version: entry.version.clone(),
            multi_arch: entry.multi_arch.clone(),
            depends,
            breaks: entry.breaks.clone(),
            conflicts: entry.conflicts.clone(),
            provides: entry.provides.clone(),
        }
    }
}

/// What to update.
#[derive(Debug, Clone)]
pub enum Request {
    /// These packages, each to at least this version (`None`: the candidate, if newer).
    Packages(BTreeMap<String, Option<String>>),
    /// Every installed package the suites offer a newer version of.
    Everything,
}

/// A request the image already satisfies, or cannot use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The package.
    pub package: String,
    /// Why nothing changes for it.
    pub reason: String,
}

/// The outcome of a resolution.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    /// What is installed, sorted by name and architecture.
    pub changes: Vec<Change<'a>>,
    /// Requests that need nothing.
    pub skipped: Vec<Skipped>,
}

fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse_debian(a).ok()?.cmp(&parse_debian(b).ok()?))
}

fn version_satisfies(constraint: Option<&(relations::Operator, String)>, version: &str) -> bool {
    match constraint {
        None => true,
        Some((operator, wanted)) => {
            compare(version, wanted).is_some_and(|order| operator.accepts(order))
        }
    }
}

type Key = (String, String);

struct Resolver<'a> {
    native: &'a str,
    by_name: BTreeMap<&'a str, Vec<&'a PackageEntry>>,
    providers: BTreeMap<&'a str, Vec<&'a PackageEntry>>,
    state: BTreeMap<Key, InstalledUnit>,
    installed: BTreeMap<Key, String>,
    changes: BTreeMap<Key, (&'a PackageEntry, ChangeReason)>,
    queue: Vec<Key>,
}

impl<'a> Resolver<'a> {
    /// The highest version offered of `name` that an `architecture` system installs.
    fn candidate(&self, name: &str, architecture: &str) -> Option<&'a PackageEntry> {
        self.by_name
            .get(name)?
            .iter()
            .copied()
            .find(|entry| entry.architecture == architecture || entry.architecture == "all")
    }

    /// The architecture a package installed as `unit_architecture` looks for its candidate in.
    fn lookup_architecture<'b>(&'b self, unit_architecture: &'b str) -> &'b str {
        if unit_architecture == "all" {
            self.native
        } else {
            unit_architecture
        }
    }

    /// Whether `unit` satisfies `alternative` for a dependent of `dependent_architecture`.
    fn unit_satisfies(
        &self,
        unit: &InstalledUnit,
        alternative: &Alternative,
        dependent_architecture: &str,
    ) -> bool {
        let dependent = self.lookup_architecture(dependent_architecture);
        let architecture_fits = |architecture: &str, multi_arch: Option<&str>| match alternative
            .architecture
            .as_deref()
        {
            None => {
                architecture == dependent || architecture == "all" || multi_arch == Some("foreign")
            }
            Some("any") => {
                matches!(multi_arch, Some("allowed" | "foreign"))
                    || architecture == dependent
                    || architecture == "all"
            }
            Some("native") => architecture == self.native || architecture == "all",
            Some(wanted) => architecture == wanted,
        };
        if unit.name == alternative.name
            && architecture_fits(&unit.architecture, unit.multi_arch.as_deref())
            && version_satisfies(alternative.version.as_ref(), &unit.version)
        {
            return true;
        }
        unit.provides.iter().any(|provided| {
            provided.name == alternative.name
                && architecture_fits(&unit.architecture, unit.multi_arch.as_deref())
                && match (&alternative.version, &provided.version) {
                    (None, _) => true,
                    // Only a versioned Provides satisfies a versioned relation.
                    (Some(_), None) => false,
                    (Some(constraint), Some((_, version))) => {
                        version_satisfies(Some(constraint), version)
                    }
                }
        })
    }

    fn satisfied(&self, relation: &Relation, dependent_architecture: &str) -> bool {
        relation.iter().any(|alternative| {
            self.state
                .values()
                .any(|unit| self.unit_satisfies(unit, alternative, dependent_architecture))
        })
    }

    /// Moves `key` to `entry`, and its other Multi-Arch: same architectures with it.
    fn set(
        &mut self,
        key: Key,
        entry: &'a PackageEntry,
        reason: ChangeReason,
    ) -> Result<(), ResolveError> {
        if self
            .changes
            .get(&key)
            .is_some_and(|(current, _)| current.version == entry.version)
        {
            return Ok(());
        }
        // Arch:all packages installed under the native key keep one record.
        self.state
            .insert(key.clone(), InstalledUnit::from_entry(entry));
        self.changes.insert(key.clone(), (entry, reason));
        self.queue.push(key.clone());
        if entry.multi_arch.as_deref() == Some("same") {
            let siblings: Vec<Key> = self
                .installed
                .keys()
                .filter(|(name, architecture)| *name == key.0 && *architecture != key.1)
                .cloned()
                .collect();
            for sibling in siblings {
                if self
                    .changes
                    .get(&sibling)
                    .is_some_and(|(current, _)| current.version == entry.version)
                {
                    continue;
                }
                let same = self.by_name.get(key.0.as_str()).and_then(|entries| {
                    entries.iter().copied().find(|other| {
                        other.architecture == sibling.1 && other.version == entry.version
                    })
                });
                let Some(same) = same else {
                    let architectures: Vec<&str> = self
                        .installed
                        .keys()
                        .filter(|(name, _)| *name == key.0)
                        .map(|(_, architecture)| architecture.as_str())
                        .collect();
                    return Err(ResolveError::MultiArchSkew {
                        package: key.0.clone(),
                        architectures: architectures.join(", "),
                        version: entry.version.clone(),
                        missing: sibling.1.clone(),
                    });
                };
                self.set(sibling, same, ChangeReason::Follows(key.0.clone()))?;
            }
        }
        Ok(())
    }

    /// Moves the installed `key` to its candidate if that is newer; whether it moved.
    fn upgrade(&mut self, key: &Key, reason: ChangeReason) -> Result<bool, ResolveError> {
        let Some(current) = self.state.get(key) else {
            return Ok(false);
        };
        let Some(candidate) = self.candidate(&key.0, self.lookup_architecture(&key.1)) else {
            return Ok(false);
        };
        if compare(&candidate.version, &current.version) != Some(Ordering::Greater) {
            return Ok(false);
        }
        self.set(key.clone(), candidate, reason)?;
        Ok(true)
    }

    /// Makes `relation` of `dependent` hold by upgrading or adding a package.
    fn satisfy(
        &mut self,
        relation: &Relation,
        dependent: &InstalledUnit,
    ) -> Result<(), ResolveError> {
        let architecture = self.lookup_architecture(&dependent.architecture).to_owned();
        for alternative in relation {
            // An installed package of that name, moved to its candidate.
            let named: Vec<Key> = self
                .state
                .keys()
                .filter(|(name, _)| *name == alternative.name)
                .cloned()
                .collect();
            for key in &named {
                let candidate = self.candidate(&key.0, self.lookup_architecture(&key.1));
                if let Some(candidate) = candidate
                    && self.unit_satisfies(
                        &InstalledUnit::from_entry(candidate),
                        alternative,
                        &architecture,
                    )
                    && compare(&candidate.version, &self.state[key].version)
                        == Some(Ordering::Greater)
                {
                    self.set(
                        key.clone(),
                        candidate,
                        ChangeReason::Dependency(dependent.name.clone()),
                    )?;
                    return Ok(());
                }
            }
            if !named.is_empty() {
                continue;
            }
            // A new package of that name.
            let wanted_architecture = match alternative.architecture.as_deref() {
                None | Some("any") => architecture.clone(),
                Some("native") => self.native.to_owned(),
                Some(other) => other.to_owned(),
            };
            if let Some(candidate) = self.candidate(&alternative.name, &wanted_architecture)
                && self.unit_satisfies(
                    &InstalledUnit::from_entry(candidate),
                    alternative,
                    &architecture,
                )
            {
                let key = (candidate.name.clone(), candidate.architecture.clone());
                self.set(
                    key,
                    candidate,
                    ChangeReason::Dependency(dependent.name.clone()),
                )?;
                return Ok(());
            }
            // A new package that provides it: the first provider's candidate that does.
            let providers: Vec<&str> = self
                .providers
                .get(alternative.name.as_str())
                .map(|entries| {
                    let mut names: Vec<&str> =
                        entries.iter().map(|entry| entry.name.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    names
                })
                .unwrap_or_default();
            for provider in providers {
                if self.state.keys().any(|(name, _)| name == provider) {
                    continue;
                }
                if let Some(candidate) = self.candidate(provider, &wanted_architecture)
                    && self.unit_satisfies(
                        &InstalledUnit::from_entry(candidate),
                        alternative,
                        &architecture,
                    )
                {
                    let key = (candidate.name.clone(), candidate.architecture.clone());
                    self.set(
                        key,
                        candidate,
                        ChangeReason::Dependency(dependent.name.clone()),
                    )?;
                    return Ok(());
                }
            }
        }
        Err(ResolveError::Unsatisfiable {
            package: dependent.name.clone(),
            version: dependent.version.clone(),
            relation: describe(relation),
        })
    }

    fn check(&mut self, key: &Key) -> Result<(), ResolveError> {
        let Some(unit) = self.state.get(key).cloned() else {
            return Ok(());
        };
        for relation in &unit.depends {
            if !self.satisfied(relation, &unit.architecture) {
                self.satisfy(relation, &unit)?;
            }
        }
        // Installed packages whose relations the change broke.
        let others: Vec<Key> = self
            .state
            .keys()
            .filter(|other| *other != key)
            .cloned()
            .collect();
        for other in &others {
            let dependent = self.state[other].clone();
            for relation in &dependent.depends {
                let involves = relation.iter().any(|alternative| {
                    alternative.name == unit.name
                        || unit
                            .provides
                            .iter()
                            .any(|provided| provided.name == alternative.name)
                });
                if involves && !self.satisfied(relation, &dependent.architecture) {
                    if !self.changes.contains_key(other)
                        && self.upgrade(other, ChangeReason::Follows(unit.name.clone()))?
                    {
                        break;
                    }
                    // A new version of the dependent that still needs more is satisfied in its own check.
                    if self.changes.contains_key(other) {
                        continue;
                    }
                    return Err(ResolveError::WouldBreak {
                        package: dependent.name.clone(),
                        version: dependent.version.clone(),
                        relation: describe(relation),
                        changed: unit.name.clone(),
                    });
                }
            }
        }
        // Breaks and Conflicts in both directions.
        for other in &others {
            let Some(other_unit) = self.state.get(other).cloned() else {
                continue;
            };
            if other_unit.name == unit.name {
                continue;
            }
            for (declarer, target, target_key) in
                [(&unit, &other_unit, other), (&other_unit, &unit, key)]
            {
                for (kind, relations) in [
                    ("breaks", &declarer.breaks),
                    ("conflicts with", &declarer.conflicts),
                ] {
                    for relation in relations {
                        for alternative in relation {
                            if !excludes(alternative, target) {
                                continue;
                            }
                            let target_key = target_key.clone();
                            if !self.changes.contains_key(&target_key)
                                && self.upgrade(
                                    &target_key,
                                    ChangeReason::Follows(declarer.name.clone()),
                                )?
                                && !excludes(alternative, &self.state[&target_key])
                            {
                                continue;
                            }
                            return Err(ResolveError::WouldConflict(Box::new(Conflict {
                                package: declarer.name.clone(),
                                version: declarer.version.clone(),
                                kind,
                                relation: alternative.to_string(),
                                other: target.name.clone(),
                                other_version: target.version.clone(),
                            })));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether `alternative` (of Breaks or Conflicts) hits `unit`.
fn excludes(alternative: &Alternative, unit: &InstalledUnit) -> bool {
    (unit.name == alternative.name
        && version_satisfies(alternative.version.as_ref(), &unit.version))
        || (alternative.version.is_none()
            && unit
                .provides
                .iter()
                .any(|provided| provided.name == alternative.name))
}

fn describe(relation: &Relation) -> String {
    relation
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Resolves `request` against the installed packages and the suites' offers.
pub fn resolve<'a>(
    installed: &[InstalledUnit],
    offered: &'a [PackageEntry],
    native: &'a str,
    request: &Request,
) -> Result<Resolution<'a>, ResolveError> {
    let mut by_name: BTreeMap<&str, Vec<&PackageEntry>> = BTreeMap::new();
    let mut providers: BTreeMap<&str, Vec<&PackageEntry>> = BTreeMap::new();
    for entry in offered {
        if parse_debian(&entry.version).is_err() {
            continue;
        }
        by_name.entry(entry.name.as_str()).or_default().push(entry);
        for provided in &entry.provides {
            providers
                .entry(provided.name.as_str())
                .or_default()
                .push(entry);
        }
    }
    for entries in by_name.values_mut() {
        // Highest first; among equal versions, the earlier suite's.
        entries.sort_by(|a, b| {
            compare(&b.version, &a.version)
                .unwrap_or(Ordering::Equal)
                .then(a.suite.cmp(&b.suite))
        });
    }
    let mut resolver = Resolver {
        native,
        by_name,
        providers,
        state: installed
            .iter()
            .map(|unit| ((unit.name.clone(), unit.architecture.clone()), unit.clone()))
            .collect(),
        installed: installed
            .iter()
            .map(|unit| {
                (
                    (unit.name.clone(), unit.architecture.clone()),
                    unit.version.clone(),
                )
            })
            .collect(),
        changes: BTreeMap::new(),
        queue: Vec::new(),
    };
    let mut skipped = Vec::new();
    let wanted: Vec<(String, Option<String>)> = match request {
        Request::Packages(packages) => packages
            .iter()
            .map(|(name, min)| (name.clone(), min.clone()))
            .collect(),
        Request::Everything => {
            let names: BTreeSet<&String> = installed.iter().map(|unit| &unit.name).collect();
            names.into_iter().map(|name| (name.clone(), None)).collect()
        }
    };
    for (name, minimum) in wanted {
        let keys: Vec<Key> = resolver
            .installed
            .keys()
            .filter(|(installed_name, _)| *installed_name == name)
            .cloned()
            .collect();
        if keys.is_empty() {
            skipped.push(Skipped {
                package: name.clone(),
                reason: "not installed".into(),
            });
            continue;
        }
        for key in keys {
            let current = resolver.state[&key].version.clone();
            if let Some(minimum) = &minimum
                && compare(&current, minimum).is_some_and(|order| order != Ordering::Less)
            {
                skipped.push(Skipped {
                    package: name.clone(),
                    reason: format!("{current} is installed, the fix needs {minimum}"),
                });
                continue;
            }
            let candidate = resolver.candidate(&key.0, resolver.lookup_architecture(&key.1));
            if let Some(minimum) = &minimum
                && candidate.is_none_or(|candidate| {
                    compare(&candidate.version, minimum) == Some(Ordering::Less)
                })
            {
                return Err(ResolveError::NoFixAvailable {
                    package: name.clone(),
                    needed: minimum.clone(),
                    best: candidate.map(|candidate| candidate.version.clone()),
                });
            }
            let Some(candidate) = candidate else {
                continue;
            };
            if compare(&candidate.version, &current) != Some(Ordering::Greater) {
                if minimum.is_some() {
                    skipped.push(Skipped {
                        package: name.clone(),
                        reason: format!("{current} is installed and is the newest offered"),
                    });
                }
                continue;
            }
            if !resolver.changes.contains_key(&key) {
                resolver.set(key, candidate, ChangeReason::Requested)?;
            }
        }
    }
    while let Some(key) = resolver.queue.pop() {
        resolver.check(&key)?;
    }
    let mut changes: Vec<Change<'a>> = resolver
        .changes
        .iter()
        .map(|(key, (entry, reason))| Change {
            entry,
            from: resolver.installed.get(key).cloned(),
            reason: reason.clone(),
        })
        .collect();
    changes.sort_by(|a, b| {
        (&a.entry.name, &a.entry.architecture).cmp(&(&b.entry.name, &b.entry.architecture))
    });
    Ok(Resolution { changes, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, fields: &str) -> PackageEntry {
        let text = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n{fields}",
            "0".repeat(64)
        );
        let (mut entries, skipped) = sealcraft_apt::index::parse(&text, 0);
        assert!(skipped.is_empty(), "{skipped:?}");
        entries.remove(0)
    }

    fn installed(name: &str, version: &str, fields: &str) -> InstalledUnit {
        let text = format!(
            "Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n{fields}"
        );
        InstalledUnit::from_paragraph(&sealcraft_deb::deb822::parse(&text)[0]).unwrap()
    }

    fn request(pairs: &[(&str, &str)]) -> Request {
        Request::Packages(
            pairs
                .iter()
                .map(|(name, min)| ((*name).to_owned(), Some((*min).to_owned())))
                .collect(),
        )
    }

    fn names(resolution: &Resolution<'_>) -> Vec<String> {
        resolution
            .changes
            .iter()
            .map(|change| format!("{} {}", change.entry.name, change.entry.version))
            .collect()
    }

    fn on(architecture: &str, text: &str) -> String {
        text.replace(
            "Architecture: amd64",
            &format!("Architecture: {architecture}"),
        )
    }

    #[test]
    fn multi_arch_same_packages_move_together_or_not_at_all() {
        let unit = |architecture: &str| {
            let text = on(
                architecture,
                "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.17-1\nArchitecture: amd64\nMulti-Arch: same\n",
            );
            InstalledUnit::from_paragraph(&sealcraft_deb::deb822::parse(&text)[0]).unwrap()
        };
        let offer = |architecture: &str| {
            let text = on(
                architecture,
                &format!(
                    "Package: libssl3\nVersion: 3.0.22-1\nArchitecture: amd64\nMulti-Arch: same\nFilename: pool/libssl3_{architecture}.deb\nSize: 1\nSHA256: {}\n",
                    "0".repeat(64)
                ),
            );
            sealcraft_apt::index::parse(&text, 0).0.remove(0)
        };
        let image = [unit("amd64"), unit("i386")];
        let both = [offer("amd64"), offer("i386")];
        let resolution =
            resolve(&image, &both, "amd64", &request(&[("libssl3", "3.0.22-1")])).unwrap();
        let moved: Vec<String> = resolution
            .changes
            .iter()
            .map(|change| format!("{} {}", change.entry.architecture, change.entry.version))
            .collect();
        assert_eq!(moved, ["amd64 3.0.22-1", "i386 3.0.22-1"]);
        let only_native = [offer("amd64")];
        let error = resolve(
            &image,
            &only_native,
            "amd64",
            &request(&[("libssl3", "3.0.22-1")]),
        )
        .unwrap_err();
        assert!(
            matches!(error, ResolveError::MultiArchSkew { ref missing, .. } if missing == "i386"),
            "{error}"
        );
    }

    #[test]
    fn a_fix_pulls_what_its_new_version_needs_and_what_pinned_the_old_one() {
        let image = [
            installed("libssl3", "3.0.11-1", "Depends: libc6 (>= 2.34)\n"),
            installed("openssl", "3.0.11-1", "Depends: libssl3 (>= 3.0.11-1)\n"),
            installed("libssl-dev", "3.0.11-1", "Depends: libssl3 (= 3.0.11-1)\n"),
            installed("libc6", "2.36-9", ""),
        ];
        let offered = [
            entry("libssl3", "3.0.11-1", "Depends: libc6 (>= 2.34)\n"),
            entry(
                "libssl3",
                "3.0.17-1",
                "Depends: libc6 (>= 2.36-9+deb12u1), libzstd1\n",
            ),
            entry("libssl-dev", "3.0.17-1", "Depends: libssl3 (= 3.0.17-1)\n"),
            entry("libc6", "2.36-9+deb12u7", ""),
            entry("libzstd1", "1.5.4-2", "Depends: libc6 (>= 2.14)\n"),
        ];
        let resolution = resolve(
            &image,
            &offered,
            "amd64",
            &request(&[("libssl3", "3.0.12-1")]),
        )
        .unwrap();
        assert_eq!(
            names(&resolution),
            [
                "libc6 2.36-9+deb12u7",
                "libssl-dev 3.0.17-1",
                "libssl3 3.0.17-1",
                "libzstd1 1.5.4-2"
            ]
        );
        let reasons: BTreeMap<&str, &ChangeReason> = resolution
            .changes
            .iter()
            .map(|change| (change.entry.name.as_str(), &change.reason))
            .collect();
        assert_eq!(reasons["libssl3"], &ChangeReason::Requested);
        assert_eq!(
            reasons["libzstd1"],
            &ChangeReason::Dependency("libssl3".into())
        );
        assert_eq!(
            reasons["libssl-dev"],
            &ChangeReason::Follows("libssl3".into())
        );
        assert!(
            resolution
                .changes
                .iter()
                .any(|change| change.entry.name == "libzstd1" && change.from.is_none())
        );
    }

    #[test]
    fn what_cannot_be_satisfied_is_refused_with_its_reason() {
        let image = [
            installed("curl", "7.88.1-10", "Depends: libcurl4 (= 7.88.1-10)\n"),
            installed("libcurl4", "7.88.1-10", ""),
        ];
        let needs_missing = [entry(
            "libcurl4",
            "7.88.1-10+deb12u5",
            "Depends: libnghttp3-9\n",
        )];
        let error = resolve(
            &image,
            &needs_missing,
            "amd64",
            &request(&[("libcurl4", "7.88.1-10+deb12u1")]),
        )
        .unwrap_err();
        assert!(
            matches!(error, ResolveError::Unsatisfiable { ref relation, .. } if relation == "libnghttp3-9"),
            "{error}"
        );

        let pins_old = [entry("libcurl4", "7.88.1-10+deb12u5", "")];
        let error = resolve(
            &image,
            &pins_old,
            "amd64",
            &request(&[("libcurl4", "7.88.1-10+deb12u1")]),
        )
        .unwrap_err();
        assert!(
            matches!(error, ResolveError::WouldBreak { ref package, .. } if package == "curl"),
            "{error}"
        );

        let too_old = [entry("libcurl4", "7.88.1-10+deb12u1", "")];
        let error = resolve(
            &image,
            &too_old,
            "amd64",
            &request(&[("libcurl4", "7.88.1-10+deb12u5")]),
        )
        .unwrap_err();
        assert_eq!(
            error,
            ResolveError::NoFixAvailable {
                package: "libcurl4".into(),
                needed: "7.88.1-10+deb12u5".into(),
                best: Some("7.88.1-10+deb12u1".into())
            }
        );

        let conflicting = [entry(
            "libcurl4",
            "7.88.1-10+deb12u5",
            "Breaks: tar (<< 2)\n",
        )];
        let image = [
            installed("libcurl4", "7.88.1-10", ""),
            installed("tar", "1.34", ""),
        ];
        let error = resolve(
            &image,
            &conflicting,
            "amd64",
            &request(&[("libcurl4", "7.88.1-10+deb12u1")]),
        )
        .unwrap_err();
        assert!(
            matches!(error, ResolveError::WouldConflict(ref conflict) if conflict.other == "tar"),
            "{error}"
        );
    }

    #[test]
    fn alternatives_provides_and_already_fixed_packages() {
        let image = [
            installed("app", "1", ""),
            installed("mawk", "1.3.4", "Provides: awk\n"),
        ];
        let offered = [
            entry(
                "app",
                "2",
                "Depends: awk | gawk, default-mta | mail-transport-agent\n",
            ),
            entry(
                "exim4-daemon-light",
                "4.96",
                "Provides: mail-transport-agent\n",
            ),
            entry("mawk", "1.3.4", "Provides: awk\n"),
        ];
        let resolution = resolve(
            &image,
            &offered,
            "amd64",
            &request(&[("app", "2"), ("mawk", "1.3.4")]),
        )
        .unwrap();
        assert_eq!(names(&resolution), ["app 2", "exim4-daemon-light 4.96"]);
        assert_eq!(resolution.skipped.len(), 1, "{:?}", resolution.skipped);
        let everything = resolve(&image, &offered, "amd64", &Request::Everything).unwrap();
        assert_eq!(names(&everything), ["app 2", "exim4-daemon-light 4.96"]);
    }
}
