//! The image's ELF objects and the loader's configured directories, read
//! through the merged view: what hardening prunes by and what image tests
//! check every `DT_NEEDED` against.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use sealcraft_elf::ElfInfo;
use sealcraft_oci::view::{ContentRef, MergedView};

/// Every ELF object of the image by path (hard links each under their own
/// path). Only the headers, program headers, dynamic section and string
/// table are read, through positioned reads of the layer spools; the error
/// names the path that could not be read.
pub fn elf_objects(view: &MergedView) -> Result<BTreeMap<PathBuf, ElfInfo>, (PathBuf, io::Error)> {
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
            .map_err(|source| (path.to_path_buf(), source))?;
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

/// The directories the image's `/etc/ld.so.conf` (with its includes) names.
pub fn loader_conf_dirs(view: &MergedView) -> Vec<PathBuf> {
    sealcraft_elf::ld_so_conf_dirs(
        &|path: &Path| {
            view.read(path)
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        },
        &|directory: &Path| {
            view.iter()
                .filter(|(path, _)| path.parent() == Some(directory))
                .map(|(path, _)| path.to_path_buf())
                .collect()
        },
    )
}
