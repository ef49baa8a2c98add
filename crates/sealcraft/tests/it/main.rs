//! Integration tests: the real binary against real readers (skopeo, umoci, runc).

mod aptrepo;
mod assemble;
mod blobs;
mod canary;
mod client;
mod dockerfile;
mod errors;
mod harden;
mod import;
mod patch;
mod patch_real;
mod prompt;
mod provenance;
mod publish;
mod registry;
mod run;
mod runtime;
mod sbom;
mod scan;
mod sinks;
mod snapshots;
mod squash;
mod support;
mod token;
mod upload;
mod vault;
