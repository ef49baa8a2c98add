//! The pipeline: a validated [`plan::Plan`] from `sealcraft.toml`, and
//! [`run::run`], which executes the stages in the guide's order and records
//! everything in a run directory.
//!
//! This crate wires the stage crates together; it never prints. Progress
//! and events reach the binary through [`events::Reporter`].
//!
//! - [`plan`]: the config, one validator per section;
//! - `stages`: one file per stage, each a function from what the stage
//!   before produced to what it hands on;
//! - [`run`]: the stage order, the run directory, `run.json`;
//! - [`events`] and [`shipping`]: `events.jsonl` and the sinks;
//! - [`publish`]: sign before push, and verification.

mod error;
pub mod events;
pub mod plan;
pub mod publish;
pub mod run;
pub mod shipping;
mod stages;

pub use error::{Error, Result};
