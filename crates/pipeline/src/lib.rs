//! The pipeline: a validated [`plan::Plan`] from `sealcraft.toml`, and
//! [`run::run`], which executes the stages in the guide's order and records
//! everything in a run directory.
//!
//! This crate wires the stage crates together; it never prints. Progress
//! and events reach the binary through [`events::Reporter`].

mod error;
pub mod events;
pub mod plan;
pub mod publish;
pub mod run;
pub mod sbom;
pub mod sinks;

pub use error::{Error, Result};
