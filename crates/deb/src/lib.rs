//! Debian package formats.
//!
//! - [`deb822`]: control paragraphs, kept losslessly (the dpkg status
//!   database, `Packages` indexes, `Release` files, `.sources` files);
//! - [`relations`]: `Depends`-style relationship fields;
//! - [`archive`]: `.deb` files, their control members and streamed data.
//!
//! Nothing here fetches or installs anything; version ordering lives with
//! the other version orderings in `vuln`.

use std::path::PathBuf;

pub mod archive;
pub mod deb822;
pub mod relations;

pub use archive::{Compression, DataEntry, DebPackage, EntryKind};
pub use deb822::Paragraph;
pub use relations::{Alternative, Operator, Relation, RelationError};

/// Why a package cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed `.deb`.
    #[error("{} is not a usable .deb: {reason}", path.display())]
    BadPackage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
