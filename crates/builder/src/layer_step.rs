//! A layer step (RUN, COPY, ADD, WORKDIR): the stage's layers mounted
//! read-only below a fresh upper directory, the work done, the upper
//! directory turned into the layer and the result recorded in the step
//! cache; or the result taken from the cache.

use std::path::PathBuf;
use std::time::Instant;

use sealcraft_dockerfile::Instruction;
use sealcraft_oci::image::{LayerOptions, rfc3339};
use sealcraft_oci::layer::Compression;
use sealcraft_oci::manifest::HistoryEntry;
use sealcraft_runtime::OverlayMount;

use crate::cache::{LayerRef, StepRecord};
use crate::rootfs::Root;
use crate::run_step::{Placeholder, remove_placeholders};
use crate::spec::{StepStatus, StepSummary};
use crate::stage::Builder;
use crate::working::Working;
use crate::{Error, Result};

impl Builder<'_> {
    /// Built layers are stored uncompressed: most never leave the store
    /// (builder stages), and those that do are compressed once at commit.
    pub(crate) fn layer_options(&self) -> LayerOptions {
        LayerOptions {
            clamp_mtime: Some(self.spec.source_date_epoch),
            compression: Compression::None,
            keep_devices: true,
        }
    }

    pub(crate) fn require_root(&self) -> Result<()> {
        if rustix::process::geteuid().is_root() {
            Ok(())
        } else {
            Err(Error::NeedsRoot)
        }
    }

    pub(crate) fn lower_dirs(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>> {
        layers
            .iter()
            .rev()
            .map(|layer| self.store.layer_dir(layer))
            .collect()
    }

    /// Mounts `layers` read-only (for COPY --from sources and checks).
    pub(crate) fn mount_read_only(&self, layers: &[LayerRef]) -> Result<OverlayMount> {
        self.require_root()?;
        let lowers = self.lower_dirs(layers)?;
        let target = self.store.work().fresh("view").map_err(Error::store(
            "creating a mount point in",
            self.store.work().path(),
        ))?;
        Ok(OverlayMount::mount(
            &lowers,
            None,
            &target,
            &self.store.empty_dir(),
        )?)
    }

    /// Runs one layer-producing step, or takes its result from the cache.
    pub(crate) fn layer_step(
        &mut self,
        working: &mut Working,
        label: &str,
        instruction: &Instruction,
        created_by: String,
        key: String,
        apply: &mut dyn FnMut(&mut Self, &Root) -> Result<Vec<Placeholder>>,
    ) -> Result<()> {
        let line = instruction.line;
        let clock = Instant::now();
        let cached = if self.spec.no_cache {
            None
        } else {
            self.store.lookup_step(&key)
        };
        let (record, was_cached) = match cached {
            Some(record) => {
                self.report(label, line, &instruction.source, StepStatus::Cached);
                (record, true)
            }
            None => {
                self.report(label, line, &instruction.source, StepStatus::Started);
                let record = self.execute_step(working, &key, apply).map_err(|error| {
                    if error.has_line() {
                        error
                    } else {
                        self.at(line, error)
                    }
                })?;
                self.report(label, line, &instruction.source, StepStatus::Done);
                (record, false)
            }
        };
        let layer_digest = record
            .layer
            .as_ref()
            .map(|layer| layer.descriptor.digest.to_string());
        let empty = record.layer.is_none();
        if let Some(layer) = record.layer {
            self.built_layers
                .insert(layer.descriptor.digest.to_string());
            working.layers.push(layer);
        }
        working.history.push(HistoryEntry {
            created: Some(rfc3339(self.spec.source_date_epoch)),
            created_by: Some(created_by),
            comment: Some("sealcraft build".into()),
            author: None,
            empty_layer: empty,
        });
        self.steps.push(StepSummary {
            stage: label.to_owned(),
            line,
            instruction: instruction.command.keyword(),
            cached: was_cached,
            layer: layer_digest,
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        Ok(())
    }

    pub(crate) fn execute_step(
        &mut self,
        working: &Working,
        key: &str,
        apply: &mut dyn FnMut(&mut Self, &Root) -> Result<Vec<Placeholder>>,
    ) -> Result<StepRecord> {
        self.require_root()?;
        let lowers = self.lower_dirs(&working.layers)?;
        let fresh = |what: &str| {
            self.store.work().fresh(what).map_err(Error::store(
                "creating a directory in",
                self.store.work().path(),
            ))
        };
        let (upper, overlay_work, merged) =
            (fresh("upper")?, fresh("overlay-work")?, fresh("rootfs")?);
        let mount = OverlayMount::mount(
            &lowers,
            Some((&upper, &overlay_work)),
            &merged,
            &self.store.empty_dir(),
        )?;
        let root = Root::open(mount.path()).map_err(Error::store("opening", &merged))?;
        let outcome = apply(self, &root);
        drop(root);
        mount.unmount()?;
        let placeholders = outcome?;
        remove_placeholders(&upper, &placeholders)
            .map_err(Error::store("cleaning mount points out of", &upper))?;
        let diff = crate::diff::commit_upper(&self.store.blobs, &upper, &self.layer_options())?;
        let layer = match diff.layer {
            Some(written) => {
                self.store
                    .adopt_upper(&upper, &written.diff_id)
                    .map_err(Error::store("keeping the layer directory", &upper))?;
                Some(LayerRef {
                    descriptor: written.descriptor,
                    diff_id: written.diff_id,
                })
            }
            None => None,
        };
        let record = StepRecord { layer };
        self.store.record_step(key, &record)?;
        Ok(record)
    }
}
