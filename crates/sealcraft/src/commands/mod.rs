//! One module per command, each exporting a function named after its verb.

pub(crate) mod assemble;
pub(crate) mod blob;
pub(crate) mod build;
pub(crate) mod cache;
pub(crate) mod db;
pub(crate) mod harden;
pub(crate) mod image;
pub(crate) mod key;
pub(crate) mod patch;
pub(crate) mod publish;
pub(crate) mod run;
pub(crate) mod sbom;
pub(crate) mod scan;
pub(crate) mod squash;
pub(crate) mod test;
