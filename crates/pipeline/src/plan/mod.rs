//! `sealcraft.toml` parsed and validated into one [`Plan`] before any work
//! starts: [`raw`] holds the sections as written, and each section has its
//! validator in a file of its own; [`Plan::parse`] composes them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use sealcraft_oci::layer::Compression;
use serde::Serialize;
use toml::Spanned;

use crate::error::{Error, Result};

mod assembly;
mod dockerfile;
mod harden;
mod patch;
mod project;
mod publish;
mod raw;
mod scan;
mod sinks;
mod test;
mod upload;

pub use assembly::AssemblyPlan;
pub use dockerfile::DockerfilePlan;
pub use harden::HardenPlan;
pub use patch::{PatchPlan, PatchUpdate};
pub use project::KNOWN_ARCHITECTURES;
pub use publish::{PublishPlan, PublishTarget, SigningKey};
pub use scan::ScanPlan;
pub use sinks::{SinkDestination, SinkPlan};
pub use test::TestPlan;
pub use upload::{UploadCredentials, UploadPlan};

/// Inputs from outside the config file that the plan depends on.
#[derive(Debug, Clone, Default)]
pub struct PlanInputs {
    /// `SOURCE_DATE_EPOCH` from the environment; wins over the config file.
    pub source_date_epoch: Option<i64>,
}

/// A validated, fully resolved `sealcraft.toml`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config file.
    pub config_path: PathBuf,
    /// sha256 of the config file's bytes.
    pub config_digest: String,
    /// Project name.
    pub project: String,
    /// Version (never `latest`).
    pub version: String,
    /// Registry and namespace prefix of image names.
    pub registry: String,
    /// Architectures to produce.
    pub architectures: Vec<String>,
    /// How the image is made.
    pub source: BuildSource,
    /// The hardened stage, when configured.
    pub harden: Option<HardenPlan>,
    /// The patch stage, when configured.
    pub patch: Option<PatchPlan>,
    /// Whether to squash the built image.
    pub squash: bool,
    /// The image tests, when configured.
    pub test: Option<TestPlan>,
    /// Where run directories go.
    pub output_dir: PathBuf,
    /// Timestamp of everything the run writes into images.
    pub source_date_epoch: i64,
    /// Layer compression.
    pub compression: Compression,
    /// Signing and publishing, when configured.
    pub publish: Option<PublishPlan>,
    /// The vulnerability scan and its gate, when configured.
    pub scan: Option<ScanPlan>,
    /// Upload of the artifacts to object storage, when configured.
    pub upload: Option<UploadPlan>,
    /// Where events are shipped besides events.jsonl.
    pub sinks: Vec<SinkPlan>,
}

/// How the image is made: native assembly, or a Dockerfile.
#[derive(Debug, Clone)]
pub enum BuildSource {
    /// A pinned base, host files, a user and the runtime config (`[base]`, `[[files]]`, `[user]`, `[config]`).
    Assembly(AssemblyPlan),
    /// A multi-stage Dockerfile (`[build] dockerfile`).
    Dockerfile(DockerfilePlan),
}

/// The summary of a plan for run records.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// Config file path.
    pub config: String,
    /// Config file digest.
    pub config_digest: String,
    /// Base image name and digest (native assembly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// The Dockerfile and its digest (Dockerfile builds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// SOURCE_DATE_EPOCH used.
    pub source_date_epoch: i64,
}

/// What validators share: the text (for line numbers), the file, and its directory.
pub(crate) struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
    base_dir: PathBuf,
}

impl Checker<'_> {
    /// A config error at `span`, about `key`.
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> Error {
        self.config_error(span, key, message.into(), None)
    }

    /// A config error at `span` whose reason is another crate's error.
    pub(crate) fn error_caused_by(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.config_error(span, key, message.into(), Some(Box::new(cause)))
    }

    fn config_error(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: String,
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        let (line, column) = span.map_or((0, 0), |span| line_and_column(self.text, span.start));
        Error::Config {
            path: self.path.to_path_buf(),
            line,
            column,
            key: key.to_owned(),
            message,
            cause,
        }
    }

    /// `value` as a path: relative ones are against the config file's directory.
    pub(crate) fn resolve(&self, value: &str) -> PathBuf {
        let candidate = PathBuf::from(value);
        if candidate.is_absolute() {
            candidate
        } else {
            self.base_dir.join(candidate)
        }
    }
}

impl Plan {
    /// Reads and validates a config file.
    pub fn load(path: &Path, inputs: &PlanInputs) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, inputs)
    }

    /// Validates config text; relative paths are resolved against `path`'s directory.
    pub fn parse(text: &str, path: &Path, inputs: &PlanInputs) -> Result<Self> {
        let check = Checker {
            text,
            path,
            base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let raw: raw::RawConfig = toml::from_str(text)
            .map_err(|error| check.error(error.span(), "", error.message().trim()))?;
        let project = project::validate(&raw.project, &check)?;
        let source = build_source(&raw, &check, &project.architectures)?;
        let publish = raw
            .publish
            .as_ref()
            .map(|section| publish::validate(section, &project.registry, &project.name, &check))
            .transpose()?;
        Ok(Self {
            config_path: path.to_path_buf(),
            config_digest: sealcraft_oci::digest::sha256_of(text.as_bytes()).to_string(),
            source,
            harden: raw.harden.as_ref().and_then(harden::validate),
            patch: raw
                .patch
                .as_ref()
                .map(|section| patch::validate(section, raw.scan.as_ref(), &check))
                .transpose()?
                .flatten(),
            squash: raw.squash.enabled,
            test: raw
                .test
                .as_ref()
                .map(|section| test::validate(section, &check))
                .transpose()?
                .flatten(),
            output_dir: check.resolve(raw.output.dir.as_deref().unwrap_or("out")),
            source_date_epoch: inputs
                .source_date_epoch
                .or(raw.build.source_date_epoch)
                .unwrap_or(0),
            compression: compression(raw.build.compression.as_ref(), &check)?,
            scan: raw
                .scan
                .as_ref()
                .map(|section| scan::validate(section, &check))
                .transpose()?,
            upload: raw
                .upload
                .as_ref()
                .map(|section| upload::validate(section, &check))
                .transpose()?,
            sinks: sinks::validate(&raw.sinks, &check)?,
            publish,
            project: project.name,
            version: project.version,
            registry: project.registry,
            architectures: project.architectures,
        })
    }

    /// `{registry}/{project}:{version}-{arch}`.
    pub fn image_name(&self, architecture: &str) -> String {
        format!(
            "{}/{}:{}",
            self.registry,
            self.project,
            self.image_tag(architecture)
        )
    }

    /// `{version}-{arch}`.
    pub fn image_tag(&self, architecture: &str) -> String {
        format!("{}-{}", self.version, architecture)
    }

    /// `out/<project>-<version>-<arch>/`.
    pub fn run_dir(&self, architecture: &str) -> PathBuf {
        self.output_dir.join(format!(
            "{}-{}-{}",
            self.project, self.version, architecture
        ))
    }

    /// What run records say about the plan.
    pub fn summary(&self) -> PlanSummary {
        PlanSummary {
            config: self.config_path.display().to_string(),
            config_digest: self.config_digest.clone(),
            base_image: match &self.source {
                BuildSource::Assembly(assembly) => Some(format!(
                    "{}@{}",
                    assembly.base.display_name, assembly.base.digest
                )),
                BuildSource::Dockerfile(_) => None,
            },
            dockerfile: match &self.source {
                BuildSource::Dockerfile(build) => {
                    Some(format!("{}@{}", build.path.display(), build.digest))
                }
                BuildSource::Assembly(_) => None,
            },
            source_date_epoch: self.source_date_epoch,
        }
    }
}

/// How the image is made: a Dockerfile, or native assembly; the settings
/// of the other way are refused rather than ignored.
fn build_source(
    raw: &raw::RawConfig,
    check: &Checker<'_>,
    architectures: &[String],
) -> Result<BuildSource> {
    if let Some(dockerfile) = &raw.build.dockerfile {
        let assembly_sections = [
            raw.base.as_ref().map(|section| (section.span(), "base")),
            raw.user.as_ref().map(|section| (section.span(), "user")),
            raw.files.first().map(|section| (section.span(), "files")),
            raw.config
                .as_ref()
                .map(|section| (section.span(), "config")),
        ];
        if let Some((span, key)) = assembly_sections.into_iter().flatten().next() {
            return Err(check.error(
                Some(span),
                key,
                format!(
                    "[{key}] is for native assembly; with build.dockerfile the Dockerfile says what the image is"
                ),
            ));
        }
        return Ok(BuildSource::Dockerfile(dockerfile::validate(
            &raw.build,
            dockerfile,
            check,
            architectures,
        )?));
    }
    let dockerfile_only = [
        raw.build
            .context
            .as_ref()
            .map(|value| (value.span(), "build.context")),
        raw.build
            .network
            .as_ref()
            .map(|value| (value.span(), "build.network")),
        raw.build
            .runtime
            .as_ref()
            .map(|value| (value.span(), "build.runtime")),
        raw.build
            .bases
            .values()
            .next()
            .map(|value| (value.span(), "build.bases")),
        raw.build
            .secrets
            .first()
            .map(|value| (value.id.span(), "build.secrets")),
    ];
    if let Some((span, key)) = dockerfile_only.into_iter().flatten().next() {
        return Err(check.error(
            Some(span),
            key,
            "only applies to Dockerfile builds (set build.dockerfile)",
        ));
    }
    Ok(BuildSource::Assembly(assembly::validate(raw, check)?))
}

/// `[build] compression`.
fn compression(value: Option<&Spanned<String>>, check: &Checker<'_>) -> Result<Compression> {
    let Some(value) = value else {
        return Ok(Compression::Gzip);
    };
    Compression::from_name(value.get_ref()).ok_or_else(|| {
        let names: Vec<&str> = Compression::ALL
            .iter()
            .map(|choice| choice.name())
            .collect();
        check.error(
            Some(value.span()),
            "build.compression",
            format!("{:?} is not one of {}", value.get_ref(), names.join(", ")),
        )
    })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |index| index + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
