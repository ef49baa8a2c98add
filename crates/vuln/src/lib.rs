//! Vulnerability matching support. This first part holds the version
//! orderings of every ecosystem sealcraft catalogs, as each ecosystem's own
//! tools order versions: dpkg, apk, RPM, PEP 440 and SemVer (npm, crates,
//! Go with its `v` prefix and pseudo-versions).

pub mod version;
