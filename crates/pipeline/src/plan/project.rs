//! `[project]`: name, pinned version, registry and architectures; every
//! image name they make must be a valid reference.

use sealcraft_oci::reference::Reference;

use super::Checker;
use super::raw::RawProject;
use crate::error::Result;

/// Architectures sealcraft can name (GOARCH values).
pub const KNOWN_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64",
];

/// The validated `[project]`.
pub(super) struct Project {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) registry: String,
    pub(super) architectures: Vec<String>,
}

/// Validates `[project]`: a version that is not `latest`, known architectures,
/// and valid image names.
pub(super) fn validate(raw: &RawProject, check: &Checker<'_>) -> Result<Project> {
    let project = raw.name.get_ref().clone();
    let version = raw.version.get_ref().clone();
    if version.is_empty() || version.eq_ignore_ascii_case("latest") {
        return Err(check.error(
            Some(raw.version.span()),
            "project.version",
            "a release needs a pinned version; `latest` and empty versions are refused",
        ));
    }
    let architectures = raw.architectures.get_ref().clone();
    if architectures.is_empty() {
        return Err(check.error(
            Some(raw.architectures.span()),
            "project.architectures",
            "name at least one architecture (e.g. [\"amd64\"]); image tags carry it",
        ));
    }
    for architecture in &architectures {
        if !KNOWN_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(check.error(
                Some(raw.architectures.span()),
                "project.architectures",
                format!(
                    "unknown architecture {architecture:?}; expected one of {}",
                    KNOWN_ARCHITECTURES.join(", ")
                ),
            ));
        }
        let name = format!(
            "{}/{}:{}-{}",
            raw.registry.get_ref(),
            project,
            version,
            architecture
        );
        Reference::parse(&name).map_err(|error| {
            check.error(
                Some(raw.name.span()),
                "project",
                format!("the image name {name:?} is not valid: {error}"),
            )
        })?;
    }

    let registry = raw.registry.get_ref().trim_end_matches('/').to_owned();
    Ok(Project {
        name: project,
        version,
        registry,
        architectures,
    })
}
