//! Squash: every layer of an image into one, with every config field kept.

use serde::Serialize;

use crate::error::Result;
use crate::image::{Image, LayerOptions, WrittenLayer, commit_image, write_view_layer};
use crate::layer::LayerLimits;
use crate::layout::Layout;
use crate::manifest::{Descriptor, HistoryEntry};
use crate::view::MergedView;

/// What a squash produced.
#[derive(Debug, Clone, Serialize)]
pub struct SquashReport {
    /// Layers before.
    pub layers_before: usize,
    /// Sum of the layer blob sizes before.
    pub size_before: u64,
    /// Size of the single layer blob after.
    pub size_after: u64,
    /// Uncompressed size of the single layer.
    pub uncompressed_size: u64,
    /// The new layer.
    pub layer: WrittenLayer,
    /// The new image manifest.
    pub manifest: Descriptor,
}

/// Squashes `image` (stored in `source`) into a one-layer image stored in
/// `target`. The config is the original with `rootfs` replaced and a
/// history entry appended; the original history entries stay, marked as
/// empty layers, so that history and diff IDs still line up.
pub fn squash(
    source: &Layout,
    image: &Image,
    target: &Layout,
    options: &LayerOptions,
    limits: &LayerLimits,
) -> Result<SquashReport> {
    let view = MergedView::from_image(source, &image.manifest, &image.config, limits)?;
    let layer = write_view_layer(target, &view, options)?;
    let mut config = image.config.clone();
    config.set_diff_ids(std::slice::from_ref(&layer.diff_id));
    let mut history: Vec<HistoryEntry> = image
        .config
        .history()
        .into_iter()
        .map(|mut entry| {
            entry.empty_layer = true;
            entry
        })
        .collect();
    history.push(HistoryEntry {
        created: image.config.created().map(str::to_owned),
        created_by: Some(format!("sealcraft squash {}", image.descriptor.digest)),
        comment: Some(format!(
            "squashed {} layers into one; whiteouts applied",
            image.manifest.layers.len()
        )),
        author: None,
        empty_layer: false,
    });
    config.set_history(&history);
    let manifest = commit_image(
        target,
        &config,
        vec![layer.descriptor.clone()],
        image.manifest.annotations.clone(),
    )?;
    Ok(SquashReport {
        layers_before: image.manifest.layers.len(),
        size_before: image.layers_size(),
        size_after: layer.descriptor.size,
        uncompressed_size: layer.uncompressed_size,
        layer,
        manifest,
    })
}
