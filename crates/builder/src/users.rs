//! The image's own users and groups, as RUN, `COPY --chown` and the final
//! non-root check see them: read through the stage's root, resolved by
//! inventory's account rules.

use std::path::Path;

use sealcraft_inventory::Accounts;

use crate::rootfs::Root;

/// The stage's `/etc/passwd` and `/etc/group` (missing ones are empty).
pub(crate) fn accounts(root: &Root) -> Accounts {
    let text = |file: &str| {
        root.read(Path::new(file))
            .ok()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    Accounts::parse(&text("/etc/passwd"), &text("/etc/group"))
}
