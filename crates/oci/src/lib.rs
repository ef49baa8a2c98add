//! sealcraft's OCI foundation.
//!
//! The image travels between pipeline stages as an OCI image layout on disk,
//! so every stage can run alone and every intermediate image can be read by
//! standard tools. This crate owns that representation:
//!
//! - [`reference`]: registry references with the distribution grammar;
//!   [`digest`]: digests and verifying streams;
//! - [`manifest`]: descriptors, manifests, indexes and image configs;
//! - [`layout`]: the layout directory as a content-addressed store;
//! - [`layer`]: the layer codec (safe reading, deterministic writing, whiteouts);
//! - [`unpack`]: unpacking into a directory without escaping it;
//! - [`view`]: a merged read-only view of a layer stack, without unpacking;
//! - [`image`], [`import`], [`squash`]: whole-image operations.
//!
//! The crate never prints and never reads the environment; callers pass
//! everything (such as `SOURCE_DATE_EPOCH`) in.

#![deny(missing_docs)]

pub mod digest;
// Error variants are documented by their `#[error]` messages.
#[allow(missing_docs)]
mod error;
pub mod image;
pub mod import;
pub mod layer;
pub mod layout;
pub mod manifest;
pub mod reference;
pub mod squash;
pub mod unpack;
pub mod view;

pub use error::{EntryProblem, Error, LayerProblem, PaxProblem, Result};
