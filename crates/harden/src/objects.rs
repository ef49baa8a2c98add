//! The image's ELF objects and the program it runs, as the closure sees them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sealcraft_elf::ElfInfo;
use sealcraft_oci::image::Image;
use sealcraft_oci::view::MergedView;

use crate::removal::Plan;
use crate::{Error, Result};

/// Every ELF object of the image by path.
pub(crate) fn elf_objects(view: &MergedView) -> Result<BTreeMap<PathBuf, ElfInfo>> {
    sealcraft_inventory::elf_objects(view).map_err(|(path, source)| Error::Read { path, source })
}

/// Refuses to remove the program the image runs.
pub(crate) fn check_entrypoint(image: &Image, view: &MergedView, plan: &Plan<'_>) -> Result<()> {
    let runtime = image.config.runtime_config();
    let program = runtime
        .entrypoint
        .as_ref()
        .and_then(|list| list.first())
        .or_else(|| runtime.cmd.as_ref().and_then(|list| list.first()));
    let Some(program) = program.filter(|program| program.starts_with('/')) else {
        return Ok(());
    };
    let relative = Path::new(program.trim_start_matches('/'));
    let gone = view.resolve(relative).is_some()
        && view
            .resolve_visible(relative, |candidate| !plan.is_removed(candidate))
            .is_none();
    if gone {
        return Err(Error::WouldRemoveEntrypoint {
            program: program.clone(),
        });
    }
    Ok(())
}
