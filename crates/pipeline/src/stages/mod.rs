//! The stages of `sealcraft run`, one file each. A stage is a function
//! from what the stage before produced (an image, an inventory) and the
//! plan section it needs to a [`Done`]: its value for the next stage, the
//! artifacts it read and wrote by digest, and the fields of its
//! `completed` event. [`crate::run`] composes them in the guide's order.

use std::path::{Path, PathBuf};

use sealcraft_oci::image::Image;
use sealcraft_oci::layout::Layout;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::events::EventLog;
use crate::plan::Plan;
use crate::run::Artifact;

pub(crate) mod attest;
pub(crate) mod build;
pub(crate) mod harden;
pub(crate) mod patch;
pub(crate) mod preflight;
pub(crate) mod publish;
pub(crate) mod sbom;
pub(crate) mod scan;
pub(crate) mod squash;
pub(crate) mod test;
pub(crate) mod upload;

/// The stages, in the order the guide demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Pins and inputs checked.
    Preflight,
    /// The image produced.
    Build,
    /// Package managers, exclusive dependencies and unreachable libraries removed.
    Harden,
    /// OS packages with fixes installed as one layer.
    Patch,
    /// All layers in one.
    Squash,
    /// Image tests: spec files and built-in suites.
    Test,
    /// CycloneDX and SPDX documents of the final image.
    Sbom,
    /// Vulnerabilities against the advisory database, and the gate.
    Scan,
    /// SLSA provenance, and a signature for every artifact.
    Attest,
    /// The artifacts to object storage.
    Upload,
    /// Signed, then pushed.
    Publish,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 11] = [
        Stage::Preflight,
        Stage::Build,
        Stage::Harden,
        Stage::Patch,
        Stage::Squash,
        Stage::Test,
        Stage::Sbom,
        Stage::Scan,
        Stage::Attest,
        Stage::Upload,
        Stage::Publish,
    ];

    /// The stage's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::Build => "build",
            Self::Harden => "harden",
            Self::Patch => "patch",
            Self::Squash => "squash",
            Self::Test => "test",
            Self::Sbom => "sbom",
            Self::Scan => "scan",
            Self::Attest => "attest",
            Self::Upload => "upload",
            Self::Publish => "publish",
        }
    }
}

/// What a stage hands on, and what the run record and its event say about it.
pub(crate) struct Done<T> {
    /// For the next stage.
    pub(crate) value: T,
    /// What it read, by digest.
    pub(crate) inputs: Vec<Artifact>,
    /// What it wrote, by digest.
    pub(crate) outputs: Vec<Artifact>,
    /// Fields of the `completed` event.
    pub(crate) fields: Value,
}

/// An image in the run's layout, under the tag the stage that made it gave it.
pub(crate) struct StageImage {
    /// The image.
    pub(crate) image: Image,
    /// Its tag in the run's layout (`{version}-{arch}-{stage}`).
    pub(crate) tag: String,
}

impl StageImage {
    /// The image as an artifact, named by its tag so a stage's input names
    /// the output of the stage that made it.
    pub(crate) fn artifact(&self) -> Artifact {
        Artifact {
            name: format!("oci:{}", self.tag),
            digest: self.image.descriptor.digest.to_string(),
            size: Some(self.image.layers_size()),
        }
    }

    /// The event fields every image-producing stage reports.
    pub(crate) fn fields(&self) -> Value {
        json!({
            "digest": self.image.descriptor.digest.to_string(),
            "layers": self.image.manifest.layers.len(),
            "size_bytes": self.image.layers_size(),
            "tag": self.tag,
        })
    }
}

/// What every stage can reach: the plan, the architecture, the run's
/// layout and event log, and what earlier stages recorded for later ones.
pub(crate) struct Context<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) architecture: &'a str,
    pub(crate) layout: Layout,
    pub(crate) run_dir: PathBuf,
    pub(crate) log: EventLog<'a>,
    pub(crate) run_id: String,
    pub(crate) started: String,
    /// Files of the run directory to sign, with their digests.
    pub(crate) artifacts: Vec<(PathBuf, String)>,
    /// Every external input of the build, for provenance.
    pub(crate) dependencies: Vec<sealcraft_attest::ResourceDescriptor>,
}

impl Context<'_> {
    /// `{version}-{arch}-{suffix}`, the tag of a stage's image.
    pub(crate) fn stage_tag(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.plan.image_tag(self.architecture))
    }

    /// Loads the image just tagged `tag` in the run's layout.
    pub(crate) fn tagged(&self, tag: String) -> Result<StageImage> {
        let image = Image::load(&self.layout, Some(&tag), None)?;
        Ok(StageImage { image, tag })
    }

    /// `{registry}/{project}:{version}-{arch}` reduced to a file-name part.
    pub(crate) fn short_name(&self) -> String {
        let name = self.plan.image_name(self.architecture);
        name.rsplit('/').next().unwrap_or(&name).replace(':', "-")
    }

    /// Writes `value` as pretty JSON into the run directory, atomically,
    /// and keeps it among the artifacts to sign.
    pub(crate) fn write_json(
        &mut self,
        file_name: &str,
        value: &impl Serialize,
    ) -> Result<Artifact> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Serialize {
            what: file_name.to_owned(),
            source,
        })?;
        bytes.push(b'\n');
        let path = self.run_dir.join(file_name);
        sealcraft_files::write_atomically(&path, &bytes)?;
        let digest = sealcraft_oci::digest::sha256_of(&bytes).to_string();
        self.artifacts.push((path, digest.clone()));
        Ok(Artifact {
            name: file_name.to_owned(),
            digest,
            size: Some(bytes.len() as u64),
        })
    }
}

/// The file name of a run-directory artifact.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
