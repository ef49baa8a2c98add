//! RUN: the command in the OCI runtime on the stage's overlay, with its
//! environment, user, working directory, network and `--mount`s; secrets
//! live in private files only for the step; mount points the runtime had to
//! create are removed from the layer again.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sealcraft_dockerfile::{Form, Instruction, Mount, Network, Sharing, mounts};
use sealcraft_runtime::{ExtraMount, ProcessSpec, Runtime, write_private};
use sealcraft_secrets::Secret;
use serde_json::json;

use crate::cache_key::cache_key;
use crate::config::PROXY_ARGS;
use crate::rootfs::Root;
use crate::stage::Builder;
use crate::working::Working;
use crate::{Error, Result};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    write_private(&path, secret.expose().as_bytes())
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
pub(crate) struct Placeholder {
    /// Components that did not exist, outermost first, relative to the root.
    created: Vec<PathBuf>,
    /// Existing ancestors (relative) with their mode and owner, to drop a mere copy-up.
    ancestors: Vec<(PathBuf, u32, u32, u32)>,
}

impl Builder<'_> {
    pub(crate) fn run_step(
        &mut self,
        working: &mut Working,
        label: &str,
        instruction: &Instruction,
        run: &sealcraft_dockerfile::Run,
    ) -> Result<()> {
        let line = instruction.line;
        let vars = working.vars();
        let argv = self.command_list(working, &run.command);
        let mut mounts_list = Vec::new();
        for raw in &run.mounts {
            mounts_list.push(
                mounts::parse(raw, &vars, self.spec.dockerfile.escape)
                    .map_err(|error| self.at(line, Error::Mount(error)))?,
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
        let key = cache_key(
            &working.chain(),
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
        let resolved = crate::users::accounts(root)
            .resolve_user(user)
            .map_err(|error| Error::Account {
                keyword: "RUN",
                error,
            })?;
        let (uid, gid, groups, home) = (resolved.uid, resolved.gid, resolved.groups, resolved.home);
        let mut env = env.to_vec();
        if !env.iter().any(|item| item.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        let mut extra = self.runtime.standard_binds();
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
                            return Err(Error::MissingSecret { id: id.clone() });
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
            ..ProcessSpec::default()
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
        let outcome = self
            .runtime
            .run(root.path(), &spec, &bundle, &id, &mut |text| {
                reporter.output(stage, text)
            });
        drop(secret_files);
        drop(locks);
        let outcome = outcome?;
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
pub(crate) fn remove_placeholders(
    upper: &Path,
    placeholders: &[Placeholder],
) -> std::io::Result<()> {
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
