//! Vulnerability matching against OSV advisories.
//!
//! - [`version`]: the version orderings of every ecosystem sealcraft
//!   catalogs, as each ecosystem's own tools order versions: dpkg, apk,
//!   RPM, PEP 440 and SemVer (npm, crates, Go with its `v` prefix and
//!   pseudo-versions);
//! - [`osv`]: OSV records, the OSV evaluation rules, and matching an
//!   inventory (Debian packages through their source package);
//! - [`store`]: the imported, indexed database; [`open_database`] opens
//!   one (or a directory of records) for an inventory;
//! - [`report`]: Trivy-format JSON, SARIF and the gate;
//! - [`trivy`]: Trivy-format reports read back (what to patch);
//! - [`vex`]: OpenVEX documents written and applied.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sealcraft_inventory::Inventory;

pub mod osv;
pub mod report;
pub mod severity;
pub mod store;
pub mod trivy;
pub mod version;
pub mod vex;

pub use osv::{AdvisoryCode, RecordWarning};

/// What can go wrong with advisory databases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The source is not a directory, a zip or a JSON Lines file.
    #[error("{path}: not a directory of OSV JSON files, a .zip of them, or a .jsonl file")]
    UnknownSource {
        /// The path.
        path: PathBuf,
    },
    /// The zip could not be read.
    #[error("{path}")]
    Zip {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: zip::result::ZipError,
    },
    /// The database directory is not one sealcraft wrote.
    #[error(
        "{path} is not a sealcraft advisory database ({file}: {problem}); create it with `sealcraft db import`"
    )]
    NotADatabase {
        /// The directory.
        path: PathBuf,
        /// The file that is wrong.
        file: &'static str,
        /// What is wrong with it.
        problem: DatabaseProblem,
    },
    /// A database file could not be written.
    #[error(transparent)]
    Write(#[from] sealcraft_files::Error),
    /// A directory of OSV records holds none.
    #[error("{path} holds no OSV records; import some with `sealcraft db import`")]
    NoRecords {
        /// The directory.
        path: PathBuf,
    },
    /// No record could be imported.
    #[error("{path}: no valid OSV record was found")]
    Empty {
        /// The source.
        path: PathBuf,
    },
}

/// Why a database file is not one sealcraft wrote.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseProblem {
    /// It could not be read.
    #[error("{0}")]
    Unreadable(std::io::Error),
    /// It is not the JSON expected.
    #[error("{0}")]
    Json(serde_json::Error),
    /// It does not start with the index's magic.
    #[error("unknown format")]
    UnknownFormat,
    /// It ends early.
    #[error("truncated")]
    Truncated,
}

/// Opens the advisories `inventory` needs: from a database made by
/// `sealcraft db import` only the records of its packages are read; a
/// directory of OSV JSON records is read whole and must hold some.
pub fn open_database(
    path: &Path,
    inventory: &Inventory,
) -> Result<(osv::Database, Vec<RecordWarning>), Error> {
    if path.join("metadata.json").is_file() {
        let keys: BTreeSet<(String, String)> = inventory
            .packages
            .iter()
            .filter_map(|package| osv::match_key(package, inventory))
            .map(|(ecosystem, name, _)| (ecosystem, name))
            .collect();
        return store::Store::open(path)?.load(&keys);
    }
    let (database, warnings) = osv::Database::load_dir(path).map_err(|source| Error::Io {
        action: "reading the advisory database",
        path: path.to_path_buf(),
        source,
    })?;
    if database.is_empty() {
        return Err(Error::NoRecords {
            path: path.to_path_buf(),
        });
    }
    Ok((database, warnings))
}
