//! The hardened image: the original layers plus one layer of whiteouts and
//! rewritten package databases.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use sealcraft_oci::digest::parse_digest;
use sealcraft_oci::image::{Image, LayerOptions, commit_image, rfc3339, write_layer};
use sealcraft_oci::layer::{EntryKind, EntryMeta};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{Descriptor, HistoryEntry};
use sealcraft_oci::view::MergedView;

use crate::removal::Plan;
use crate::{HardenSpec, RemovedPackage, Result};

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_hardened(
    source: &Layout,
    image: &Image,
    spec: &HardenSpec,
    output: &Layout,
    view: &MergedView,
    plan: &Plan<'_>,
    rewritten: &BTreeMap<PathBuf, Vec<u8>>,
    modes: &BTreeMap<PathBuf, u32>,
    packages_removed: &[RemovedPackage],
) -> Result<Descriptor> {
    enum Change<'a> {
        Directory(EntryMeta),
        Whiteout,
        Content(EntryMeta, &'a [u8]),
    }
    let mut changes: BTreeMap<PathBuf, Change<'_>> = BTreeMap::new();
    let parents = |path: &Path, changes: &mut BTreeMap<PathBuf, Change<'_>>| {
        for ancestor in path
            .ancestors()
            .skip(1)
            .filter(|ancestor| !ancestor.as_os_str().is_empty())
        {
            if let Some(node) = view.get(ancestor) {
                changes
                    .entry(ancestor.to_path_buf())
                    .or_insert_with(|| Change::Directory(node.meta.clone()));
            }
        }
    };
    for path in plan.removed.keys() {
        parents(path, &mut changes);
        changes.insert(path.clone(), Change::Whiteout);
    }
    for (path, bytes) in rewritten {
        let Some((real, node)) = view.resolve(path) else {
            continue;
        };
        parents(&real, &mut changes);
        let meta = EntryMeta {
            path: real.clone(),
            kind: EntryKind::File,
            size: bytes.len() as u64,
            mode: modes.get(path).copied().unwrap_or(node.meta.mode),
            ..node.meta.clone()
        };
        changes.insert(real, Change::Content(meta, bytes));
    }
    let options = LayerOptions {
        clamp_mtime: Some(spec.source_date_epoch),
        compression: spec.compression,
        keep_devices: true,
    };
    let layer = write_layer(output, &options, |writer| {
        let mut count = 0;
        for (path, change) in &changes {
            match change {
                Change::Directory(meta) => writer.append(meta, &mut io::empty())?,
                Change::Whiteout => writer.append(
                    &EntryMeta::new(path.clone(), EntryKind::Whiteout, 0),
                    &mut io::empty(),
                )?,
                Change::Content(meta, bytes) => writer.append(meta, &mut &bytes[..])?,
            }
            count += 1;
        }
        Ok(count)
    })?;
    for descriptor in &image.manifest.layers {
        output.copy_blob_from(source, descriptor)?;
    }
    let mut config = image.config.clone();
    let mut diff_ids = Vec::new();
    for id in image.config.diff_ids() {
        diff_ids.push(parse_digest(&id)?);
    }
    diff_ids.push(layer.diff_id.clone());
    config.set_diff_ids(&diff_ids);
    let created = rfc3339(spec.source_date_epoch);
    let mut history = image.config.history();
    history.push(HistoryEntry {
        created: Some(created.clone()),
        created_by: Some(format!(
            "sealcraft harden: {} packages and {} paths removed",
            packages_removed.len(),
            plan.removed.len()
        )),
        comment: Some("package managers, exclusive dependencies, unreachable libraries, docs and caches removed".into()),
        author: None,
        empty_layer: false,
    });
    config.set_history(&history);
    config.set_created(&created);
    let mut layers = image.manifest.layers.clone();
    layers.push(layer.descriptor.clone());
    Ok(commit_image(
        output,
        &config,
        layers,
        image.manifest.annotations.clone(),
    )?)
}
