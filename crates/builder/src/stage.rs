//! The stage loop: only the stages the target needs, in file order; each
//! starts from its base (scratch, an earlier stage or an external image)
//! and applies its instructions; the target is checked for a non-root user
//! and committed to the output layout.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use sealcraft_dockerfile::{Command, Frontend, IgnoreRules, Vars};
use sealcraft_inventory::{Accounts, accounts::is_numeric_user};
use sealcraft_oci::digest::Digest;
use sealcraft_oci::image::{commit_image, rfc3339};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION, Descriptor};
use sealcraft_runtime::Runtime;

use crate::bases::{self, BaseImage, ResolvedBase};
use crate::cache::Store;
use crate::config::PROXY_ARGS;
use crate::rootfs::Root;
use crate::spec::{BuildEnvironment, BuildReport, BuildSpec, StepEvent, StepStatus, StepSummary};
use crate::working::Working;
use crate::{Error, Result};

pub(crate) struct Builder<'a> {
    pub(crate) spec: &'a BuildSpec<'a>,
    pub(crate) environment: &'a BuildEnvironment<'a>,
    pub(crate) store: Store,
    pub(crate) runtime: Runtime,
    pub(crate) context: Root,
    pub(crate) ignore: IgnoreRules,
    pub(crate) frontend: Frontend<'a>,
    pub(crate) results: Vec<Option<Working>>,
    pub(crate) bases: Vec<ResolvedBase>,
    pub(crate) steps: Vec<StepSummary>,
    pub(crate) used_args: BTreeSet<String>,
    pub(crate) step_number: usize,
    pub(crate) step_total: usize,
    pub(crate) external: BTreeMap<String, BaseImage>,
    pub(crate) container_counter: u64,
    /// Blobs of the layers steps made (stored uncompressed).
    pub(crate) built_layers: BTreeSet<String>,
}

/// Builds `spec` into `output` (not tagged: the caller names it).
pub fn build(
    spec: &BuildSpec<'_>,
    environment: &BuildEnvironment<'_>,
    output: &Layout,
) -> Result<BuildReport> {
    let store = Store::open(&environment.store)?;
    let context = Root::open(&spec.context).map_err(|source| Error::Host {
        path: spec.context.clone(),
        source,
    })?;
    let ignore = match fs::read_to_string(spec.context.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(source) => {
            return Err(Error::Host {
                path: spec.context.join(".dockerignore"),
                source,
            });
        }
    };
    let runtime = Runtime::new(&environment.runtime, store.work().path())?;
    let mut builder = Builder {
        spec,
        environment,
        store,
        runtime,
        context,
        ignore,
        frontend: Frontend::new(
            spec.dockerfile,
            &spec.dockerfile_path,
            &spec.build_args,
            &spec.architecture,
        )?,
        results: vec![None; spec.dockerfile.stages.len()],
        bases: Vec::new(),
        steps: Vec::new(),
        used_args: BTreeSet::new(),
        step_number: 0,
        step_total: 0,
        external: BTreeMap::new(),
        container_counter: 0,
        built_layers: BTreeSet::new(),
    };
    builder.run(output)
}

impl Builder<'_> {
    pub(crate) fn path(&self) -> &Path {
        &self.spec.dockerfile_path
    }

    pub(crate) fn at(&self, line: usize, error: Error) -> Error {
        Error::at(self.path(), line, error)
    }

    /// A word of an instruction that does not expand, at its line.
    pub(crate) fn word_error(
        &self,
        line: usize,
        keyword: &'static str,
        error: sealcraft_dockerfile::WordError,
    ) -> Error {
        self.at(line, Error::Word { keyword, error })
    }

    pub(crate) fn run(&mut self, output: &Layout) -> Result<BuildReport> {
        let dockerfile = self.spec.dockerfile;
        let target = self.frontend.target_index(self.spec.target.as_deref())?;
        let needed = self.frontend.needed_stages(target)?;
        self.step_total = needed
            .iter()
            .map(|&index| dockerfile.stages[index].instructions.len() + 1)
            .sum();
        for &index in &needed {
            let working = self.build_stage(index)?;
            self.results[index] = Some(working);
        }
        let working = self.results[target]
            .clone()
            .unwrap_or_else(|| unreachable!("the target was built last"));
        let user = working.config.runtime_config().user;
        if !self.spec.allow_root {
            self.check_user(
                &working,
                working.user_line.unwrap_or(dockerfile.stages[target].line),
            )?;
        }
        let manifest = self.commit(&working, output)?;
        let unused_build_args = self
            .spec
            .build_args
            .keys()
            .filter(|name| {
                !self.used_args.contains(*name)
                    && !self.frontend.used_args.contains(*name)
                    && !PROXY_ARGS.contains(&name.as_str())
            })
            .cloned()
            .collect();
        Ok(BuildReport {
            manifest,
            target: dockerfile.stages[target].label(),
            stages: needed
                .iter()
                .map(|&index| dockerfile.stages[index].label())
                .collect(),
            bases: self.bases.clone(),
            steps: self.steps.clone(),
            unused_build_args,
            user,
            layers: working.layers.len(),
        })
    }

    pub(crate) fn report(&self, stage: &str, line: usize, source: &str, status: StepStatus) {
        let shortened: String = if source.chars().count() > 120 {
            source.chars().take(117).chain("...".chars()).collect()
        } else {
            source.to_owned()
        };
        self.environment.reporter.step(&StepEvent {
            stage,
            number: self.step_number,
            total: self.step_total,
            line,
            instruction: &shortened,
            status,
        });
    }

    pub(crate) fn resolve_external(&mut self, requested: &str, line: usize) -> Result<BaseImage> {
        let source = self
            .spec
            .bases
            .get(requested)
            .cloned()
            .unwrap_or_else(|| requested.to_owned());
        if let Some(known) = self.external.get(&source) {
            return Ok(known.clone());
        }
        let resolver = bases::Resolver {
            architecture: &self.spec.architecture,
            require_pinned: self.spec.require_pinned,
            store: &self.store,
            registry: self.environment.registry,
        };
        let base = resolver
            .resolve(requested, &source, line)
            .map_err(|error| self.at(line, error))?;
        self.bases.push(base.record.clone());
        self.external.insert(source, base.clone());
        Ok(base)
    }

    pub(crate) fn build_stage(&mut self, index: usize) -> Result<Working> {
        let stage = &self.spec.dockerfile.stages[index];
        let label = stage.label();
        self.step_number += 1;
        let from = self
            .frontend
            .expand_meta(&stage.image, stage.line, "FROM")?;
        self.report(
            &label,
            stage.line,
            &format!("FROM {from}"),
            StepStatus::Started,
        );
        if let Some(platform) = &stage.platform {
            let platform = self.frontend.expand_meta(platform, stage.line, "FROM")?;
            let wanted = format!("linux/{}", self.spec.architecture);
            if platform != wanted && !platform.starts_with(&format!("{wanted}/")) {
                return Err(self.at(stage.line, Error::Platform { platform, wanted }));
            }
        }
        let mut working =
            if let Some(dependency) = self.frontend.stage_ref(&from, index, stage.line)? {
                let mut inherited = self.results[dependency]
                    .clone()
                    .unwrap_or_else(|| unreachable!("dependencies are built first"));
                inherited.args = Vars::new();
                inherited.cmd_set = false;
                inherited
            } else if from.eq_ignore_ascii_case("scratch") {
                Working::scratch(&self.spec.architecture)
            } else {
                let base = self.resolve_external(&from, stage.line)?;
                Working::from_image(&base)
            };
        self.report(
            &label,
            stage.line,
            &format!("FROM {from}"),
            StepStatus::Done,
        );
        let has_run = stage
            .instructions
            .iter()
            .any(|instruction| matches!(instruction.command, Command::Run(_)));
        if has_run {
            let host = sealcraft_oci::import::host_architecture();
            if host != self.spec.architecture {
                return Err(self.at(
                    stage.line,
                    Error::ForeignArchitecture {
                        stage: label,
                        architecture: self.spec.architecture.clone(),
                        host,
                    },
                ));
            }
        }
        for instruction in &stage.instructions {
            self.step_number += 1;
            self.instruction(&mut working, &label, index, instruction)?;
        }
        Ok(working)
    }

    /// Fails unless the image's user resolves to a non-zero uid.
    pub(crate) fn check_user(&self, working: &Working, line: usize) -> Result<()> {
        let user = working.config.runtime_config().user;
        let accounts = if is_numeric_user(user.as_deref()) || working.layers.is_empty() {
            Accounts::default()
        } else {
            let mount = self.mount_read_only(&working.layers)?;
            let root = Root::open(mount.path()).map_err(Error::store("opening", mount.path()))?;
            crate::users::accounts(&root)
        };
        accounts
            .check_non_root(user.as_deref())
            .map(|_| ())
            .map_err(|error| self.at(line, Error::RootUser { error }))
    }

    pub(crate) fn commit(&self, working: &Working, output: &Layout) -> Result<Descriptor> {
        let mut config = working.config.clone();
        let diff_ids: Vec<Digest> = working
            .layers
            .iter()
            .map(|layer| layer.diff_id.clone())
            .collect();
        config.set_diff_ids(&diff_ids);
        config.set_history(&working.history);
        config.set_created(&rfc3339(self.spec.source_date_epoch));
        let mut descriptors = Vec::new();
        for layer in &working.layers {
            // Base layers ship as they came; layers this build made get the asked compression.
            let descriptor = if self.built_layers.contains(layer.descriptor.digest.as_ref()) {
                self.store.compressed(layer, self.spec.compression)?
            } else {
                layer.descriptor.clone()
            };
            output.copy_blob_from(&self.store.blobs, &descriptor)?;
            descriptors.push(descriptor);
        }
        let mut annotations = BTreeMap::new();
        if let Some((name, digest)) = &working.base {
            annotations.insert(BASE_NAME_ANNOTATION.to_owned(), name.clone());
            annotations.insert(BASE_DIGEST_ANNOTATION.to_owned(), digest.clone());
        }
        Ok(commit_image(output, &config, descriptors, annotations)?)
    }
}
