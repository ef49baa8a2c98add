//! Where commands and services run: the image unpacked once into a runc
//! bundle's rootfs, and for each container an overlay of it with a fresh
//! upper directory, so a test sees the image as built and its changes
//! vanish with it. Processes get their own pid, ipc, uts and mount
//! namespaces, the image's env, user (resolved through its own passwd),
//! working directory, and a network namespace with loopback only unless
//! the spec asks for the host's.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sealcraft_inventory::Accounts;
use sealcraft_oci::image::Image;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::unpack::{UnpackOptions, unpack_image};
use sealcraft_runtime::{
    ExtraMount, Finished, OverlayMount, ProcessSpec, Runtime, RuntimeSettings, Started,
};

use crate::metadata::ConfigFields;
use crate::{Error, Result};

/// The PATH a container gets when the image sets none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `host:container[:ro]`, both absolute: (host, container, read-only).
pub(crate) fn parse_bind(text: &str) -> Option<(PathBuf, String, bool)> {
    let mut parts = text.split(':');
    let host = parts.next()?;
    let container = parts.next()?;
    let readonly = match parts.next() {
        None => false,
        Some("ro") => true,
        Some("rw") => false,
        Some(_) => return None,
    };
    if parts.next().is_some() || !host.starts_with('/') || !container.starts_with('/') {
        return None;
    }
    Some((PathBuf::from(host), container.to_owned(), readonly))
}

/// What one process needs beyond the image's defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    /// argv (already expanded).
    pub(crate) args: Vec<String>,
    /// The environment.
    pub(crate) env: BTreeMap<String, String>,
    /// The user instead of the image's.
    pub(crate) user: Option<String>,
    /// Network: loopback only (`true`) or the host's.
    pub(crate) network_none: bool,
    /// The root read-only (with /tmp and the volumes writable).
    pub(crate) readonly_root: bool,
    /// Capabilities added.
    pub(crate) add_capabilities: Vec<String>,
    /// `--privileged`.
    pub(crate) privileged: bool,
    /// Host bind mounts.
    pub(crate) binds: Vec<(PathBuf, String, bool)>,
    /// The image's volumes get directories of their own.
    pub(crate) volumes: bool,
}

/// The unpacked image and the runtime that runs containers of it.
pub(crate) struct Sandbox {
    runtime: Runtime,
    work: PathBuf,
    bundle: PathBuf,
    rootfs: PathBuf,
    accounts: Accounts,
    image_user: String,
    workdir: String,
    volumes: Vec<String>,
    counter: std::cell::Cell<usize>,
}

/// One container's root: an overlay of the image with its own upper directory.
pub(crate) struct ContainerRoot {
    mount: Option<OverlayMount>,
    directory: PathBuf,
}

impl ContainerRoot {
    fn merged(&self) -> PathBuf {
        self.directory.join("merged")
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if let Some(mount) = self.mount.take() {
            let _ = mount.unmount();
        }
        let _ = fs::remove_dir_all(&self.directory);
    }
}

impl Sandbox {
    /// Unpacks `image` under `work` (emptied first) and prepares the runtime.
    pub(crate) fn prepare(
        layout: &Layout,
        image: &Image,
        settings: &RuntimeSettings,
        work: &Path,
        accounts: Accounts,
    ) -> Result<Self> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Work {
                action,
                path,
                source,
            }
        };
        if work.exists() {
            fs::remove_dir_all(work).map_err(io("emptying", work))?;
        }
        fs::create_dir_all(work).map_err(io("creating", work))?;
        fs::set_permissions(work, fs::Permissions::from_mode(0o700))
            .map_err(io("protecting", work))?;
        let bundle = work.join("bundle");
        let rootfs = bundle.join("rootfs");
        let options = UnpackOptions {
            preserve_owners: true,
            xattrs: true,
            ..UnpackOptions::default()
        };
        unpack_image(layout, &image.manifest, &rootfs, &options).map_err(|source| {
            Error::Unpack {
                image: image.descriptor.digest.to_string(),
                source,
            }
        })?;
        let runtime = Runtime::new(settings, work).map_err(Error::Runtime)?;
        let fields = ConfigFields::new(image.config.runtime_config_json());
        let workdir = Some(fields.text("WorkingDir"))
            .filter(|workdir| !workdir.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        Ok(Self {
            runtime,
            work: work.to_path_buf(),
            bundle,
            rootfs,
            accounts,
            image_user: fields.text("User"),
            workdir,
            volumes: fields.keys("Volumes"),
            counter: std::cell::Cell::new(0),
        })
    }

    /// A fresh root for one container.
    pub(crate) fn root(&self) -> Result<ContainerRoot> {
        let directory = self.work.join(format!("c{}", self.next()));
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Work {
                action,
                path,
                source,
            }
        };
        for sub in ["upper", "work", "merged", "empty"] {
            let path = directory.join(sub);
            fs::create_dir_all(&path).map_err(io("creating", &path))?;
        }
        let mut root = ContainerRoot {
            mount: None,
            directory,
        };
        let mount = OverlayMount::mount(
            std::slice::from_ref(&self.rootfs),
            Some((&root.directory.join("upper"), &root.directory.join("work"))),
            &root.merged(),
            &root.directory.join("empty"),
        )
        .map_err(Error::Runtime)?;
        root.mount = Some(mount);
        Ok(root)
    }

    /// The process of `launch`; volume directories go under `scratch`.
    fn process(&self, scratch: &Path, launch: &Launch) -> Result<ProcessSpec> {
        let user_text = launch
            .user
            .clone()
            .unwrap_or_else(|| self.image_user.clone());
        let user = if user_text.is_empty() {
            "0".to_owned()
        } else {
            user_text.clone()
        };
        let resolved = self
            .accounts
            .resolve_user(&user)
            .map_err(|source| Error::User {
                user: user_text,
                source,
            })?;
        let mut env = launch.env.clone();
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.to_owned());
        env.entry("HOME".into())
            .or_insert_with(|| resolved.home.clone());
        env.entry("HOSTNAME".into())
            .or_insert_with(|| "sealcraft-test".to_owned());
        let mut mounts = self.runtime.standard_binds();
        for (host, destination, readonly) in &launch.binds {
            mounts.push(ExtraMount::Bind {
                source: host.clone(),
                destination: destination.clone(),
                readonly: *readonly,
            });
        }
        if launch.readonly_root {
            mounts.push(ExtraMount::Tmpfs {
                destination: "/tmp".into(),
                size: Some(64 << 20),
            });
        }
        if launch.volumes {
            for (index, volume) in self.volumes.iter().enumerate() {
                let host = scratch.join(format!("volume{index}"));
                self.volume_directory(&host, volume)?;
                mounts.push(ExtraMount::Bind {
                    source: host,
                    destination: volume.clone(),
                    readonly: false,
                });
            }
        }
        Ok(ProcessSpec {
            args: launch.args.clone(),
            env: env
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            cwd: self.workdir.clone(),
            uid: resolved.uid,
            gid: resolved.gid,
            additional_gids: resolved.groups.clone(),
            network_none: launch.network_none,
            mounts,
            readonly_root: launch.readonly_root,
            add_capabilities: launch.add_capabilities.clone(),
            privileged: launch.privileged,
        })
    }

    /// A volume's directory, with the owner and mode the image gives the path
    /// (as a fresh anonymous volume gets them), and a copy of what the image has there.
    fn volume_directory(&self, host: &Path, volume: &str) -> Result<()> {
        let source = self.rootfs.join(volume.trim_start_matches('/'));
        let copy = |from: &Path, to: &Path| -> std::io::Result<()> {
            fs::create_dir_all(to)?;
            if let Ok(meta) = fs::symlink_metadata(from)
                && meta.is_dir()
            {
                copy_tree(from, to)?;
                fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
                std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
            }
            Ok(())
        };
        copy(&source, host).map_err(|source| Error::Work {
            action: "preparing the volume directory",
            path: host.to_path_buf(),
            source,
        })
    }

    fn next(&self) -> usize {
        self.counter.set(self.counter.get() + 1);
        self.counter.get()
    }

    fn next_id(&self) -> String {
        format!("sealcraft-test-{}-{}", std::process::id(), self.next())
    }

    /// Starts `launch` on `root` in the background.
    pub(crate) fn start<'a>(
        &'a self,
        root: &ContainerRoot,
        launch: &Launch,
    ) -> Result<Started<'a>> {
        let spec = self.process(&root.directory, launch)?;
        let id = self.next_id();
        let bundle = root.directory.join(format!("bundle-{id}"));
        self.runtime
            .start(&root.merged(), &spec, &bundle, &id)
            .map_err(Error::Runtime)
    }

    /// Runs `launch` on `root` to the end, killed at `deadline`.
    pub(crate) fn run(
        &self,
        root: &ContainerRoot,
        launch: &Launch,
        deadline: Instant,
    ) -> Result<Finished> {
        let started = self.start(root, launch)?;
        started.finish(deadline).map_err(Error::Runtime)
    }

    /// Runs `launch` as one more process in `started` (a health check).
    pub(crate) fn exec(
        &self,
        started: &mut Started<'_>,
        root: &ContainerRoot,
        launch: &Launch,
        deadline: Instant,
    ) -> Result<Finished> {
        let spec = self.process(&root.directory, launch)?;
        started.exec(&spec, deadline).map_err(Error::Runtime)
    }

    /// Writes a runc bundle of the image (its rootfs and a config running
    /// `launch` as the image's user), kept for debugging; its path.
    pub(crate) fn keep_bundle(&self, launch: &Launch) -> Result<PathBuf> {
        let spec = self.process(&self.bundle, launch)?;
        self.runtime
            .write_bundle(&self.rootfs, &spec, &self.bundle)
            .map_err(Error::Runtime)?;
        Ok(self.bundle.clone())
    }
}

/// Copies a directory tree with modes, owners and symlinks.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if meta.is_dir() {
            fs::create_dir(&target)?;
            copy_tree(&source, &target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if meta.is_file() {
            fs::copy(&source, &target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}
