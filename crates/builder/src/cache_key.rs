//! Step cache keys: a version, the chain ID of the layers below, and the
//! step's parts (the instruction with its arguments substituted and its
//! inputs). Secret values never enter a key.

use sha2::{Digest as _, Sha256};

/// Bumped whenever what a cache key covers changes.
const CACHE_VERSION: &str = "sealcraft-build-cache/2";

/// The cache key of a step on top of the layers with chain ID `chain`.
/// Parts are separated by NUL, which no part contains, so two different
/// lists never hash the same bytes.
pub(crate) fn cache_key(chain: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_VERSION);
    hasher.update(b"\0");
    hasher.update(chain);
    for part in parts {
        hasher.update(b"\0");
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_the_parent_and_every_part() {
        let key = cache_key("scratch", &["RUN", "make"]);
        assert_eq!(key, cache_key("scratch", &["RUN", "make"]));
        assert_eq!(key.len(), 64);
        assert_ne!(key, cache_key("sha256:00", &["RUN", "make"]));
        assert_ne!(key, cache_key("scratch", &["RUN", "make all"]));
        assert_ne!(
            cache_key("scratch", &["ab", "c"]),
            cache_key("scratch", &["a", "bc"])
        );
        assert_ne!(
            cache_key("scratch", &["RUN"]),
            cache_key("scratch", &["RUN", ""])
        );
    }
}
