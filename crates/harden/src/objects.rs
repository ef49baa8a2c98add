//! The image's ELF objects and the program it runs, as the closure sees them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sealcraft_elf::ElfInfo;
use sealcraft_oci::image::Image;
use sealcraft_oci::view::{ContentRef, MergedView};

use crate::removal::Plan;
use crate::{Error, Result};

/// Every ELF object of the image by path (hard links each under their own
/// path). Only the headers, program headers, dynamic section and string
/// table are read, through positioned reads of the layer spools.
pub(crate) fn elf_objects(view: &MergedView) -> Result<BTreeMap<PathBuf, ElfInfo>> {
    let mut objects = BTreeMap::new();
    for (path, node) in view.iter() {
        let Some(content) = node.content else {
            continue;
        };
        if content.size < 64 {
            continue;
        }
        let magic = view
            .read_content(ContentRef { size: 4, ..content })
            .map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if magic != b"\x7fELF" {
            continue;
        }
        let read = |offset: u64, length: u64| {
            let end = offset.checked_add(length)?;
            if end > content.size {
                return None;
            }
            view.read_content(ContentRef {
                offset: content.offset + offset,
                size: length,
                ..content
            })
            .ok()
        };
        if let Some(info) = sealcraft_elf::dynamic_info(&read) {
            objects.insert(path.to_path_buf(), info);
        }
    }
    Ok(objects)
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
