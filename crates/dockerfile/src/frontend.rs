//! What a Dockerfile asks for before anything runs: global ARG values, the
//! target, the stages it needs and the external images they name.
//!
//! The executor builds from this, and preflight checks from it that every
//! base image is pinned, so both agree on which images a build uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::instructions::{Command, Dockerfile, Stage};
use crate::words::{self, Vars};
use crate::{Error, Result};

/// An image a build would use that is not one of its own stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalImage {
    /// The Dockerfile line naming it.
    pub line: usize,
    /// `FROM` or `COPY`.
    pub instruction: &'static str,
    /// The name, after global ARG substitution.
    pub name: String,
}

/// A Dockerfile with its global arguments resolved.
pub struct Frontend<'a> {
    /// The Dockerfile.
    pub dockerfile: &'a Dockerfile,
    path: &'a Path,
    /// Global ARGs (with build-argument values) and the automatic platform arguments.
    pub meta_args: Vars,
    /// Build arguments a global ARG consumed.
    pub used_args: BTreeSet<String>,
}

impl<'a> Frontend<'a> {
    pub fn new(
        dockerfile: &'a Dockerfile,
        path: &'a Path,
        build_args: &BTreeMap<String, String>,
        architecture: &str,
    ) -> Result<Self> {
        let host = sealcraft_oci::import::host_architecture();
        let mut vars = Vars::from([
            ("TARGETPLATFORM".to_owned(), format!("linux/{architecture}")),
            ("TARGETOS".to_owned(), "linux".to_owned()),
            ("TARGETARCH".to_owned(), architecture.to_owned()),
            ("TARGETVARIANT".to_owned(), String::new()),
            ("BUILDPLATFORM".to_owned(), format!("linux/{host}")),
            ("BUILDOS".to_owned(), "linux".to_owned()),
            ("BUILDARCH".to_owned(), host),
            ("BUILDVARIANT".to_owned(), String::new()),
        ]);
        let mut used_args = BTreeSet::new();
        for declaration in &dockerfile.global_args {
            let value = match build_args.get(&declaration.name) {
                Some(value) => {
                    used_args.insert(declaration.name.clone());
                    Some(value.clone())
                }
                None => match &declaration.default {
                    Some(default) => Some(
                        words::expand_word(default, &vars, dockerfile.escape).map_err(|error| {
                            Error::GlobalArg {
                                path: path.to_path_buf(),
                                line: dockerfile.stages.first().map_or(1, |stage| stage.line),
                                name: declaration.name.clone(),
                                error,
                            }
                        })?,
                    ),
                    None => None,
                },
            };
            if let Some(value) = value {
                vars.insert(declaration.name.clone(), value);
            }
        }
        Ok(Self {
            dockerfile,
            path,
            meta_args: vars,
            used_args,
        })
    }

    fn at(&self, line: usize, error: Error) -> Error {
        Error::at(self.path, line, error)
    }

    /// The index of the target stage (the last one when none is named).
    pub fn target_index(&self, target: Option<&str>) -> Result<usize> {
        let stages = &self.dockerfile.stages;
        match target {
            None => Ok(stages.len() - 1),
            Some(target) => {
                let wanted = target.to_ascii_lowercase();
                stages
                    .iter()
                    .position(|stage| stage.name.as_deref() == Some(wanted.as_str()))
                    .ok_or_else(|| Error::UnknownTarget {
                        target: target.to_owned(),
                        stages: stages
                            .iter()
                            .map(Stage::label)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    }

    /// The earlier stage `name` refers to, if it names one.
    pub fn stage_ref(&self, name: &str, before: usize, line: usize) -> Result<Option<usize>> {
        let stages = &self.dockerfile.stages;
        if let Ok(index) = name.parse::<usize>() {
            if index < before {
                return Ok(Some(index));
            }
            return Err(self.at(line, Error::NotAnEarlierStage { index }));
        }
        let lower = name.to_ascii_lowercase();
        match stages
            .iter()
            .position(|stage| stage.name.as_deref() == Some(lower.as_str()))
        {
            Some(index) if index < before => Ok(Some(index)),
            Some(_) => Err(self.at(
                line,
                Error::DefinedLater {
                    name: name.to_owned(),
                },
            )),
            None => Ok(None),
        }
    }

    /// Substitutes global ARGs (FROM lines and `--from` see only those).
    pub fn expand_meta(&self, raw: &str, line: usize, keyword: &'static str) -> Result<String> {
        words::expand_word(raw, &self.meta_args, self.dockerfile.escape)
            .map_err(|error| self.at(line, Error::Word { keyword, error }))
    }

    /// The stages `target` depends on (itself included), in file order.
    pub fn needed_stages(&self, target: usize) -> Result<Vec<usize>> {
        let stages = &self.dockerfile.stages;
        let mut needed = BTreeSet::new();
        let mut pending = vec![target];
        while let Some(index) = pending.pop() {
            if !needed.insert(index) {
                continue;
            }
            for (line, keyword, raw) in references(&stages[index]) {
                let name = self.expand_meta(raw, line, keyword)?;
                if let Some(dependency) = self.stage_ref(&name, index, line)? {
                    pending.push(dependency);
                }
            }
        }
        Ok(needed.into_iter().collect())
    }

    /// The external images the stages in `needed` name.
    pub fn external_images(&self, needed: &[usize]) -> Result<Vec<ExternalImage>> {
        let mut images = Vec::new();
        for &index in needed {
            for (line, instruction, raw) in references(&self.dockerfile.stages[index]) {
                let name = self.expand_meta(raw, line, instruction)?;
                let is_stage = self.stage_ref(&name, index, line)?.is_some();
                if !is_stage && !name.eq_ignore_ascii_case("scratch") {
                    images.push(ExternalImage {
                        line,
                        instruction,
                        name,
                    });
                }
            }
        }
        Ok(images)
    }
}

/// The image names a stage refers to: its FROM and every `COPY --from`.
fn references(stage: &Stage) -> Vec<(usize, &'static str, &str)> {
    let mut names = vec![(stage.line, "FROM", stage.image.as_str())];
    for instruction in &stage.instructions {
        if let Command::Copy(copy) = &instruction.command
            && let Some(from) = &copy.from
        {
            names.push((instruction.line, "COPY", from.as_str()));
        }
    }
    names
}

/// The external images a build of `target` would use, for checks before it runs.
pub fn external_images(
    dockerfile: &Dockerfile,
    path: &Path,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
    architecture: &str,
) -> Result<Vec<ExternalImage>> {
    let frontend = Frontend::new(dockerfile, path, build_args, architecture)?;
    let target = frontend.target_index(target)?;
    let needed = frontend.needed_stages(target)?;
    frontend.external_images(&needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_target_s_stages_and_their_images_count() {
        let dockerfile = crate::parse::parse(
            "ARG BASE=debian:bookworm\nFROM ${BASE} AS builder\nFROM alpine:3 AS unused\nFROM scratch AS runtime\nCOPY --from=builder /x /x\nCOPY --from=busybox:1 /bin/busybox /bin/\n",
        )
        .unwrap();
        let images = external_images(
            &dockerfile,
            Path::new("Dockerfile"),
            None,
            &BTreeMap::new(),
            "amd64",
        )
        .unwrap();
        let names: Vec<(usize, &str)> = images
            .iter()
            .map(|image| (image.line, image.name.as_str()))
            .collect();
        assert_eq!(names, [(2, "debian:bookworm"), (6, "busybox:1")]);
        let args = BTreeMap::from([("BASE".to_owned(), "debian@sha256:abc".to_owned())]);
        let images = external_images(
            &dockerfile,
            Path::new("Dockerfile"),
            Some("builder"),
            &args,
            "amd64",
        )
        .unwrap();
        assert_eq!(images[0].name, "debian@sha256:abc");
        assert!(
            external_images(
                &dockerfile,
                Path::new("Dockerfile"),
                Some("nope"),
                &args,
                "amd64"
            )
            .is_err()
        );
    }
}
