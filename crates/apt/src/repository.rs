//! A set of sources read as apt reads them: each suite's InRelease (or
//! Release with Release.gpg) verified against the keys its entry trusts,
//! its dates and suite checked, then the Packages indexes of the wanted
//! architectures fetched through the Release's SHA-256 (by hash when the
//! suite offers it), so every candidate traces back to a signature.

use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use crate::fetch::{FetchError, Fetcher};
use crate::index::{self, PackageEntry, SkippedEntry};
use crate::keyring::{Keyring, SignatureError};
use crate::release::{Release, ReleaseError};
use crate::sources::{SignedBy, Source};

/// Largest decompressed Packages index read.
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// Why a repository cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The suite has neither InRelease nor Release.
    #[error("{url}: no InRelease or Release file")]
    NoRelease {
        /// Where it was looked for.
        url: String,
    },
    /// Release without Release.gpg: unsigned suites are never read.
    #[error("{url}: the Release file is not signed (no InRelease, no Release.gpg)")]
    Unsigned {
        /// The Release file.
        url: String,
    },
    /// The signature did not verify.
    #[error("{url}: the signature does not verify")]
    Signature {
        /// The file.
        url: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// The Release file cannot be used.
    #[error("{url}")]
    Release {
        /// The file.
        url: String,
        /// Why.
        #[source]
        source: ReleaseError,
    },
    /// The keys the entry trusts cannot be had.
    #[error("the keys for {uri} {suite}")]
    Keys {
        /// The archive.
        uri: String,
        /// The suite.
        suite: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// A keyring file the entry names is not there.
    #[error("{uri} {suite}: the keyring {} is not there", path.display())]
    MissingKeyring {
        /// The archive.
        uri: String,
        /// The suite.
        suite: String,
        /// The keyring file.
        path: PathBuf,
    },
    /// A decompressed index is not what the Release file's hash of it says.
    #[error(
        "{path}: decompressed, it is {actual_size} bytes with SHA-256 {actual}, but the signed Release says {expected_size} bytes with {expected}"
    )]
    IndexMismatch {
        /// The index, as the Release names it.
        path: String,
        /// Its signed size.
        expected_size: u64,
        /// Its signed SHA-256.
        expected: String,
        /// What it decompressed to.
        actual_size: u64,
        /// Its SHA-256.
        actual: String,
    },
    /// An index does not decompress.
    #[error("{path} does not decompress")]
    Index {
        /// The index, as the Release names it.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Where keyring files are read from (the image's, or the host's, files).
pub trait KeyFiles: Sync {
    /// The bytes of the file at this absolute path, if there is one.
    fn read(&self, path: &std::path::Path) -> Option<Vec<u8>>;
    /// apt's default keyrings (`trusted.gpg`, `trusted.gpg.d/*`), name and bytes.
    fn defaults(&self) -> Vec<(String, Vec<u8>)>;
}

/// How to read a set of sources.
pub struct RepositorySpec<'a> {
    /// The sources, in the order their candidates are preferred when versions tie.
    pub sources: &'a [Source],
    /// Where `Signed-By` keyrings and the default keyrings come from.
    pub keys: &'a dyn KeyFiles,
    /// The architectures whose indexes are read: the image's own first,
    /// then any foreign ones it has packages of.
    pub architectures: &'a [String],
    /// The time the Release dates are checked against.
    pub now: SystemTime,
    /// Refuse Release files past their Valid-Until (on unless a snapshot archive is meant).
    pub check_valid_until: bool,
}

/// One suite as read: which Release file vouched for it.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The entry.
    pub source: Source,
    /// The signed file's URL (InRelease or Release).
    pub release_url: String,
    /// The signed file's SHA-256 (for provenance).
    pub release_sha256: String,
    /// What it says.
    pub release: Release,
}

/// Every candidate the sources offer.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The suites, in source order.
    pub suites: Vec<Suite>,
    /// Every package version offered (`PackageEntry::suite` indexes `suites`).
    pub packages: Vec<PackageEntry>,
    /// Index paragraphs that could not be used.
    pub skipped: Vec<SkippedEntry>,
}

fn suite_base(source: &Source) -> String {
    if source.suite.ends_with('/') {
        format!("{}/{}", source.uri, source.suite.trim_end_matches('/'))
            .trim_end_matches("/.")
            .to_owned()
    } else {
        format!("{}/dists/{}", source.uri, source.suite)
    }
}

fn keyring_for(source: &Source, keys: &dyn KeyFiles) -> Result<Keyring, RepositoryError> {
    let keys_error = |source_error| RepositoryError::Keys {
        uri: source.uri.clone(),
        suite: source.suite.clone(),
        source: source_error,
    };
    let mut keyring = Keyring::default();
    match &source.signed_by {
        SignedBy::Embedded(block) => keyring
            .add("the embedded Signed-By key", block.as_bytes())
            .map_err(keys_error)?,
        SignedBy::Keys { keyrings, .. } if !keyrings.is_empty() => {
            for path in keyrings {
                let bytes = keys
                    .read(path)
                    .ok_or_else(|| RepositoryError::MissingKeyring {
                        uri: source.uri.clone(),
                        suite: source.suite.clone(),
                        path: path.clone(),
                    })?;
                keyring
                    .add(&path.display().to_string(), &bytes)
                    .map_err(keys_error)?;
            }
        }
        SignedBy::Default | SignedBy::Keys { .. } => {
            for (name, bytes) in keys.defaults() {
                keyring.add(&name, &bytes).map_err(keys_error)?;
            }
        }
    }
    if let SignedBy::Keys { fingerprints, .. } = &source.signed_by
        && !fingerprints.is_empty()
    {
        keyring.retain_fingerprints(fingerprints);
    }
    if keyring.is_empty() {
        return Err(keys_error(SignatureError::EmptyKeyring {
            name: match &source.signed_by {
                SignedBy::Keys { fingerprints, .. } if !fingerprints.is_empty() => format!(
                    "the keyrings, narrowed to the fingerprints {},",
                    fingerprints.join(", ")
                ),
                _ => "the set of keyrings this source trusts".into(),
            },
        }));
    }
    Ok(keyring)
}

impl Repository {
    /// Reads every suite of `spec` and its indexes for the architecture.
    pub fn open(spec: &RepositorySpec<'_>, fetcher: &Fetcher) -> Result<Self, RepositoryError> {
        let mut suites = Vec::new();
        let mut packages = Vec::new();
        let mut skipped = Vec::new();
        let now = spec
            .now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        // Suites are read on threads of their own: fetching, verifying and
        // parsing one index does not wait for another's.
        let mut chosen = Vec::new();
        for source in spec.sources {
            let wanted: Vec<&String> = spec
                .architectures
                .iter()
                .filter(|architecture| {
                    source
                        .architectures
                        .as_ref()
                        .is_none_or(|limited| limited.contains(architecture))
                })
                .collect();
            if !wanted.is_empty() {
                chosen.push((source, wanted));
            }
        }
        let read: Vec<Result<SuiteRead, RepositoryError>> = std::thread::scope(|scope| {
            let threads: Vec<_> = chosen
                .iter()
                .enumerate()
                .map(|(number, (source, wanted))| {
                    scope.spawn(move || read_suite(source, wanted, number, spec, fetcher, now))
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        for suite in read {
            let (suite, found, unusable) = suite?;
            suites.push(suite);
            packages.extend(found);
            skipped.extend(unusable);
        }
        // An arch:all package appears in every binary-<arch> index and binary-all: once is enough.
        packages.sort_by(|a, b| {
            (&a.name, &a.version, &a.architecture, a.suite).cmp(&(
                &b.name,
                &b.version,
                &b.architecture,
                b.suite,
            ))
        });
        packages.dedup_by(|a, b| {
            a.name == b.name && a.version == b.version && a.architecture == b.architecture
        });
        Ok(Self {
            suites,
            packages,
            skipped,
        })
    }

    /// The `.deb` of `package`, verified against its index entry, from the cache or its suite.
    pub fn download(
        &self,
        package: &PackageEntry,
        fetcher: &Fetcher,
    ) -> Result<PathBuf, FetchError> {
        let suite = &self.suites[package.suite];
        let url = format!(
            "{}/{}",
            suite.source.uri,
            package.filename.trim_start_matches('/')
        );
        fetcher.get_verified(&[url], package.size, &package.sha256)
    }
}

/// The forms of an index in the order they are fetched: gzip inflates
/// several times faster than xz decodes, which outweighs its larger
/// download; the plain file last (archives rarely serve it).
const INDEX_FORMS: [&str; 3] = ["Packages.gz", "Packages.xz", "Packages"];

/// The `Packages` index of one directory of a suite (`main/binary-amd64/`),
/// `None` when the Release lists none. The decompressed index is kept in the
/// cache under the hash the Release gives it, so a later read skips the
/// download and the decompression and still checks the signed hash.
fn read_directory(
    release: &Release,
    base: &str,
    directory: &str,
    fetcher: &Fetcher,
) -> Result<Option<String>, RepositoryError> {
    let plain_path = format!("{directory}Packages");
    let plain = release.sha256.get(&plain_path);
    if let Some(plain) = plain
        && let Some(cached) = fetcher.cached(plain.size, &plain.sha256)
    {
        return read_index(&cached, &plain_path).map(|bytes| Some(text_of(bytes)));
    }
    let Some((path, entry)) = INDEX_FORMS.iter().find_map(|name| {
        let path = format!("{directory}{name}");
        release.sha256.get(&path).map(|entry| (path, entry))
    }) else {
        return Ok(None);
    };
    let mut urls = Vec::new();
    if release.by_hash {
        urls.push(format!("{base}/{directory}by-hash/SHA256/{}", entry.sha256));
    }
    urls.push(format!("{base}/{path}"));
    let cached = fetcher.get_verified(&urls, entry.size, &entry.sha256)?;
    let bytes = read_index(&cached, &path)?;
    if let Some(plain) = plain
        && path != plain_path
    {
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != plain.sha256 || bytes.len() as u64 != plain.size {
            return Err(RepositoryError::IndexMismatch {
                path: plain_path,
                expected_size: plain.size,
                expected: plain.sha256.clone(),
                actual_size: bytes.len() as u64,
                actual,
            });
        }
        fetcher.store(&plain.sha256, &bytes)?;
    }
    Ok(Some(text_of(bytes)))
}

/// Index text; a stray non-UTF-8 byte (a maintainer's name) does not make the index unusable.
fn text_of(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

fn read_index(path: &std::path::Path, name: &str) -> Result<Vec<u8>, RepositoryError> {
    let index_error = |source| RepositoryError::Index {
        path: name.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(index_error)?;
    let mut reader: Box<dyn Read> = if name.ends_with(".xz") {
        Box::new(lzma_rust2::XzReader::new(file, true))
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut bytes = Vec::new();
    (&mut reader)
        .take(MAX_INDEX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(index_error)?;
    Ok(bytes)
}

/// One suite as read: the suite, its usable entries, and the skipped ones.
type SuiteRead = (Suite, Vec<PackageEntry>, Vec<SkippedEntry>);

fn read_suite(
    source: &Source,
    wanted: &[&String],
    number: usize,
    spec: &RepositorySpec<'_>,
    fetcher: &Fetcher,
    now: i64,
) -> Result<SuiteRead, RepositoryError> {
    let mut packages = Vec::new();
    let mut skipped = Vec::new();
    let keyring = keyring_for(source, spec.keys)?;
    let base = suite_base(source);
    let inrelease_url = format!("{base}/InRelease");
    let (url, text, signed) = match fetcher.get(&inrelease_url)? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let signed = keyring
                .verify_cleartext(&text, spec.now)
                .map_err(|source| RepositoryError::Signature {
                    url: inrelease_url.clone(),
                    source,
                })?;
            (inrelease_url, bytes, signed)
        }
        None => {
            let release_url = format!("{base}/Release");
            let release = fetcher
                .get(&release_url)?
                .ok_or_else(|| RepositoryError::NoRelease {
                    url: inrelease_url.clone(),
                })?;
            let signature = fetcher
                .get(&format!("{base}/Release.gpg"))?
                .ok_or_else(|| RepositoryError::Unsigned {
                    url: release_url.clone(),
                })?;
            keyring
                .verify_detached(&release, &signature, spec.now)
                .map_err(|source| RepositoryError::Signature {
                    url: release_url.clone(),
                    source,
                })?;
            let text = String::from_utf8_lossy(&release).into_owned();
            (release_url, release, text)
        }
    };
    let release = Release::parse(&signed).map_err(|source| RepositoryError::Release {
        url: url.clone(),
        source,
    })?;
    release
        .check(&source.suite, now, spec.check_valid_until)
        .map_err(|source| RepositoryError::Release {
            url: url.clone(),
            source,
        })?;
    let directories: Vec<String> = if source.components.is_empty() {
        vec![String::new()]
    } else {
        let mut directories = Vec::new();
        for component in &source.components {
            for architecture in wanted {
                directories.push(format!("{component}/binary-{architecture}/"));
            }
            if release.has_binary_all() {
                directories.push(format!("{component}/binary-all/"));
            }
        }
        directories
    };
    for directory in directories {
        let Some(text) = read_directory(&release, &base, &directory, fetcher)? else {
            continue;
        };
        let (found, unusable) = index::parse(&text, number);
        packages.extend(found.into_iter().filter(|package| {
            package.architecture == "all" || wanted.contains(&&package.architecture)
        }));
        skipped.extend(unusable);
    }
    let suite = Suite {
        source: source.clone(),
        release_sha256: hex::encode(Sha256::digest(&text)),
        release_url: url,
        release,
    };
    Ok((suite, packages, skipped))
}
