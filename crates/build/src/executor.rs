//! Executing a parsed Dockerfile into an image.
//!
//! Only the stages the target needs are built (FROM and `COPY --from`
//! edges), in file order. A stage is a stack of layer directories; every
//! RUN, COPY, ADD and (when it creates a directory) WORKDIR mounts that
//! stack under a fresh overlay upper directory, does its work, and the
//! upper directory becomes the step's layer. Config-only instructions
//! change the config and add a history entry.
//!
//! Each layer step has a cache key: the chain ID of the layers below it,
//! the instruction with its arguments substituted, and its inputs (the
//! content and metadata of context files for COPY, the environment, user,
//! working directory, network and mounts for RUN). Secret values and the
//! values of build arguments that are not part of the environment never
//! enter a key, a layer or the history. Timestamps are clamped to
//! SOURCE_DATE_EPOCH and entries sorted, so the same inputs give the same
//! digest whenever the RUN steps themselves are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sealcraft_oci::digest::{Digest, sha256_of};
use sealcraft_oci::image::{LayerOptions, commit_image, rfc3339};
use sealcraft_oci::layer::Compression;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{
    BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION, Descriptor, HistoryEntry, ImageConfig,
};
use sealcraft_oci::unpack::{UnpackOptions, unpack_layer};
use sealcraft_secrets::Secret;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::bases::{self, BaseImage, ResolvedBase};
use crate::cache::{LayerRef, StepRecord, Store};
use crate::copy::{self, Chmod, Ownership};
use crate::dockerfile::{self, Command, CopySource, Dockerfile, Form, Instruction, Network};
use crate::frontend::Frontend;
use crate::ignore::IgnoreRules;
use crate::mounts::{self, Mount, Sharing};
use crate::overlay::OverlayMount;
use crate::rootfs::{NewDir, Root};
use crate::runtime::{ExtraMount, ProcessSpec, Runtime, RuntimeSettings};
use crate::words::{self, Vars};
use crate::{Error, Result};

/// Bumped whenever what a cache key covers changes.
const CACHE_VERSION: &str = "sealcraft-build-cache/2";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Build arguments every Dockerfile may use without declaring them; they reach RUN steps only.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    /// The parsed Dockerfile.
    pub dockerfile: &'a Dockerfile,
    /// Where it came from (for messages).
    pub dockerfile_path: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// The stage to build (the last one by default).
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Secrets by id, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, Secret>,
    /// Images that stand in for names FROM and `COPY --from` give.
    pub bases: BTreeMap<String, String>,
    /// Refuse base images not named by digest.
    pub require_pinned: bool,
    /// The architecture to build for (RUN steps need it to be the host's).
    pub architecture: String,
    /// Every new timestamp, and the clamp for copied ones.
    pub source_date_epoch: i64,
    /// Compression of new layers.
    pub compression: Compression,
    /// Run every RUN step without network.
    pub network_none: bool,
    /// Ignore the step cache (results are still recorded).
    pub no_cache: bool,
    /// Allow a final image that runs as root.
    pub allow_root: bool,
}

/// The machinery a build uses.
pub struct BuildEnvironment<'a> {
    /// The build store (layers, step cache, cache mounts).
    pub store: PathBuf,
    /// The OCI runtime for RUN steps.
    pub runtime: RuntimeSettings,
    /// Registry access for base images, if any.
    pub registry: Option<&'a sealcraft_registry::Client>,
    /// Progress and step output.
    pub reporter: &'a dyn BuildReporter,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// About to run.
    Started,
    /// Taken from the cache.
    Cached,
    /// Ran.
    Done,
}

/// One step's progress.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent<'a> {
    /// The stage (name or index).
    pub stage: &'a str,
    /// 1-based step number in the build.
    pub number: usize,
    /// Steps in the build.
    pub total: usize,
    /// The Dockerfile line.
    pub line: usize,
    /// The instruction as written (shortened).
    pub instruction: &'a str,
    /// Where it stands.
    pub status: StepStatus,
}

/// Receives progress; the binary renders it.
pub trait BuildReporter {
    /// A step started, ran, or came from the cache.
    fn step(&self, event: &StepEvent<'_>);
    /// A line a RUN step printed.
    fn output(&self, stage: &str, line: &str);
}

/// One step in the report.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    /// The stage.
    pub stage: String,
    /// The Dockerfile line.
    pub line: usize,
    /// The instruction keyword.
    pub instruction: &'static str,
    /// From the cache.
    pub cached: bool,
    /// The layer's blob digest, when the step made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Time taken.
    pub duration_ms: u64,
}

/// What a build produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// The image's manifest in the output layout.
    pub manifest: Descriptor,
    /// The target stage.
    pub target: String,
    /// The stages built, in order.
    pub stages: Vec<String>,
    /// Every external image used, with the digest it resolved to.
    pub bases: Vec<ResolvedBase>,
    /// The layer steps.
    pub steps: Vec<StepSummary>,
    /// Build arguments no ARG consumed.
    pub unused_build_args: Vec<String>,
    /// The image's user.
    pub user: Option<String>,
    /// Layers in the image.
    pub layers: usize,
}

/// The state of a stage as it is built (and of a finished stage).
#[derive(Debug, Clone)]
struct Working {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    history: Vec<HistoryEntry>,
    shell: Vec<String>,
    args: Vars,
    cmd_set: bool,
    base: Option<(String, String)>,
    /// The line of the last USER instruction, for messages about the user.
    user_line: Option<usize>,
}

impl Working {
    fn from_image(base: &BaseImage) -> Self {
        let shell = base
            .image
            .config
            .runtime_config_json()
            .and_then(|config| config.get("Shell"))
            .and_then(|shell| serde_json::from_value::<Vec<String>>(shell.clone()).ok())
            .filter(|shell| !shell.is_empty())
            .unwrap_or_else(default_shell);
        Self {
            history: base.image.config.history(),
            config: base.image.config.clone(),
            layers: base.layers.clone(),
            shell,
            args: Vars::new(),
            cmd_set: false,
            base: Some((base.record.source.clone(), base.record.digest.clone())),
            user_line: None,
        }
    }

    fn scratch(architecture: &str) -> Self {
        Self {
            config: ImageConfig::new(architecture, "linux"),
            layers: Vec::new(),
            history: Vec::new(),
            shell: default_shell(),
            args: Vars::new(),
            cmd_set: false,
            base: None,
            user_line: None,
        }
    }

    /// Stage ARGs overlaid with the config's ENV (ENV wins, as in Docker).
    fn vars(&self) -> Vars {
        let mut vars = self.args.clone();
        for assignment in self.config.runtime_config().env.unwrap_or_default() {
            if let Some((key, value)) = assignment.split_once('=') {
                vars.insert(key.to_owned(), value.to_owned());
            }
        }
        vars
    }

    /// `path` as an absolute image path: relative ones are under WORKDIR (a trailing `/` is kept).
    fn in_workdir(&self, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_owned();
        }
        let workdir = self
            .config
            .runtime_config()
            .working_dir
            .unwrap_or_else(|| "/".into());
        format!("{}/{path}", workdir.trim_end_matches('/'))
    }

    /// The OCI chain ID of the layers, or `scratch`.
    fn chain(&self) -> String {
        chain_id(&self.layers)
    }
}

fn chain_id(layers: &[LayerRef]) -> String {
    let mut chain: Option<String> = None;
    for layer in layers {
        chain = Some(match chain {
            None => layer.diff_id.to_string(),
            Some(previous) => {
                sha256_of(format!("{previous} {}", layer.diff_id).as_bytes()).to_string()
            }
        });
    }
    chain.unwrap_or_else(|| "scratch".to_owned())
}

fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// The directories holding one step's secrets, removed when dropped.
struct SecretFiles(Vec<PathBuf>);

impl Drop for SecretFiles {
    fn drop(&mut self) {
        for directory in &self.0 {
            let _ = fs::remove_dir_all(directory);
        }
    }
}

/// Writes `secret` into `directory` with the mode and owner the mount asks for.
fn write_secret(
    directory: &Path,
    secret: &Secret,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<PathBuf> {
    let path = directory.join("secret");
    crate::runtime::write_private(&path, secret.expose().as_bytes())
        .map_err(Error::store("writing a secret file in", directory))?;
    std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
        .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(mode)))
        .map_err(Error::store("protecting", &path))?;
    Ok(path)
}

/// Everything one RUN step needs once its filesystem is mounted.
struct RunRequest {
    stage: String,
    argv: Vec<String>,
    env: Vec<String>,
    user: String,
    cwd: String,
    network_none: bool,
    mounts: Vec<Mount>,
    command_text: String,
}

/// A path that a step's mount makes the runtime create, and what to undo.
struct Placeholder {
    /// Components that did not exist, outermost first, relative to the root.
    created: Vec<PathBuf>,
    /// Existing ancestors (relative) with their mode and owner, to drop a mere copy-up.
    ancestors: Vec<(PathBuf, u32, u32, u32)>,
}

struct Builder<'a> {
    spec: &'a BuildSpec<'a>,
    environment: &'a BuildEnvironment<'a>,
    store: Store,
    runtime: Option<Runtime>,
    context: Root,
    ignore: IgnoreRules,
    frontend: Frontend<'a>,
    results: Vec<Option<Working>>,
    bases: Vec<ResolvedBase>,
    steps: Vec<StepSummary>,
    used_args: BTreeSet<String>,
    step_number: usize,
    step_total: usize,
    external: BTreeMap<String, BaseImage>,
    container_counter: u64,
    /// Blobs of the layers steps made (stored uncompressed).
    built_layers: BTreeSet<String>,
}

/// Builds `spec` into `output` (not tagged: the caller names it).
pub fn build(
    spec: &BuildSpec<'_>,
    environment: &BuildEnvironment<'_>,
    output: &Layout,
) -> Result<BuildReport> {
    let store = Store::open(&environment.store)
        .map_err(Error::store("opening the build store", &environment.store))?;
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
    let mut builder = Builder {
        spec,
        environment,
        store,
        runtime: None,
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
    fn path(&self) -> &Path {
        &self.spec.dockerfile_path
    }

    fn at(&self, line: usize, error: Error) -> Error {
        Error::at(self.path(), line, error)
    }

    fn instruction_error(
        &self,
        line: usize,
        keyword: &'static str,
        message: impl Into<String>,
    ) -> Error {
        self.at(
            line,
            Error::Instruction {
                keyword,
                message: message.into(),
            },
        )
    }

    fn run(&mut self, output: &Layout) -> Result<BuildReport> {
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

    fn report(&self, stage: &str, line: usize, source: &str, status: StepStatus) {
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

    fn resolve_external(&mut self, requested: &str, line: usize) -> Result<BaseImage> {
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

    fn build_stage(&mut self, index: usize) -> Result<Working> {
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
                return Err(self.instruction_error(
                    stage.line,
                    "FROM",
                    format!("--platform={platform}: this build is for {wanted}"),
                ));
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
                return Err(self.instruction_error(
                    stage.line,
                    "FROM",
                    format!(
                        "stage {label} has RUN steps, which cannot run for {} on this {host} host",
                        self.spec.architecture
                    ),
                ));
            }
        }
        for instruction in &stage.instructions {
            self.step_number += 1;
            self.instruction(&mut working, &label, index, instruction)?;
        }
        Ok(working)
    }

    fn expand(
        &self,
        working: &Working,
        raw: &str,
        line: usize,
        keyword: &'static str,
    ) -> Result<String> {
        words::expand_word(raw, &working.vars(), self.spec.dockerfile.escape)
            .map_err(|error| self.instruction_error(line, keyword, error.to_string()))
    }

    fn expand_list(
        &self,
        working: &Working,
        raw: &[String],
        line: usize,
        keyword: &'static str,
    ) -> Result<Vec<String>> {
        let vars = working.vars();
        let mut out = Vec::new();
        for word in raw {
            out.extend(
                words::expand_words(word, &vars, self.spec.dockerfile.escape)
                    .map_err(|error| self.instruction_error(line, keyword, error.to_string()))?,
            );
        }
        Ok(out)
    }

    fn config_step(&self, working: &mut Working, created_by: String) {
        working.history.push(HistoryEntry {
            created: Some(rfc3339(self.spec.source_date_epoch)),
            created_by: Some(created_by),
            comment: Some("sealcraft build".into()),
            author: None,
            empty_layer: true,
        });
    }

    fn instruction(
        &mut self,
        working: &mut Working,
        label: &str,
        stage_index: usize,
        instruction: &Instruction,
    ) -> Result<()> {
        let line = instruction.line;
        let keyword = instruction.command.keyword();
        if !matches!(
            instruction.command,
            Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_)
        ) {
            self.report(label, line, &instruction.source, StepStatus::Started);
        }
        match &instruction.command {
            Command::Arg(declarations) => {
                for declaration in declarations {
                    let value = match self.spec.build_args.get(&declaration.name) {
                        Some(value) => {
                            self.used_args.insert(declaration.name.clone());
                            Some(value.clone())
                        }
                        None => match &declaration.default {
                            Some(default) => Some(self.expand(working, default, line, keyword)?),
                            None => self.frontend.meta_args.get(&declaration.name).cloned(),
                        },
                    };
                    match value {
                        Some(value) => working.args.insert(declaration.name.clone(), value),
                        None => working.args.remove(&declaration.name),
                    };
                }
            }
            Command::Env(pairs) => {
                let expanded = self.expand_pairs(working, pairs, line, keyword)?;
                if let Some((key, _)) = expanded
                    .iter()
                    .find(|(key, _)| key.is_empty() || key.contains('='))
                {
                    return Err(self.instruction_error(
                        line,
                        keyword,
                        format!("invalid variable name {key:?}"),
                    ));
                }
                working.config.edit_runtime_config(|runtime| {
                    let env = runtime.env.get_or_insert_default();
                    for (key, value) in &expanded {
                        env.retain(|existing| existing.split('=').next() != Some(key.as_str()));
                        env.push(format!("{key}={value}"));
                    }
                });
                self.config_step(working, format!("ENV {}", shown_pairs(&expanded)));
            }
            Command::Label(pairs) => {
                let expanded = self.expand_pairs(working, pairs, line, keyword)?;
                working.config.edit_runtime_config(|runtime| {
                    runtime
                        .labels
                        .get_or_insert_default()
                        .extend(expanded.iter().cloned());
                });
                self.config_step(working, format!("LABEL {}", shown_pairs(&expanded)));
            }
            Command::User(raw) => {
                let user = self.expand(working, raw, line, keyword)?;
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.user = Some(user.clone()));
                working.user_line = Some(line);
                self.config_step(working, format!("USER {user}"));
            }
            Command::Workdir(raw) => {
                let path = self.expand(working, raw, line, keyword)?;
                let joined = working.in_workdir(&path);
                let cleaned = format!("/{}", crate::ignore::clean(&joined).unwrap_or_default());
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.working_dir = Some(cleaned.clone()));
                let key = self.key(working, &["WORKDIR", &cleaned]);
                let created_by = format!("WORKDIR {cleaned}");
                self.layer_step(
                    working,
                    label,
                    instruction,
                    created_by,
                    key,
                    &mut |_builder, root| {
                        root.create_dir_all(Path::new(&cleaned), NewDir::default())
                            .map_err(|error| Error::Instruction {
                                keyword: "WORKDIR",
                                message: error.to_string(),
                            })?;
                        Ok(Vec::new())
                    },
                )?;
            }
            Command::Entrypoint(form) => {
                let list = self.command_list(working, form);
                // An ENTRYPOINT drops an inherited CMD, not one set in this stage.
                let keep_cmd = working.cmd_set;
                working.config.edit_runtime_config(|runtime| {
                    runtime.entrypoint = Some(list.clone());
                    if !keep_cmd {
                        runtime.cmd = None;
                    }
                });
                self.config_step(working, format!("ENTRYPOINT {}", json!(list)));
            }
            Command::Cmd(form) => {
                let list = self.command_list(working, form);
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.cmd = Some(list.clone()));
                working.cmd_set = true;
                self.config_step(working, format!("CMD {}", json!(list)));
            }
            Command::Expose(raw) => {
                let words = self.expand_list(working, raw, line, keyword)?;
                let mut added = Vec::new();
                for word in &words {
                    added.extend(
                        expose_ports(word)
                            .map_err(|message| self.instruction_error(line, keyword, message))?,
                    );
                }
                working.config.edit_runtime_config(|runtime| {
                    runtime.exposed_ports = Some(sorted_union(runtime.exposed_ports.take(), added));
                });
                self.config_step(working, format!("EXPOSE {}", words.join(" ")));
            }
            Command::Volume(raw) => {
                let words = self.expand_list(working, raw, line, keyword)?;
                if words.is_empty() {
                    return Err(self.instruction_error(line, keyword, "VOLUME needs a path"));
                }
                working.config.edit_runtime_config(|runtime| {
                    runtime.volumes = Some(sorted_union(runtime.volumes.take(), words.clone()));
                });
                self.config_step(working, format!("VOLUME {}", json!(words)));
            }
            Command::StopSignal(raw) => {
                let signal = self.expand(working, raw, line, keyword)?;
                let valid = signal
                    .parse::<u32>()
                    .is_ok_and(|number| (1..=64).contains(&number))
                    || (signal.starts_with("SIG")
                        && signal.len() > 3
                        && signal[3..]
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '+' || ch == '-'));
                if !valid {
                    return Err(self.instruction_error(
                        line,
                        keyword,
                        format!("{signal:?} is not a signal (SIGTERM, 9, …)"),
                    ));
                }
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.stop_signal = Some(signal.clone()));
                self.config_step(working, format!("STOPSIGNAL {signal}"));
            }
            Command::Healthcheck(check) => {
                let value = match check {
                    None => json!({"Test": ["NONE"]}),
                    Some(check) => {
                        let test: Vec<String> = match &check.test {
                            Form::Exec(list) => std::iter::once("CMD".to_owned())
                                .chain(list.iter().cloned())
                                .collect(),
                            Form::Shell(command) => vec!["CMD-SHELL".into(), command.clone()],
                        };
                        let mut value = json!({"Test": test});
                        for (field, setting) in [
                            ("Interval", check.interval),
                            ("Timeout", check.timeout),
                            ("StartPeriod", check.start_period),
                            ("StartInterval", check.start_interval),
                            ("Retries", check.retries),
                        ] {
                            if let Some(setting) = setting {
                                value[field] = json!(setting);
                            }
                        }
                        value
                    }
                };
                working.config.set_runtime_field("Healthcheck", Some(value));
                self.config_step(working, instruction.source.clone());
            }
            Command::Shell(shell) => {
                working.shell = shell.clone();
                working
                    .config
                    .set_runtime_field("Shell", Some(json!(shell)));
                self.config_step(working, format!("SHELL {}", json!(shell)));
            }
            Command::Maintainer(raw) => {
                let author = self.expand(working, raw, line, keyword)?;
                working.config.set_author(&author);
                self.config_step(working, format!("MAINTAINER {author}"));
            }
            Command::Run(run) => self.run_step(working, label, instruction, run)?,
            Command::Copy(copy) => {
                self.copy_step(working, label, stage_index, instruction, copy, false)?
            }
            Command::Add(copy) => {
                self.copy_step(working, label, stage_index, instruction, copy, true)?
            }
        }
        if !matches!(
            instruction.command,
            Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_)
        ) {
            self.report(label, line, &instruction.source, StepStatus::Done);
        }
        Ok(())
    }

    /// ENV and LABEL pairs, substituted with the variables from before the
    /// instruction (all pairs of one instruction see the same ones).
    fn expand_pairs(
        &self,
        working: &Working,
        pairs: &[(String, String)],
        line: usize,
        keyword: &'static str,
    ) -> Result<Vec<(String, String)>> {
        let vars = working.vars();
        let expand = |raw: &str| {
            words::expand_word(raw, &vars, self.spec.dockerfile.escape)
                .map_err(|error| self.instruction_error(line, keyword, error.to_string()))
        };
        pairs
            .iter()
            .map(|(key, value)| Ok((expand(key)?, expand(value)?)))
            .collect()
    }

    fn command_list(&self, working: &Working, form: &Form) -> Vec<String> {
        match form {
            Form::Exec(list) => list.clone(),
            Form::Shell(command) => working
                .shell
                .iter()
                .cloned()
                .chain(std::iter::once(command.clone()))
                .collect(),
        }
    }

    /// A cache key: the version, the parent chain, and the step's parts.
    fn key(&self, working: &Working, parts: &[&str]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(CACHE_VERSION);
        hasher.update(b"\0");
        hasher.update(working.chain());
        for part in parts {
            hasher.update(b"\0");
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Built layers are stored uncompressed: most never leave the store
    /// (builder stages), and those that do are compressed once at commit.
    fn layer_options(&self) -> LayerOptions {
        LayerOptions {
            clamp_mtime: Some(self.spec.source_date_epoch),
            compression: Compression::None,
            keep_devices: true,
        }
    }

    fn require_root(&self) -> Result<()> {
        if rustix::process::geteuid().is_root() {
            Ok(())
        } else {
            Err(Error::NeedsRoot)
        }
    }

    fn lower_dirs(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>> {
        layers
            .iter()
            .rev()
            .map(|layer| {
                self.store.layer_dir(layer).map_err(Error::store(
                    "unpacking a layer into",
                    self.store.work().path(),
                ))
            })
            .collect()
    }

    /// Mounts `layers` read-only (for COPY --from sources and checks).
    fn mount_read_only(&self, layers: &[LayerRef]) -> Result<OverlayMount> {
        self.require_root()?;
        let lowers = self.lower_dirs(layers)?;
        let target = self.store.work().fresh("view").map_err(Error::store(
            "creating a mount point in",
            self.store.work().path(),
        ))?;
        OverlayMount::mount(&lowers, None, &target, &self.store.empty_dir())
            .map_err(Error::store("mounting the layers at", &target))
    }

    /// Runs one layer-producing step, or takes its result from the cache.
    fn layer_step(
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
                let record =
                    self.execute_step(working, &key, apply)
                        .map_err(|error| match error {
                            Error::At { .. } => error,
                            other => self.at(line, other),
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

    fn execute_step(
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
        )
        .map_err(Error::store("mounting the stage at", &merged))?;
        let root = Root::open(mount.path()).map_err(Error::store("opening", &merged))?;
        let outcome = apply(self, &root);
        drop(root);
        mount
            .unmount()
            .map_err(Error::store("unmounting", &merged))?;
        let placeholders = outcome?;
        remove_placeholders(&upper, &placeholders)
            .map_err(Error::store("cleaning mount points out of", &upper))?;
        let diff = crate::diff::commit_upper(&self.store.blobs, &upper, &self.layer_options())
            .map_err(Error::store("writing the layer of", &upper))?;
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
        self.store.record_step(key, &record).map_err(Error::store(
            "recording a step in",
            self.store.work().path(),
        ))?;
        Ok(record)
    }

    fn run_step(
        &mut self,
        working: &mut Working,
        label: &str,
        instruction: &Instruction,
        run: &dockerfile::Run,
    ) -> Result<()> {
        let line = instruction.line;
        let vars = working.vars();
        let argv = self.command_list(working, &run.command);
        let mut mounts_list = Vec::new();
        for raw in &run.mounts {
            mounts_list.push(
                mounts::parse(raw, &vars, self.spec.dockerfile.escape)
                    .map_err(|message| self.instruction_error(line, "RUN", message))?,
            );
        }
        // The environment: ENV, then ARGs in scope that ENV does not set, then proxy arguments.
        let mut env: Vec<String> = working.config.runtime_config().env.unwrap_or_default();
        let env_names: BTreeSet<String> = env
            .iter()
            .filter_map(|item| item.split('=').next())
            .map(str::to_owned)
            .collect();
        for (name, value) in &working.args {
            if !env_names.contains(name) {
                env.push(format!("{name}={value}"));
            }
        }
        for name in PROXY_ARGS {
            if let Some(value) = self.spec.build_args.get(name)
                && !env_names.contains(name)
                && !working.args.contains_key(name)
            {
                env.push(format!("{name}={value}"));
            }
        }
        if !env.iter().any(|item| item.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_owned());
        }
        let runtime_config = working.config.runtime_config();
        let user = runtime_config
            .user
            .clone()
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "root".into());
        let cwd = runtime_config
            .working_dir
            .clone()
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| "/".into());
        let network_none = run.network == Network::None || self.spec.network_none;
        let mut sorted_env = env.clone();
        sorted_env.sort();
        let key = self.key(
            working,
            &[
                "RUN",
                &argv.join("\0"),
                &sorted_env.join("\0"),
                &cwd,
                &user,
                if network_none {
                    "network=none"
                } else {
                    "network=default"
                },
                &format!("{mounts_list:?}"),
            ],
        );
        let flags: String = run
            .mounts
            .iter()
            .map(|mount| format!("--mount={mount} "))
            .collect::<String>()
            + if run.network == Network::None {
                "--network=none "
            } else {
                ""
            };
        // The command as written; history shows a shell form with its shell.
        let command_text = match &run.command {
            Form::Exec(list) => json!(list).to_string(),
            Form::Shell(command) => command.clone(),
        };
        let created_by = match &run.command {
            Form::Exec(_) => format!("RUN {flags}{command_text}"),
            Form::Shell(_) => format!("RUN {flags}{} {command_text}", working.shell.join(" ")),
        };
        let request = RunRequest {
            stage: label.to_owned(),
            argv,
            env,
            user,
            cwd,
            network_none,
            mounts: mounts_list,
            command_text,
        };
        self.layer_step(
            working,
            label,
            instruction,
            created_by,
            key,
            &mut |builder, root| builder.execute_run(root, &request),
        )
    }

    fn execute_run(&mut self, root: &Root, request: &RunRequest) -> Result<Vec<Placeholder>> {
        let RunRequest {
            stage,
            argv,
            env,
            user,
            cwd,
            network_none,
            mounts: mounts_list,
            command_text,
        } = request;
        let (cwd, network_none) = (cwd.as_str(), *network_none);
        if self.runtime.is_none() {
            let runtime =
                Runtime::new(&self.environment.runtime, self.store.work().path()).map_err(
                    Error::store("preparing the runtime in", self.store.work().path()),
                )?;
            self.runtime = Some(runtime);
        }
        let (uid, gid, groups, home) =
            resolve_user(root, user).map_err(|message| Error::Instruction {
                keyword: "RUN",
                message,
            })?;
        let mut env = env.to_vec();
        if !env.iter().any(|item| item.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        let mut extra = self
            .runtime
            .as_ref()
            .map(Runtime::standard_binds)
            .unwrap_or_default();
        // Removed when this step ends, however it ends.
        let mut secret_files = SecretFiles(Vec::new());
        let mut locks = Vec::new();
        for mount in mounts_list {
            match mount {
                Mount::Secret {
                    id,
                    target,
                    required,
                    mode,
                    uid,
                    gid,
                } => {
                    let Some(secret) = self.spec.secrets.get(id) else {
                        if *required {
                            return Err(Error::Instruction {
                                keyword: "RUN",
                                message: format!(
                                    "the secret {id:?} is required but was not provided (--secret id={id},src=FILE)"
                                ),
                            });
                        }
                        continue;
                    };
                    let directory = self.secret_directory(secret_files.0.len())?;
                    secret_files.0.push(directory.clone());
                    let file = write_secret(&directory, secret, *mode, *uid, *gid)?;
                    extra.push(ExtraMount::Bind {
                        source: file,
                        destination: target.clone(),
                        readonly: true,
                    });
                }
                Mount::Cache {
                    id,
                    target,
                    sharing,
                    readonly,
                    mode,
                    uid,
                    gid,
                } => {
                    let directory = if *sharing == Sharing::Private {
                        self.store.work().fresh("cache").map_err(Error::store(
                            "creating a cache mount in",
                            self.store.work().path(),
                        ))?
                    } else {
                        let (directory, created) = self.store.cache_mount(id).map_err(
                            Error::store("creating a cache mount in", self.store.work().path()),
                        )?;
                        if created {
                            fs::set_permissions(&directory, fs::Permissions::from_mode(*mode))
                                .and_then(|()| {
                                    std::os::unix::fs::lchown(&directory, Some(*uid), Some(*gid))
                                })
                                .map_err(Error::store("preparing the cache mount", &directory))?;
                        }
                        if *sharing == Sharing::Locked {
                            locks.push(
                                self.store
                                    .lock_cache_mount(&directory)
                                    .map_err(Error::store("locking the cache mount", &directory))?,
                            );
                        }
                        directory
                    };
                    extra.push(ExtraMount::Bind {
                        source: directory,
                        destination: target.clone(),
                        readonly: *readonly,
                    });
                }
                Mount::Tmpfs { target, size } => extra.push(ExtraMount::Tmpfs {
                    destination: target.clone(),
                    size: *size,
                }),
            }
        }
        let mut destinations: Vec<String> = Runtime::runtime_mount_points()
            .iter()
            .map(|point| (*point).to_owned())
            .collect();
        destinations.extend(extra.iter().map(|mount| mount.destination().to_owned()));
        destinations.push(cwd.to_owned());
        let placeholders: Vec<Placeholder> = destinations
            .iter()
            .map(|destination| placeholder(root, destination))
            .collect();
        let spec = ProcessSpec {
            args: argv.to_vec(),
            env,
            cwd: cwd.to_owned(),
            uid,
            gid,
            additional_gids: groups,
            network_none,
            mounts: extra,
        };
        self.container_counter += 1;
        let id = format!(
            "sealcraft-{}-{}",
            std::process::id(),
            self.container_counter
        );
        let bundle = self
            .store
            .work()
            .path()
            .join(format!("bundle-{}", self.container_counter));
        let reporter = self.environment.reporter;
        let runtime = self
            .runtime
            .as_ref()
            .unwrap_or_else(|| unreachable!("created above"));
        let outcome = runtime.run(root.path(), &spec, &bundle, &id, &mut |text| {
            reporter.output(stage, text)
        });
        drop(secret_files);
        drop(locks);
        let outcome = outcome.map_err(Error::store("running the step in", &bundle))?;
        if !outcome.success() {
            let status = match (outcome.code, outcome.signal) {
                (_, Some(signal)) => format!("killed by signal {signal}"),
                (Some(code), None) => format!("exit code {code}"),
                (None, None) => "ended without a status".to_owned(),
            };
            let output = if outcome.tail.is_empty() {
                String::new()
            } else {
                format!("; last output:\n  | {}", outcome.tail.join("\n  | "))
            };
            let command: String = if command_text.chars().count() > 200 {
                command_text
                    .chars()
                    .take(197)
                    .chain("...".chars())
                    .collect()
            } else {
                command_text.to_owned()
            };
            return Err(Error::RunFailed {
                command,
                status,
                output,
            });
        }
        Ok(placeholders)
    }

    /// A private directory for one secret of the next step: in memory (/dev/shm) where possible.
    fn secret_directory(&self, index: usize) -> Result<PathBuf> {
        let shm = Path::new("/dev/shm");
        let directory = if shm.is_dir() {
            let directory = shm.join(format!(
                "sealcraft-{}-{}-{index}",
                std::process::id(),
                self.container_counter + 1
            ));
            fs::create_dir_all(&directory).map_err(Error::store("creating", &directory))?;
            directory
        } else {
            self.store.work().fresh("secrets").map_err(Error::store(
                "creating a secrets directory in",
                self.store.work().path(),
            ))?
        };
        fs::set_permissions(&directory, fs::Permissions::from_mode(0o700))
            .map_err(Error::store("protecting", &directory))?;
        Ok(directory)
    }

    fn copy_step(
        &mut self,
        working: &mut Working,
        label: &str,
        stage_index: usize,
        instruction: &Instruction,
        copy: &dockerfile::Copy,
        add: bool,
    ) -> Result<()> {
        let line = instruction.line;
        let keyword: &'static str = if add { "ADD" } else { "COPY" };
        let vars = working.vars();
        let escape = self.spec.dockerfile.escape;
        let fail =
            |builder: &Self, message: String| builder.instruction_error(line, keyword, message);
        // Where sources come from: the context, an earlier stage, or an image.
        let (source_mount, source_identity) = match &copy.from {
            None => (None, "context".to_owned()),
            Some(raw) => {
                let from = self.frontend.expand_meta(raw, line, keyword)?;
                let layers = match self.frontend.stage_ref(&from, stage_index, line)? {
                    Some(dependency) => self.results[dependency]
                        .as_ref()
                        .map(|stage| stage.layers.clone())
                        .unwrap_or_default(),
                    None => self.resolve_external(&from, line)?.layers,
                };
                // The fingerprint below hashes every file taken from it, so the
                // key needs only the kind of source, not which layers held them.
                let identity = "another root".to_owned();
                (
                    Some(
                        self.mount_read_only(&layers)
                            .map_err(|error| self.at(line, error))?,
                    ),
                    identity,
                )
            }
        };
        let source_root = match &source_mount {
            Some(mount) => {
                Some(Root::open(mount.path()).map_err(|error| fail(self, error.to_string()))?)
            }
            None => None,
        };
        let root_for_sources = source_root.as_ref().unwrap_or(&self.context);
        let ignore = source_root.is_none().then_some(&self.ignore);
        let mut trees = Vec::new();
        let mut shown_sources = Vec::new();
        let mut path_sources = Vec::new();
        for source in &copy.sources {
            match source {
                CopySource::Path(raw) => {
                    let expanded = words::expand_word(raw, &vars, escape)
                        .map_err(|error| fail(self, error.to_string()))?;
                    shown_sources.push(expanded.clone());
                    path_sources.push(expanded);
                }
                CopySource::Inline {
                    name,
                    content,
                    expand,
                } => {
                    let content = if *expand {
                        words::expand_text(content, &vars, escape)
                            .map_err(|error| fail(self, error.to_string()))?
                    } else {
                        content.clone()
                    };
                    shown_sources.push(format!("<<{name}"));
                    trees.push(copy::inline(
                        name,
                        content.as_bytes(),
                        self.spec.source_date_epoch,
                    ));
                }
            }
        }
        let mut collected = copy::collect(
            root_for_sources,
            &path_sources,
            ignore,
            add && copy.from.is_none(),
        )
        .map_err(|message| fail(self, message))?;
        collected.append(&mut trees);
        let trees = collected;
        let destination_raw = words::expand_word(&copy.destination, &vars, escape)
            .map_err(|error| fail(self, error.to_string()))?;
        let destination = working.in_workdir(&destination_raw);
        let chown = match &copy.chown {
            Some(raw) => Some(
                words::expand_word(raw, &vars, escape)
                    .map_err(|error| fail(self, error.to_string()))?,
            ),
            None => None,
        };
        let chmod = match &copy.chmod {
            Some(raw) => {
                let text = words::expand_word(raw, &vars, escape)
                    .map_err(|error| fail(self, error.to_string()))?;
                Some(Chmod::parse(&text).map_err(|message| fail(self, message))?)
            }
            None => None,
        };
        let mut fingerprint = Sha256::new();
        copy::fingerprint(&trees, self.spec.source_date_epoch, &mut fingerprint)
            .map_err(|error| fail(self, format!("reading the sources: {error}")))?;
        let fingerprint = hex::encode(fingerprint.finalize());
        let key = self.key(
            working,
            &[
                keyword,
                &source_identity,
                &fingerprint,
                &destination,
                chown.as_deref().unwrap_or(""),
                copy.chmod.as_deref().unwrap_or(""),
            ],
        );
        let mut flags = String::new();
        if let Some(from) = &copy.from {
            flags.push_str(&format!("--from={from} "));
        }
        if let Some(chown) = &chown {
            flags.push_str(&format!("--chown={chown} "));
        }
        if let Some(chmod) = &copy.chmod {
            flags.push_str(&format!("--chmod={chmod} "));
        }
        let created_by = format!("{keyword} {flags}{} {destination}", shown_sources.join(" "));
        let result = self.layer_step(
            working,
            label,
            instruction,
            created_by,
            key,
            &mut |_builder, root| {
                let (uid, gid) = match &chown {
                    Some(chown) => resolve_owner(root, chown)
                        .map_err(|message| Error::Instruction { keyword, message })?,
                    None => (0, 0),
                };
                let ownership = Ownership {
                    uid,
                    gid,
                    chmod: chmod.as_ref(),
                };
                let extract = |archive: &Path, target: &Path| -> std::result::Result<(), String> {
                    let file = fs::File::open(archive)
                        .map_err(|error| format!("{}: {error}", archive.display()))?;
                    let options = UnpackOptions {
                        preserve_owners: true,
                        ..UnpackOptions::default()
                    };
                    unpack_layer(file, &archive.display().to_string(), target, &options)
                        .map(|_| ())
                        .map_err(|error| error.to_string())
                };
                copy::apply(&trees, root, &destination, &ownership, &extract)
                    .map_err(|message| Error::Instruction { keyword, message })?;
                Ok(Vec::new())
            },
        );
        drop(source_root);
        if let Some(mount) = source_mount {
            let _ = mount.unmount();
        }
        result
    }

    /// Fails unless the image's user resolves to a non-zero uid.
    fn check_user(&self, working: &Working, line: usize) -> Result<()> {
        let user = working.config.runtime_config().user;
        let numeric = user
            .as_deref()
            .and_then(|user| user.split(':').next())
            .is_some_and(|name| !name.is_empty() && name.chars().all(|ch| ch.is_ascii_digit()));
        let passwd = if numeric || working.layers.is_empty() {
            String::new()
        } else {
            let mount = self.mount_read_only(&working.layers)?;
            let root = Root::open(mount.path()).map_err(Error::store("opening", mount.path()))?;
            let bytes = root
                .read(Path::new("/etc/passwd"))
                .map_err(Error::store("reading /etc/passwd in", mount.path()))?;
            String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
        };
        crate::assemble::check_non_root(user.as_deref(), &passwd).map_err(|error| {
            Error::at(
                self.path(),
                line,
                Error::Instruction {
                    keyword: "USER",
                    message: format!("{error} (set USER to a non-root user in the target stage)"),
                },
            )
        })
    }

    fn commit(&self, working: &Working, output: &Layout) -> Result<Descriptor> {
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
                self.store
                    .compressed(layer, self.spec.compression)
                    .map_err(Error::store(
                        "compressing a layer in",
                        self.store.work().path(),
                    ))?
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

/// `existing` and `added` as one sorted list without repeats (EXPOSE, VOLUME).
fn sorted_union(existing: Option<Vec<String>>, added: Vec<String>) -> Vec<String> {
    let union: BTreeSet<String> = existing
        .unwrap_or_default()
        .into_iter()
        .chain(added)
        .collect();
    union.into_iter().collect()
}

/// `k=v k2=v2` as a history entry shows it.
fn shown_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// EXPOSE's `port[/proto]` and `low-high[/proto]`, as ExposedPorts keys.
fn expose_ports(word: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, protocol) = match word.split_once('/') {
        Some((ports, protocol)) => (ports, protocol.to_ascii_lowercase()),
        None => (word, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{word}: the protocol must be tcp, udp or sctp"));
    }
    let parse = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| format!("{word}: {text:?} is not a port number"))
    };
    let (low, high) = match ports.split_once('-') {
        Some((low, high)) => (parse(low)?, parse(high)?),
        None => {
            let port = parse(ports)?;
            (port, port)
        }
    };
    if high < low || high - low > 1024 {
        return Err(format!("{word}: not a sensible port range"));
    }
    Ok((low..=high)
        .map(|port| format!("{port}/{protocol}"))
        .collect())
}

fn passwd_entries(root: &Root, file: &str) -> Vec<Vec<String>> {
    let text = root
        .read(Path::new(file))
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect())
        .collect()
}

/// `user[:group]` to uid, gid, supplementary groups and home, through the image's databases.
fn resolve_user(
    root: &Root,
    user: &str,
) -> std::result::Result<(u32, u32, Vec<u32>, String), String> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let passwd = passwd_entries(root, "/etc/passwd");
    let groups = passwd_entries(root, "/etc/group");
    let entry = passwd.iter().find(|fields| {
        fields.first().map(String::as_str) == Some(name)
            || (name.chars().all(|ch| ch.is_ascii_digit())
                && fields.get(2).map(String::as_str) == Some(name))
    });
    let (uid, primary, login, home) = match (name.parse::<u32>(), entry) {
        (_, Some(fields)) => (
            fields.get(2).and_then(|id| id.parse().ok()).unwrap_or(0),
            fields.get(3).and_then(|id| id.parse().ok()).unwrap_or(0),
            fields.first().cloned().unwrap_or_default(),
            fields
                .get(5)
                .cloned()
                .filter(|home| !home.is_empty())
                .unwrap_or_else(|| "/".into()),
        ),
        (Ok(uid), None) => (uid, 0, String::new(), "/".into()),
        (Err(_), None) => return Err(format!("user {name:?} is not in the image's /etc/passwd")),
    };
    let gid = match group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|fields| fields.first().map(String::as_str) == Some(group))
                .and_then(|fields| fields.get(2).and_then(|id| id.parse().ok()))
                .ok_or_else(|| format!("group {group:?} is not in the image's /etc/group"))?,
        },
        None => primary,
    };
    // Supplementary groups only when no group was named (as Docker does).
    let supplementary = if group.is_none() && !login.is_empty() {
        groups
            .iter()
            .filter(|fields| {
                fields
                    .get(3)
                    .is_some_and(|members| members.split(',').any(|member| member == login))
            })
            .filter_map(|fields| fields.get(2).and_then(|id| id.parse().ok()))
            .filter(|id| *id != gid)
            .collect()
    } else {
        Vec::new()
    };
    let home = if uid == 0 && home == "/" {
        "/root".into()
    } else {
        home
    };
    Ok((uid, gid, supplementary, home))
}

/// `--chown=user[:group]` to ids, through the destination's databases.
fn resolve_owner(root: &Root, chown: &str) -> std::result::Result<(u32, u32), String> {
    let (user, group) = match chown.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (chown, None),
    };
    let passwd = passwd_entries(root, "/etc/passwd");
    let uid = match user.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => passwd
            .iter()
            .find(|fields| fields.first().map(String::as_str) == Some(user))
            .and_then(|fields| fields.get(2).and_then(|id| id.parse().ok()))
            .ok_or_else(|| format!("--chown: user {user:?} is not in the image's /etc/passwd"))?,
    };
    let gid = match group {
        None => uid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => passwd_entries(root, "/etc/group")
                .iter()
                .find(|fields| fields.first().map(String::as_str) == Some(group))
                .and_then(|fields| fields.get(2).and_then(|id| id.parse().ok()))
                .ok_or_else(|| {
                    format!("--chown: group {group:?} is not in the image's /etc/group")
                })?,
        },
    };
    Ok((uid, gid))
}

/// What a mount at `destination` will make the runtime create in the root.
fn placeholder(root: &Root, destination: &str) -> Placeholder {
    let relative = crate::rootfs::relative(Path::new(destination));
    let mut created = Vec::new();
    let mut ancestors = Vec::new();
    let mut existing = PathBuf::new();
    let mut missing = false;
    let mut prefix = PathBuf::new();
    for component in relative.components() {
        prefix.push(component);
        if !missing {
            match root.resolve(&prefix, true) {
                Ok(Some(host)) => {
                    let inner = host
                        .strip_prefix(root.path())
                        .unwrap_or(&host)
                        .to_path_buf();
                    if let Ok(metadata) = host.symlink_metadata() {
                        ancestors.push((
                            inner.clone(),
                            metadata.mode() & 0o7777,
                            metadata.uid(),
                            metadata.gid(),
                        ));
                    }
                    existing = inner;
                    continue;
                }
                _ => missing = true,
            }
        }
        existing.push(component);
        created.push(existing.clone());
    }
    if created.is_empty() {
        // The destination exists: nothing is created, and its own entry is not a mere copy-up.
        ancestors.pop();
    }
    Placeholder { created, ancestors }
}

/// Removes what the runtime created only as mount points, and copy-ups they caused.
fn remove_placeholders(upper: &Path, placeholders: &[Placeholder]) -> std::io::Result<()> {
    let opaque = |path: &Path| {
        let mut value = [0u8; 4];
        rustix::fs::lgetxattr(path, crate::diff::OPAQUE_XATTR, &mut value[..]).is_ok()
    };
    for placeholder in placeholders {
        for created in placeholder.created.iter().rev() {
            let path = upper.join(created);
            let Ok(metadata) = path.symlink_metadata() else {
                continue;
            };
            if metadata.is_file() && metadata.len() == 0 {
                fs::remove_file(&path)?;
            } else if metadata.is_dir() && !opaque(&path) && fs::read_dir(&path)?.next().is_none() {
                fs::remove_dir(&path)?;
            }
        }
        for (ancestor, mode, uid, gid) in placeholder.ancestors.iter().rev() {
            if ancestor.as_os_str().is_empty() {
                continue;
            }
            let path = upper.join(ancestor);
            let Ok(metadata) = path.symlink_metadata() else {
                continue;
            };
            let unchanged = metadata.is_dir()
                && metadata.mode() & 0o7777 == *mode
                && metadata.uid() == *uid
                && metadata.gid() == *gid;
            if unchanged && !opaque(&path) && fs::read_dir(&path)?.next().is_none() {
                fs::remove_dir(&path)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_accepts_ports_protocols_and_ranges() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err());
        assert!(expose_ports("80/icmp").is_err());
        assert!(expose_ports("0").is_err());
        assert!(expose_ports("9-1").is_err());
    }

    #[test]
    fn users_resolve_through_the_image_databases() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001::/home/app:/bin/false\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:10001:\nextra:x:20:app\n",
        )
        .unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(
            resolve_user(&root, "app").unwrap(),
            (10001, 10001, vec![20], "/home/app".into())
        );
        assert_eq!(
            resolve_user(&root, "app:root").unwrap(),
            (10001, 0, vec![], "/home/app".into())
        );
        assert_eq!(
            resolve_user(&root, "root").unwrap(),
            (0, 0, vec![], "/root".into())
        );
        assert_eq!(
            resolve_user(&root, "4242").unwrap(),
            (4242, 0, vec![], "/".into())
        );
        assert!(resolve_user(&root, "ghost").unwrap_err().contains("ghost"));
        assert_eq!(resolve_owner(&root, "app").unwrap(), (10001, 10001));
        assert_eq!(resolve_owner(&root, "app:extra").unwrap(), (10001, 20));
        assert_eq!(resolve_owner(&root, "7:8").unwrap(), (7, 8));
        assert!(resolve_owner(&root, "app:nogroup").is_err());
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let layer = |text: &str| LayerRef {
            descriptor: Descriptor::new("x", sha256_of(text.as_bytes()), 1),
            diff_id: sha256_of(text.as_bytes()),
        };
        assert_eq!(chain_id(&[]), "scratch");
        let one = layer("a");
        assert_eq!(
            chain_id(std::slice::from_ref(&one)),
            one.diff_id.to_string()
        );
        let two = layer("b");
        let expected = sha256_of(format!("{} {}", one.diff_id, two.diff_id).as_bytes()).to_string();
        assert_eq!(chain_id(&[one, two]), expected);
    }
}
