//! `Packages` indexes: one paragraph per package version a suite offers,
//! with its relationships, where its `.deb` is, and the `.deb`'s size and
//! SHA-256 (what ties the package to the signed Release file).

use sealcraft_deb::relations::{self, Alternative, Relation};
use sealcraft_deb::{Paragraph, deb822};

/// One package version a suite offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEntry {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture` (`amd64`, `all`, …).
    pub architecture: String,
    /// `Multi-Arch` (`same`, `foreign`, `allowed`), when given.
    pub multi_arch: Option<String>,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Source` name, when it differs from the package name (with its version, when given).
    pub source: Option<(String, Option<String>)>,
    /// `Pre-Depends`.
    pub pre_depends: Vec<Relation>,
    /// `Depends`.
    pub depends: Vec<Relation>,
    /// `Breaks`.
    pub breaks: Vec<Relation>,
    /// `Conflicts`.
    pub conflicts: Vec<Relation>,
    /// `Provides` (each with an optional `= version`).
    pub provides: Vec<Alternative>,
    /// `Filename`, relative to the archive root.
    pub filename: String,
    /// `Size` of the `.deb`.
    pub size: u64,
    /// `SHA256` of the `.deb`.
    pub sha256: String,
    /// Which of the repository's suites offers it.
    pub suite: usize,
}

/// A Packages paragraph that cannot be used; the rest of the index still is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// `Package`, when it has one.
    pub name: String,
    /// Why it was skipped.
    pub reason: EntryProblem,
}

/// What makes a Packages paragraph unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// A field every entry has is missing.
    #[error("no {0}")]
    Missing(&'static str),
    /// `SHA256` is not 64 hex digits.
    #[error("SHA256 is not a sha256 digest")]
    BadSha256,
    /// `Size` is not a number.
    #[error("Size is not a number")]
    BadSize,
    /// A relationship field does not parse.
    #[error("{field}")]
    BadRelation {
        /// The field.
        field: &'static str,
        /// Why.
        #[source]
        source: relations::RelationError,
    },
}

fn entry(paragraph: &Paragraph, suite: usize) -> Result<PackageEntry, EntryProblem> {
    let field = |name: &'static str| {
        paragraph
            .single(name)
            .map(str::to_owned)
            .ok_or(EntryProblem::Missing(name))
    };
    let relations = |field: &'static str| -> Result<Vec<Relation>, EntryProblem> {
        paragraph
            .get(field)
            .map(relations::parse)
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|source| EntryProblem::BadRelation { field, source })
    };
    let sha256 = field("SHA256")?.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.chars().all(|ch| ch.is_ascii_hexdigit()) {
        return Err(EntryProblem::BadSha256);
    }
    let name = field("Package")?;
    let source = paragraph
        .single("Source")
        .map(|text| match text.split_once('(') {
            Some((source, version)) => (
                source.trim().to_owned(),
                Some(version.trim_end_matches(')').trim().to_owned()),
            ),
            None => (text.to_owned(), None),
        });
    Ok(PackageEntry {
        version: field("Version")?,
        architecture: field("Architecture")?,
        multi_arch: paragraph.single("Multi-Arch").map(str::to_owned),
        essential: paragraph
            .single("Essential")
            .is_some_and(|value| value.eq_ignore_ascii_case("yes")),
        source,
        pre_depends: relations("Pre-Depends")?,
        depends: relations("Depends")?,
        breaks: relations("Breaks")?,
        conflicts: relations("Conflicts")?,
        provides: relations("Provides")?.into_iter().flatten().collect(),
        filename: field("Filename")?,
        size: field("Size")?.parse().map_err(|_| EntryProblem::BadSize)?,
        sha256,
        suite,
        name,
    })
}

/// Indexes larger than this are parsed in two halves on two threads
/// (Debian's main index is ~50 MB, and parsing it is most of opening a suite).
const SPLIT_ABOVE: usize = 4 << 20;

/// Every usable entry of an index's text, and the paragraphs skipped, in index order.
pub fn parse(text: &str, suite: usize) -> (Vec<PackageEntry>, Vec<SkippedEntry>) {
    let middle = text.len() / 2;
    let split = (text.len() > SPLIT_ABOVE)
        .then(|| {
            text[middle..]
                .find("\n\n")
                .map(|offset| middle + offset + 2)
        })
        .flatten();
    let Some(split) = split else {
        return parse_part(text, suite);
    };
    let (first, second) = text.split_at(split);
    let (mut entries, mut skipped, (more_entries, more_skipped)) = std::thread::scope(|scope| {
        let later = scope.spawn(|| parse_part(second, suite));
        let (entries, skipped) = parse_part(first, suite);
        let later = later
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (entries, skipped, later)
    });
    entries.extend(more_entries);
    skipped.extend(more_skipped);
    (entries, skipped)
}

/// The fields an entry is made of; the rest (descriptions, tags, …) is never stored.
const FIELDS: [&str; 14] = [
    "Package",
    "Version",
    "Architecture",
    "Multi-Arch",
    "Essential",
    "Source",
    "Pre-Depends",
    "Depends",
    "Breaks",
    "Conflicts",
    "Provides",
    "Filename",
    "Size",
    "SHA256",
];

fn parse_part(text: &str, suite: usize) -> (Vec<PackageEntry>, Vec<SkippedEntry>) {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let keep = |name: &str| FIELDS.iter().any(|field| field.eq_ignore_ascii_case(name));
    for paragraph in deb822::parse_selected(text, keep) {
        match entry(&paragraph, suite) {
            Ok(entry) => entries.push(entry),
            Err(reason) => skipped.push(SkippedEntry {
                name: paragraph.single("Package").unwrap_or("").to_owned(),
                reason,
            }),
        }
    }
    (entries, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_with_relations() {
        let text = "Package: libssl3\nSource: openssl\nVersion: 3.0.17-1~deb12u2\nArchitecture: amd64\nMulti-Arch: same\nDepends: libc6 (>= 2.34)\nFilename: pool/updates/main/o/openssl/libssl3_3.0.17-1~deb12u2_amd64.deb\nSize: 2027220\nSHA256: 4b3e5e3b0f2f5f1ac9c7f6c3a0f6d8e5b6a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5\n\nPackage: libssh2-1\nSource: libssh2 (1.10.0-3)\nVersion: 1.10.0-3+b1\nArchitecture: amd64\nFilename: pool/x.deb\nSize: 1\nSHA256: 4b3e5e3b0f2f5f1ac9c7f6c3a0f6d8e5b6a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5\nProvides: libssh2 (= 1.10)\n\nPackage: broken\nVersion: 1\n";
        let (entries, skipped) = parse(text, 2);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].multi_arch.as_deref(), Some("same"));
        assert_eq!(entries[0].depends[0][0].name, "libc6");
        assert_eq!(
            entries[1].source,
            Some(("libssh2".into(), Some("1.10.0-3".into())))
        );
        assert_eq!(entries[1].provides[0].to_string(), "libssh2 (= 1.10)");
        assert_eq!(entries[1].suite, 2);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].name, "broken");
    }

    #[test]
    fn reading_only_the_entry_fields_changes_no_entry() {
        let text = "Package: app\nVersion: 2\nArchitecture: amd64\nDescription: an app\n with a long\n .\n description\nDepends: libc6 (>= 2.36),\n libssl3 (>= 3.0.0)\nTag: role::program\nFilename: pool/app.deb\nSize: 10\nSHA256: 4b3e5e3b0f2f5f1ac9c7f6c3a0f6d8e5b6a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5\n\nDescription: only a description\n\n";
        let full: Vec<Result<PackageEntry, EntryProblem>> = deb822::parse(text)
            .iter()
            .map(|paragraph| entry(paragraph, 0))
            .collect();
        let (entries, skipped) = parse_part(text, 0);
        assert_eq!(full.len(), 2);
        assert_eq!(full[0].as_ref().unwrap(), &entries[0]);
        assert_eq!(
            entries[0].depends.len(),
            2,
            "a folded Depends keeps its continuation"
        );
        assert_eq!(
            skipped.len(),
            1,
            "a paragraph of dropped fields is still reported"
        );
        assert_eq!(full[1].as_ref().unwrap_err(), &skipped[0].reason);
    }

    #[test]
    fn a_large_index_parses_the_same_in_two_halves() {
        let mut text = String::new();
        let mut number = 0;
        while text.len() <= SPLIT_ABOVE + 1000 {
            text.push_str(&format!(
                "Package: p{number}\nVersion: 1.{number}\nArchitecture: amd64\nDepends: libc6 (>= 2.{number})\nFilename: pool/p{number}.deb\nSize: {number}\nSHA256: {:064x}\n\n",
                number
            ));
            number += 1;
        }
        text.push_str("Package: broken\nVersion: 1\n");
        let (whole, whole_skipped) = parse_part(&text, 0);
        let (split, split_skipped) = parse(&text, 0);
        assert_eq!(whole, split);
        assert_eq!(whole_skipped, split_skipped);
        assert_eq!(split.len(), number);
        assert_eq!(split.last().unwrap().name, format!("p{}", number - 1));
    }
}
