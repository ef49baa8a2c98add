//! Step cache keys: a version, the chain ID of the layers below, and the
//! step's parts (the instruction with its arguments substituted and its
//! inputs). Secret values never enter a key.

use sha2::{Digest as _, Sha256};

use crate::stage::Builder;
use crate::working::Working;

/// Bumped whenever what a cache key covers changes.
const CACHE_VERSION: &str = "sealcraft-build-cache/2";

impl Builder<'_> {
    /// A cache key: the version, the parent chain, and the step's parts.
    pub(crate) fn key(&self, working: &Working, parts: &[&str]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(CACHE_VERSION);
        hasher.update(b"\0");
        hasher.update(working.chain());
        for part in parts {
            hasher.update(b"\0");
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}
