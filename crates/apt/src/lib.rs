//! apt repositories, read the way apt reads them, natively.
//!
//! - [`sources`]: `sources.list` and `.sources` entries;
//! - [`keyring`]: OpenPGP keyrings and the signature policy for Release files;
//! - [`release`]: a verified Release file (dates, suite, index checksums);
//! - [`index`]: `Packages` entries;
//! - [`fetch`]: downloads, the content cache by SHA-256, resumed transfers;
//! - [`repository`]: all of it for a set of sources: every candidate
//!   package, each traced to a verified signature.
//!
//! Verification is never skipped: an unsigned suite, a signature that does
//! not verify, an index or package whose size or SHA-256 differs from what
//! the signed file says, are errors.

pub mod fetch;
pub mod index;
pub mod keyring;
pub mod release;
pub mod repository;
pub mod sources;

pub use fetch::{FetchError, Fetcher};
pub use index::{PackageEntry, SkippedEntry};
pub use keyring::{Keyring, SignatureError};
pub use release::{Release, ReleaseError};
pub use repository::{KeyFiles, Repository, RepositoryError, RepositorySpec, Suite};
pub use sources::{SignedBy, Source, SourcesError};
