//! Vulnerability matching against OSV advisories.
//!
//! - [`version`]: the version orderings of every ecosystem sealcraft
//!   catalogs, as each ecosystem's own tools order versions: dpkg, apk,
//!   RPM, PEP 440 and SemVer (npm, crates, Go with its `v` prefix and
//!   pseudo-versions);
//! - [`osv`]: OSV records, the OSV evaluation rules, and matching an
//!   inventory (Debian packages through their source package).

pub mod osv;
pub mod report;
pub mod severity;
pub mod store;
pub mod version;
