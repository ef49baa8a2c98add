//! `[harden]`: what the hardened stage removes.

use super::raw::RawHarden;

/// The `[harden]` section.
#[derive(Debug, Clone)]
pub struct HardenPlan {
    /// Remove shells too.
    pub remove_shells: bool,
    /// Further packages to remove.
    pub remove_packages: Vec<String>,
    /// Globs of paths never removed.
    pub keep: Vec<String>,
    /// Keep Debian copyright files.
    pub keep_copyright: bool,
    /// Leave setuid and setgid bits (cleared by default).
    pub keep_setuid: bool,
}

/// The hardened stage, unless the section turns it off.
pub(super) fn validate(raw: &RawHarden) -> Option<HardenPlan> {
    raw.enabled.then(|| HardenPlan {
        remove_shells: raw.remove_shells,
        remove_packages: raw.remove_packages.clone(),
        keep: raw.keep.clone(),
        keep_copyright: raw.keep_copyright,
        keep_setuid: raw.keep_setuid,
    })
}
