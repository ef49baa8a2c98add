//! The local advisory database: OSV records imported once from a
//! directory, an osv.dev `all.zip` or JSON Lines, stored as one JSON Lines
//! file plus a compact binary index by (ecosystem, package name), so that
//! opening reads only the index and a scan reads only the records of the
//! packages it has.
//!
//! ```text
//! DIR/records.jsonl   one compact OSV record per line, sorted by id
//! DIR/index.bin       "SCVIDX1\n", key count, then per key:
//!                     key length (u16) key ("ecosystem\tname"), entry count (u32),
//!                     entries of (offset u64, length u32); little endian
//! DIR/metadata.json   written last: format, import time, source, record counts
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::osv::{Advisory, AdvisoryCode, Database, RecordWarning, normalize_record_name};
use crate::{DatabaseProblem, Error};

const MAGIC: &[u8] = b"SCVIDX1\n";
/// Largest single record accepted.
const MAX_RECORD_BYTES: u64 = 16 << 20;

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// What a database holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    /// Store format version.
    pub format: u32,
    /// When the import ran (RFC 3339).
    pub imported_at: String,
    /// What was imported.
    pub source: String,
    /// Records stored.
    pub records: usize,
    /// Records by ecosystem.
    pub ecosystems: BTreeMap<String, usize>,
    /// Records that were refused.
    pub rejected: usize,
}

/// The outcome of an import.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// The metadata written.
    pub metadata: Metadata,
    /// Records refused, each named.
    pub warnings: Vec<RecordWarning>,
}

fn parse_record(bytes: &[u8], name: &str, warnings: &mut Vec<RecordWarning>) -> Option<Advisory> {
    match serde_json::from_slice::<Advisory>(bytes) {
        Ok(advisory) if advisory.id.is_empty() => {
            warnings.push(RecordWarning {
                code: AdvisoryCode::MalformedRecord,
                subject: name.to_owned(),
                message: "the record has no id".into(),
            });
            None
        }
        Ok(advisory) => {
            for affected in &advisory.affected {
                for range in &affected.ranges {
                    if !matches!(range.kind.as_str(), "ECOSYSTEM" | "SEMVER" | "GIT") {
                        warnings.push(RecordWarning {
                            code: AdvisoryCode::UnknownRangeType,
                            subject: advisory.id.clone(),
                            message: format!("range type {:?} is ignored", range.kind),
                        });
                    }
                }
            }
            Some(advisory)
        }
        Err(error) => {
            warnings.push(RecordWarning {
                code: AdvisoryCode::MalformedRecord,
                subject: name.to_owned(),
                message: error.to_string(),
            });
            None
        }
    }
}

/// Reads every record of `source` (directory, .zip or .jsonl).
pub fn read_source(source: &Path) -> Result<(Vec<Advisory>, Vec<RecordWarning>), Error> {
    let mut advisories = Vec::new();
    let mut warnings = Vec::new();
    if source.is_dir() {
        let mut stack = vec![source.to_path_buf()];
        let mut files = Vec::new();
        while let Some(directory) = stack.pop() {
            for entry in std::fs::read_dir(&directory).map_err(io_error("listing", &directory))? {
                let path = entry.map_err(io_error("listing", &directory))?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path
                    .extension()
                    .is_some_and(|extension| extension == "json")
                {
                    files.push(path);
                }
            }
        }
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).map_err(io_error("reading", &path))?;
            advisories.extend(parse_record(
                &bytes,
                &path.display().to_string(),
                &mut warnings,
            ));
        }
    } else if source
        .extension()
        .is_some_and(|extension| extension == "zip")
    {
        let file = File::open(source).map_err(io_error("opening", source))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|error| Error::Zip {
            path: source.to_path_buf(),
            source: error,
        })?;
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(|error| Error::Zip {
                path: source.to_path_buf(),
                source: error,
            })?;
            if !entry.name().ends_with(".json") {
                continue;
            }
            let name = format!("{}:{}", source.display(), entry.name());
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_RECORD_BYTES)
                .read_to_end(&mut bytes)
                .map_err(io_error("reading", source))?;
            advisories.extend(parse_record(&bytes, &name, &mut warnings));
        }
    } else if source
        .extension()
        .is_some_and(|extension| extension == "jsonl" || extension == "ndjson")
    {
        let file = File::open(source).map_err(io_error("opening", source))?;
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_error("reading", source))?;
            if line.trim().is_empty() {
                continue;
            }
            advisories.extend(parse_record(
                line.as_bytes(),
                &format!("{}:{}", source.display(), number + 1),
                &mut warnings,
            ));
        }
    } else {
        return Err(Error::UnknownSource {
            path: source.to_path_buf(),
        });
    }
    Ok((advisories, warnings))
}

/// Imports `source` into the database directory `target` (replacing what it held).
pub fn import(source: &Path, target: &Path, imported_at: &str) -> Result<ImportReport, Error> {
    let (mut advisories, warnings) = read_source(source)?;
    if advisories.is_empty() {
        return Err(Error::Empty {
            path: source.to_path_buf(),
        });
    }
    advisories.sort_by(|a, b| a.id.cmp(&b.id));
    advisories.dedup_by(|a, b| a.id == b.id);
    std::fs::create_dir_all(target).map_err(io_error("creating", target))?;
    // The metadata file marks a complete database: remove it first, write it last.
    let metadata_path = target.join("metadata.json");
    match std::fs::remove_file(&metadata_path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("removing", &metadata_path)(error));
        }
        _ => {}
    }
    let records_path = target.join("records.jsonl");
    let mut records = std::io::BufWriter::new(sealcraft_files::AtomicFile::create(
        &records_path,
        sealcraft_files::WriteOptions::default(),
    )?);
    let mut index: BTreeMap<String, Vec<(u64, u32)>> = BTreeMap::new();
    let mut ecosystems: BTreeMap<String, usize> = BTreeMap::new();
    let mut offset = 0u64;
    for advisory in &advisories {
        let mut line =
            serde_json::to_vec(advisory).unwrap_or_else(|_| unreachable!("records serialise"));
        line.push(b'\n');
        records
            .write_all(&line)
            .map_err(io_error("writing", &records_path))?;
        let length = u32::try_from(line.len()).unwrap_or(u32::MAX);
        let keys: BTreeSet<String> = advisory
            .affected
            .iter()
            .map(|affected| {
                format!(
                    "{}\t{}",
                    affected.package.ecosystem,
                    normalize_record_name(&affected.package.ecosystem, &affected.package.name)
                )
            })
            .collect();
        for key in keys {
            index.entry(key).or_default().push((offset, length));
        }
        for ecosystem in advisory
            .affected
            .iter()
            .map(|affected| {
                affected
                    .package
                    .ecosystem
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect::<BTreeSet<_>>()
        {
            *ecosystems.entry(ecosystem).or_insert(0) += 1;
        }
        offset += line.len() as u64;
    }
    records
        .into_inner()
        .map_err(|error| io_error("writing", &records_path)(error.into_error()))?
        .commit()?;
    let mut bytes = MAGIC.to_vec();
    bytes.extend(u32::try_from(index.len()).unwrap_or(u32::MAX).to_le_bytes());
    for (key, entries) in &index {
        bytes.extend(u16::try_from(key.len()).unwrap_or(u16::MAX).to_le_bytes());
        bytes.extend(key.as_bytes());
        bytes.extend(
            u32::try_from(entries.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for (offset, length) in entries {
            bytes.extend(offset.to_le_bytes());
            bytes.extend(length.to_le_bytes());
        }
    }
    let index_path = target.join("index.bin");
    sealcraft_files::write_atomically(&index_path, &bytes)?;
    let metadata = Metadata {
        format: 1,
        imported_at: imported_at.to_owned(),
        source: source.display().to_string(),
        records: advisories.len(),
        ecosystems,
        rejected: warnings
            .iter()
            .filter(|warning| warning.code == AdvisoryCode::MalformedRecord)
            .count(),
    };
    let metadata_bytes =
        serde_json::to_vec_pretty(&metadata).unwrap_or_else(|_| unreachable!("plain data"));
    // Written last and atomically: a database without it is not one.
    sealcraft_files::write_atomically(&metadata_path, &metadata_bytes)?;
    Ok(ImportReport { metadata, warnings })
}

/// An opened database: the index in memory, records read on demand.
pub struct Store {
    directory: PathBuf,
    records: File,
    index: HashMap<String, Vec<(u64, u32)>>,
    /// The database's metadata.
    pub metadata: Metadata,
}

impl Store {
    /// Opens a database directory written by [`import`].
    pub fn open(directory: &Path) -> Result<Self, Error> {
        let not_database = |file: &'static str, problem: DatabaseProblem| Error::NotADatabase {
            path: directory.to_path_buf(),
            file,
            problem,
        };
        let metadata_bytes = std::fs::read(directory.join("metadata.json"))
            .map_err(|error| not_database("metadata.json", DatabaseProblem::Unreadable(error)))?;
        let metadata: Metadata = serde_json::from_slice(&metadata_bytes)
            .map_err(|error| not_database("metadata.json", DatabaseProblem::Json(error)))?;
        let bytes = std::fs::read(directory.join("index.bin"))
            .map_err(|error| not_database("index.bin", DatabaseProblem::Unreadable(error)))?;
        let truncated = || not_database("index.bin", DatabaseProblem::Truncated);
        if !bytes.starts_with(MAGIC) {
            return Err(not_database("index.bin", DatabaseProblem::UnknownFormat));
        }
        let mut position = MAGIC.len();
        let take = |position: &mut usize, count: usize| -> Option<&[u8]> {
            let slice = bytes.get(*position..*position + count)?;
            *position += count;
            Some(slice)
        };
        let keys = u32::from_le_bytes(
            take(&mut position, 4)
                .ok_or_else(truncated)?
                .try_into()
                .map_err(|_| truncated())?,
        );
        let mut index = HashMap::with_capacity(keys as usize);
        for _ in 0..keys {
            let key_length = u16::from_le_bytes(
                take(&mut position, 2)
                    .ok_or_else(truncated)?
                    .try_into()
                    .map_err(|_| truncated())?,
            ) as usize;
            let key =
                String::from_utf8_lossy(take(&mut position, key_length).ok_or_else(truncated)?)
                    .into_owned();
            let count = u32::from_le_bytes(
                take(&mut position, 4)
                    .ok_or_else(truncated)?
                    .try_into()
                    .map_err(|_| truncated())?,
            ) as usize;
            let mut entries = Vec::with_capacity(count.min(1 << 16));
            for _ in 0..count {
                let offset = u64::from_le_bytes(
                    take(&mut position, 8)
                        .ok_or_else(truncated)?
                        .try_into()
                        .map_err(|_| truncated())?,
                );
                let length = u32::from_le_bytes(
                    take(&mut position, 4)
                        .ok_or_else(truncated)?
                        .try_into()
                        .map_err(|_| truncated())?,
                );
                entries.push((offset, length));
            }
            index.insert(key, entries);
        }
        let records_path = directory.join("records.jsonl");
        let records = File::open(&records_path)
            .map_err(|error| not_database("records.jsonl", DatabaseProblem::Unreadable(error)))?;
        Ok(Self {
            directory: directory.to_path_buf(),
            records,
            index,
            metadata,
        })
    }

    /// The advisories for the given (ecosystem, name) keys, as a database to scan with.
    pub fn load(
        &self,
        keys: &BTreeSet<(String, String)>,
    ) -> Result<(Database, Vec<RecordWarning>), Error> {
        let mut positions: BTreeSet<(u64, u32)> = BTreeSet::new();
        for (ecosystem, name) in keys {
            if let Some(entries) = self.index.get(&format!("{ecosystem}\t{name}")) {
                positions.extend(entries.iter().copied());
            }
        }
        let mut advisories = Vec::with_capacity(positions.len());
        let mut warnings = Vec::new();
        let path = self.directory.join("records.jsonl");
        for (offset, length) in positions {
            let mut bytes = vec![0u8; length as usize];
            self.records
                .read_exact_at(&mut bytes, offset)
                .map_err(io_error("reading", &path))?;
            advisories.extend(parse_record(
                &bytes,
                &format!("{}@{offset}", path.display()),
                &mut warnings,
            ));
        }
        Ok((Database::new(advisories), warnings))
    }
}
