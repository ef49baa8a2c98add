//! A suite's `Release` file, once its signature verified: what it is
//! (suite, codename, dates), and the size and SHA-256 of every index it
//! lists, which is all that ties the indexes to the signature.

use std::collections::BTreeMap;

use sealcraft_deb::deb822;

/// One index the Release file vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// A verified Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Suite:` (`oldstable`).
    pub suite: Option<String>,
    /// `Codename:` (`bookworm`).
    pub codename: Option<String>,
    /// `Date:` as Unix seconds.
    pub date: Option<i64>,
    /// `Valid-Until:` as Unix seconds.
    pub valid_until: Option<i64>,
    /// `Acquire-By-Hash: yes`: indexes can be fetched by their digest.
    pub by_hash: bool,
    /// Components it has.
    pub components: Vec<String>,
    /// Architectures it has.
    pub architectures: Vec<String>,
    /// `No-Support-for-Architecture-all: Packages`: arch:all packages are
    /// listed in every binary-<arch> index instead of a binary-all one.
    pub all_in_arch_indexes: bool,
    /// Index path (relative to the suite's directory) → size and SHA-256.
    pub sha256: BTreeMap<String, IndexEntry>,
}

/// Why a Release file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// No SHA256 section: nothing links the indexes to the signature.
    #[error("it lists no SHA256 checksums")]
    NoChecksums,
    /// A checksum line is not `hex size path`.
    #[error("a SHA256 line is malformed: {line:?}")]
    BadChecksum {
        /// The line.
        line: String,
    },
    /// A date field is not an RFC 2822 date.
    #[error("{field} {value:?} is not a date")]
    BadDate {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// Valid-Until has passed: the mirror may be serving stale (and vulnerable) data.
    #[error("it expired at {valid_until} (Valid-Until); the mirror is stale or the clock is wrong")]
    Expired {
        /// The field's value.
        valid_until: String,
    },
    /// Date is in the future.
    #[error("it is dated {date}, in the future")]
    FromTheFuture {
        /// The field's value.
        date: String,
    },
    /// Neither Suite nor Codename names the suite asked for.
    #[error("it is for {found:?}, not {wanted:?}")]
    WrongSuite {
        /// What was asked for.
        wanted: String,
        /// Suite and Codename found.
        found: String,
    },
}

fn date(field: &'static str, value: &str) -> Result<i64, ReleaseError> {
    let bad = || ReleaseError::BadDate {
        field,
        value: value.to_owned(),
    };
    // Debian writes "UTC" where RFC 2822 wants "+0000".
    let normalized = value
        .trim()
        .replace(" UTC", " +0000")
        .replace(" GMT", " +0000");
    time::OffsetDateTime::parse(&normalized, &time::format_description::well_known::Rfc2822)
        .map(|moment| moment.unix_timestamp())
        .map_err(|_| bad())
}

impl Release {
    /// Parses the signed text of a Release file.
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        let paragraph = deb822::parse(text).into_iter().next().unwrap_or_default();
        let list = |name: &str| -> Vec<String> {
            paragraph
                .single(name)
                .map(|value| value.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut sha256 = BTreeMap::new();
        let section = paragraph.get("SHA256").ok_or(ReleaseError::NoChecksums)?;
        for line in section
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
        {
            let bad = || ReleaseError::BadChecksum {
                line: line.to_owned(),
            };
            let mut parts = line.split_whitespace();
            let (Some(hash), Some(size), Some(path), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            if hash.len() != 64 || !hash.chars().all(|ch| ch.is_ascii_hexdigit()) {
                return Err(bad());
            }
            sha256.insert(
                path.to_owned(),
                IndexEntry {
                    size: size.parse().map_err(|_| bad())?,
                    sha256: hash.to_ascii_lowercase(),
                },
            );
        }
        if sha256.is_empty() {
            return Err(ReleaseError::NoChecksums);
        }
        Ok(Self {
            suite: paragraph.single("Suite").map(str::to_owned),
            codename: paragraph.single("Codename").map(str::to_owned),
            date: paragraph
                .single("Date")
                .map(|value| date("Date", value))
                .transpose()?,
            valid_until: paragraph
                .single("Valid-Until")
                .map(|value| date("Valid-Until", value))
                .transpose()?,
            by_hash: paragraph
                .single("Acquire-By-Hash")
                .is_some_and(|value| value.eq_ignore_ascii_case("yes")),
            components: list("Components"),
            all_in_arch_indexes: paragraph
                .single("No-Support-for-Architecture-all")
                .is_some_and(|value| value == "Packages"),
            architectures: list("Architectures"),
            sha256,
        })
    }

    /// Whether apt reads the `binary-all` indexes: only when the suite
    /// lists `all` among its architectures (or lists none), and does not
    /// say the arch:all packages are in the per-architecture indexes.
    pub fn has_binary_all(&self) -> bool {
        (self.architectures.is_empty() || self.architectures.iter().any(|a| a == "all"))
            && !self.all_in_arch_indexes
    }

    /// Checks the dates against `now` (Unix seconds) and the suite against
    /// the one asked for; `check_valid_until` off accepts an expired file
    /// (for archives that are snapshots on purpose).
    pub fn check(
        &self,
        wanted: &str,
        now: i64,
        check_valid_until: bool,
    ) -> Result<(), ReleaseError> {
        const MAX_FUTURE_SECONDS: i64 = 10;
        if let Some(date) = self.date
            && date > now + MAX_FUTURE_SECONDS
        {
            return Err(ReleaseError::FromTheFuture {
                date: date.to_string(),
            });
        }
        if check_valid_until
            && let Some(valid_until) = self.valid_until
            && valid_until < now
        {
            return Err(ReleaseError::Expired {
                valid_until: time::OffsetDateTime::from_unix_timestamp(valid_until)
                    .map_or_else(|_| valid_until.to_string(), |moment| moment.to_string()),
            });
        }
        // A flat repository's suite is a path; its Release names no suite to compare.
        let wanted = wanted.trim_end_matches('/');
        if wanted.is_empty() || wanted == "." || (self.suite.is_none() && self.codename.is_none()) {
            return Ok(());
        }
        let last = wanted.rsplit('/').next().unwrap_or(wanted);
        let matches = [&self.suite, &self.codename]
            .iter()
            .filter_map(|value| value.as_deref())
            .any(|value| value == last);
        if matches {
            Ok(())
        } else {
            Err(ReleaseError::WrongSuite {
                wanted: wanted.to_owned(),
                found: format!(
                    "{} / {}",
                    self.suite.as_deref().unwrap_or("-"),
                    self.codename.as_deref().unwrap_or("-")
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "Origin: Debian\nSuite: oldstable-security\nCodename: bookworm-security\nDate: Tue, 01 Dec 2026 19:40:00 UTC\nValid-Until: Tue, 08 Dec 2026 19:40:00 UTC\nAcquire-By-Hash: yes\nArchitectures: amd64 arm64\nComponents: updates/main\nSHA256:\n 9e0b5aab23c6e8e9e3c5a4ae0b0ee4b1f1b3c1d2e3f4a5b6c7d8e9f0a1b2c3d4  8790396 main/binary-amd64/Packages.xz\n 0000000000000000000000000000000000000000000000000000000000000000 12 main/binary-amd64/Release\n";

    #[test]
    fn releases_parse_and_their_dates_are_checked() {
        let release = Release::parse(RELEASE).unwrap();
        assert!(release.by_hash);
        assert!(
            !release.has_binary_all(),
            "all is not among its architectures"
        );
        let with_all = Release::parse(&RELEASE.replace("amd64 arm64", "all amd64")).unwrap();
        assert!(with_all.has_binary_all());
        let not_supported = Release::parse(&RELEASE.replace(
            "Architectures: amd64 arm64",
            "Architectures: all amd64\nNo-Support-for-Architecture-all: Packages",
        ))
        .unwrap();
        assert!(!not_supported.has_binary_all());
        assert_eq!(release.codename.as_deref(), Some("bookworm-security"));
        assert_eq!(
            release.sha256["main/binary-amd64/Packages.xz"].size,
            8_790_396
        );
        let date = release.date.unwrap();
        release.check("bookworm-security", date + 60, true).unwrap();
        assert!(matches!(
            release.check("bookworm-security", date + 30 * 86_400, true),
            Err(ReleaseError::Expired { .. })
        ));
        release
            .check("bookworm-security", date + 30 * 86_400, false)
            .unwrap();
        assert!(matches!(
            release.check("bookworm-security", date - 3600, true),
            Err(ReleaseError::FromTheFuture { .. })
        ));
        assert!(matches!(
            release.check("trixie-security", date, true),
            Err(ReleaseError::WrongSuite { .. })
        ));
        assert!(matches!(
            Release::parse("Suite: x\n"),
            Err(ReleaseError::NoChecksums)
        ));
        assert!(Release::parse("SHA256:\n nothex 1 a\n").is_err());
    }
}
