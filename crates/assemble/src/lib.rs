//! Image production without a Dockerfile: native assembly in the style of
//! ko and apko.
//!
//! [`assemble`] takes a digest-pinned base image, files from the host, a
//! non-root user and the runtime config, and adds exactly one layer. Every
//! timestamp in that layer and in the config is `SOURCE_DATE_EPOCH`, entries
//! are sorted, and host owners are replaced by the ones the spec gives, so
//! the same inputs give the same manifest digest on any machine.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sealcraft_inventory::{Accounts, RootUserError};
use sealcraft_oci::digest::Digest;
use sealcraft_oci::image::{Image, LayerOptions, WrittenLayer, commit_image, rfc3339, write_layer};
use sealcraft_oci::layer::{EntryKind, EntryMeta, LayerLimits};
use sealcraft_oci::layout::Layout;
use sealcraft_oci::manifest::{
    BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION, Descriptor, HistoryEntry, RuntimeConfig,
};
use sealcraft_oci::view::MergedView;
use serde::Serialize;

/// Why an image cannot be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OCI layer failed.
    #[error(transparent)]
    Oci(#[from] sealcraft_oci::Error),
    /// The base image is not the one pinned.
    #[error("base image {name} resolves to {actual}, but the config pins {pinned}")]
    BaseDigestMismatch {
        /// The base image name.
        name: String,
        /// The pinned digest.
        pinned: String,
        /// What the name resolved to.
        actual: String,
    },
    /// A host file could not be read.
    #[error("reading {}", path.display())]
    Host {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A destination path is not absolute or not normal.
    #[error("destination {destination:?} must be an absolute path without '..'")]
    BadDestination {
        /// The destination.
        destination: String,
    },
    /// The user clashes with an existing entry.
    #[error(
        "{database} already has {name:?} with id {existing}, but the config asks for {requested}"
    )]
    UserClash {
        /// `/etc/passwd` or `/etc/group`.
        database: &'static str,
        /// The name.
        name: String,
        /// The id found.
        existing: u32,
        /// The id asked for.
        requested: u32,
    },
    /// The user or group name is not valid in passwd/group files.
    #[error("invalid user or group name {name:?}")]
    BadName {
        /// The name.
        name: String,
    },
    /// The image would run as root, or as a user it does not have.
    #[error(transparent)]
    User(#[from] RootUserError),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The base image of an assembly.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The layout that holds it.
    pub layout: PathBuf,
    /// Its tag in the layout, if named by tag.
    pub tag: Option<String>,
    /// The pinned manifest digest.
    pub digest: Digest,
    /// How the user named it (for annotations and messages).
    pub display_name: String,
}

/// One host file or directory to copy in.
#[derive(Debug, Clone)]
pub struct FileCopy {
    /// Host path (a file, or a directory copied recursively).
    pub source: PathBuf,
    /// Absolute path in the image.
    pub destination: String,
    /// Mode for files (directories get 0755 unless `directory_mode` is set);
    /// `None` keeps the host file's permission bits.
    pub mode: Option<u32>,
    /// Mode for directories created by a recursive copy.
    pub directory_mode: Option<u32>,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

/// The non-root user to add.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Login name (also the group name).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory (created, owned by the user).
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Everything an assembly needs.
#[derive(Debug, Clone)]
pub struct AssemblySpec {
    /// The base image.
    pub base: BaseImage,
    /// The platform to pick when the base is an index.
    pub architecture: String,
    /// Files to copy.
    pub files: Vec<FileCopy>,
    /// A user to add, if any.
    pub user: Option<UserSpec>,
    /// Runtime config; `None` fields keep the base's value. `env` and
    /// `labels` are merged into the base's, `exposed_ports` and `volumes` added.
    pub config: RuntimeConfig,
    /// SOURCE_DATE_EPOCH: every timestamp of the new layer and config.
    pub source_date_epoch: i64,
    /// Layer writing settings (compression).
    pub layer: LayerOptions,
}

/// What an assembly produced.
#[derive(Debug, Clone, Serialize)]
pub struct AssemblyReport {
    /// The new image's manifest.
    pub manifest: Descriptor,
    /// The base image's manifest digest.
    pub base_digest: String,
    /// The added layer.
    pub layer: WrittenLayer,
    /// Files and directories written to the new layer.
    pub entries: u64,
    /// Layers in the image.
    pub layer_count: usize,
}

enum Content {
    None,
    Bytes(Vec<u8>),
    Host(PathBuf),
}

/// Assembles the image described by `spec` into `output` (not tagged; the caller names it).
pub fn assemble(spec: &AssemblySpec, output: &Layout) -> Result<AssemblyReport> {
    let base_layout = Layout::open(&spec.base.layout)?;
    let base_descriptor = match &spec.base.tag {
        Some(tag) => base_layout.resolve(Some(tag))?,
        None => base_layout
            .index()?
            .manifests
            .into_iter()
            .find(|entry| entry.digest == spec.base.digest)
            .ok_or_else(|| Error::BaseDigestMismatch {
                name: spec.base.display_name.clone(),
                pinned: spec.base.digest.to_string(),
                actual: "nothing".into(),
            })?,
    };
    if base_descriptor.digest != spec.base.digest {
        return Err(Error::BaseDigestMismatch {
            name: spec.base.display_name.clone(),
            pinned: spec.base.digest.to_string(),
            actual: base_descriptor.digest.to_string(),
        });
    }
    let base = Image::load_descriptor(&base_layout, base_descriptor, Some(&spec.architecture))?;
    for layer in &base.manifest.layers {
        output.copy_blob_from(&base_layout, layer)?;
    }
    let view = MergedView::from_image(
        &base_layout,
        &base.manifest,
        &base.config,
        &LayerLimits::default(),
    )?;

    let epoch = spec.source_date_epoch;
    let mut entries: BTreeMap<PathBuf, (EntryMeta, Content)> = BTreeMap::new();
    let mut passwd_text = read_text(&view, "etc/passwd");
    let mut group_text = read_text(&view, "etc/group");
    if let Some(user) = &spec.user {
        add_account(&mut passwd_text, &mut group_text, user)?;
        put(
            &mut entries,
            "etc/passwd",
            file_meta(0o644, 0, 0),
            Content::Bytes(passwd_text.clone().into_bytes()),
        );
        put(
            &mut entries,
            "etc/group",
            file_meta(0o644, 0, 0),
            Content::Bytes(group_text.clone().into_bytes()),
        );
        let home = relative_destination(&user.home)?;
        put(
            &mut entries,
            &home,
            EntryMeta {
                uid: u64::from(user.uid),
                gid: u64::from(user.gid),
                ..dir_meta(0o755)
            },
            Content::None,
        );
    }
    for copy in &spec.files {
        add_copy(&mut entries, copy)?;
    }
    // Parent directories the base lacks, so that runtimes and readers agree on their mode.
    let missing_parents: BTreeSet<PathBuf> = entries
        .keys()
        .flat_map(|path| {
            path.ancestors()
                .skip(1)
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        })
        .filter(|parent| {
            !parent.as_os_str().is_empty()
                && !entries.contains_key(parent)
                && view.resolve(parent).is_none()
        })
        .collect();
    for parent in missing_parents {
        entries.insert(
            parent.clone(),
            (
                EntryMeta {
                    path: parent,
                    ..dir_meta(0o755)
                },
                Content::None,
            ),
        );
    }

    let options = LayerOptions {
        clamp_mtime: Some(epoch),
        ..spec.layer
    };
    let layer = write_layer(output, &options, |writer| {
        let mut count = 0;
        for (meta, content) in entries.values() {
            let mut meta = meta.clone();
            meta.mtime = epoch;
            match content {
                Content::None => writer.append(&meta, &mut io::empty())?,
                Content::Bytes(bytes) => {
                    meta.size = bytes.len() as u64;
                    writer.append(&meta, &mut bytes.as_slice())?;
                }
                Content::Host(path) => {
                    let mut file = fs::File::open(path).map_err(|error| {
                        io::Error::new(error.kind(), format!("{}: {error}", path.display()))
                    })?;
                    let size = file.metadata()?.len();
                    meta.size = size;
                    writer.append(&meta, &mut (&mut file as &mut dyn Read))?;
                }
            }
            count += 1;
        }
        Ok(count)
    })?;

    let mut config = base.config.clone();
    let mut runtime = merge_runtime(&base.config.runtime_config(), &spec.config);
    if runtime.user.is_none()
        && let Some(user) = &spec.user
    {
        runtime.user = Some(user.name.clone());
    }
    Accounts::parse(&passwd_text, &group_text).check_non_root(runtime.user.as_deref())?;
    config.set_runtime_config(&runtime);
    let created = rfc3339(epoch);
    config.set_created(&created);
    let mut diff_ids: Vec<Digest> = Vec::new();
    for id in base.config.diff_ids() {
        diff_ids.push(sealcraft_oci::digest::parse_digest(&id)?);
    }
    diff_ids.push(layer.diff_id.clone());
    config.set_diff_ids(&diff_ids);
    let mut history = base.config.history();
    history.push(HistoryEntry {
        created: Some(created),
        created_by: Some(format!(
            "sealcraft assemble: {} file copies{}",
            spec.files.len(),
            spec.user
                .as_ref()
                .map(|user| format!(", user {} ({})", user.name, user.uid))
                .unwrap_or_default()
        )),
        comment: Some(format!(
            "based on {}@{}",
            spec.base.display_name, spec.base.digest
        )),
        author: None,
        empty_layer: false,
    });
    config.set_history(&history);
    let mut layers = base.manifest.layers.clone();
    layers.push(layer.descriptor.clone());
    let layer_count = layers.len();
    let annotations = BTreeMap::from([
        (
            BASE_DIGEST_ANNOTATION.to_owned(),
            spec.base.digest.to_string(),
        ),
        (
            BASE_NAME_ANNOTATION.to_owned(),
            spec.base.display_name.clone(),
        ),
    ]);
    let manifest = commit_image(output, &config, layers, annotations)?;
    Ok(AssemblyReport {
        manifest,
        base_digest: spec.base.digest.to_string(),
        entries: layer.entries,
        layer,
        layer_count,
    })
}

fn read_text(view: &MergedView, path: &str) -> String {
    view.read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn file_meta(mode: u32, uid: u32, gid: u32) -> EntryMeta {
    EntryMeta {
        uid: u64::from(uid),
        gid: u64::from(gid),
        ..EntryMeta::new("", EntryKind::File, mode)
    }
}

fn dir_meta(mode: u32) -> EntryMeta {
    EntryMeta::new("", EntryKind::Directory, mode)
}

fn put(
    entries: &mut BTreeMap<PathBuf, (EntryMeta, Content)>,
    path: impl AsRef<Path>,
    mut meta: EntryMeta,
    content: Content,
) {
    meta.path = path.as_ref().to_path_buf();
    entries.insert(meta.path.clone(), (meta, content));
}

fn relative_destination(destination: &str) -> Result<PathBuf> {
    let bad = || Error::BadDestination {
        destination: destination.to_owned(),
    };
    let rest = destination.strip_prefix('/').ok_or_else(bad)?;
    let normalized =
        sealcraft_oci::layer::normalize_entry_path(rest.as_bytes(), 4096).map_err(|_| bad())?;
    normalized.ok_or_else(bad)
}

fn add_copy(entries: &mut BTreeMap<PathBuf, (EntryMeta, Content)>, copy: &FileCopy) -> Result<()> {
    let destination = relative_destination(&copy.destination)?;
    let host_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| Error::Host { path, source }
    };
    let metadata = fs::metadata(&copy.source).map_err(host_error(&copy.source))?;
    if !metadata.is_dir() {
        let mode = copy.mode.unwrap_or(metadata.permissions().mode() & 0o7777);
        put(
            entries,
            &destination,
            file_meta(mode, copy.uid, copy.gid),
            Content::Host(copy.source.clone()),
        );
        return Ok(());
    }
    let directory_mode = copy.directory_mode.unwrap_or(0o755);
    for item in walkdir::WalkDir::new(&copy.source)
        .follow_links(false)
        .sort_by_file_name()
    {
        let item = item.map_err(|error| {
            let path = error.path().unwrap_or(&copy.source).to_path_buf();
            Error::Host {
                path,
                source: error.into(),
            }
        })?;
        let relative = item
            .path()
            .strip_prefix(&copy.source)
            .unwrap_or(item.path());
        let target = destination.join(relative);
        let file_type = item.file_type();
        let owner = |meta: EntryMeta| EntryMeta {
            uid: u64::from(copy.uid),
            gid: u64::from(copy.gid),
            ..meta
        };
        if file_type.is_dir() {
            put(
                entries,
                &target,
                owner(dir_meta(directory_mode)),
                Content::None,
            );
        } else if file_type.is_symlink() {
            let link = fs::read_link(item.path()).map_err(host_error(item.path()))?;
            put(
                entries,
                &target,
                owner(EntryMeta::new("", EntryKind::Symlink(link), 0o777)),
                Content::None,
            );
        } else if file_type.is_file() {
            let host_mode = item
                .metadata()
                .map_err(|error| Error::Host {
                    path: item.path().to_path_buf(),
                    source: error.into(),
                })?
                .mode()
                & 0o7777;
            put(
                entries,
                &target,
                owner(file_meta(copy.mode.unwrap_or(host_mode), 0, 0)),
                Content::Host(item.path().to_path_buf()),
            );
        }
        // Sockets, fifos and devices on the host are not image content.
    }
    Ok(())
}

fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('-')
}

/// Adds the user and its group to the passwd and group texts, unless an
/// identical entry is already there.
fn add_account(passwd: &mut String, group: &mut String, user: &UserSpec) -> Result<()> {
    if !valid_account_name(&user.name)
        || user.home.contains(':')
        || user.shell.contains(':')
        || user.home.contains('\n')
        || user.shell.contains('\n')
    {
        return Err(Error::BadName {
            name: user.name.clone(),
        });
    }
    let id_of = |text: &str, name: &str, field: usize| {
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name)).then(|| {
                fields
                    .get(field)
                    .and_then(|id| id.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            })
        })
    };
    match id_of(group, &user.name, 2) {
        Some(existing) if existing != user.gid => {
            return Err(Error::UserClash {
                database: "/etc/group",
                name: user.name.clone(),
                existing,
                requested: user.gid,
            });
        }
        Some(_) => {}
        None => {
            if !group.is_empty() && !group.ends_with('\n') {
                group.push('\n');
            }
            group.push_str(&format!("{}:x:{}:\n", user.name, user.gid));
        }
    }
    match id_of(passwd, &user.name, 2) {
        Some(existing) if existing != user.uid => {
            return Err(Error::UserClash {
                database: "/etc/passwd",
                name: user.name.clone(),
                existing,
                requested: user.uid,
            });
        }
        Some(_) => {}
        None => {
            if !passwd.is_empty() && !passwd.ends_with('\n') {
                passwd.push('\n');
            }
            passwd.push_str(&format!(
                "{}:x:{}:{}::{}:{}\n",
                user.name, user.uid, user.gid, user.home, user.shell
            ));
        }
    }
    Ok(())
}

/// Applies the spec's runtime config on top of the base's.
fn merge_runtime(base: &RuntimeConfig, spec: &RuntimeConfig) -> RuntimeConfig {
    let mut merged = base.clone();
    if let Some(user) = &spec.user {
        merged.user = Some(user.clone());
    }
    if let Some(env) = &spec.env {
        let mut combined: Vec<String> = merged.env.take().unwrap_or_default();
        for assignment in env {
            let key = assignment.split('=').next().unwrap_or("");
            combined.retain(|existing| existing.split('=').next() != Some(key));
            combined.push(assignment.clone());
        }
        merged.env = Some(combined);
    }
    if let Some(entrypoint) = &spec.entrypoint {
        merged.entrypoint = Some(entrypoint.clone());
        // As in a Dockerfile, a new entrypoint drops the inherited command.
        merged.cmd = None;
    }
    if let Some(cmd) = &spec.cmd {
        merged.cmd = Some(cmd.clone());
    }
    if let Some(working_dir) = &spec.working_dir {
        merged.working_dir = Some(working_dir.clone());
    }
    for (target, extra) in [
        (&mut merged.exposed_ports, &spec.exposed_ports),
        (&mut merged.volumes, &spec.volumes),
    ] {
        if let Some(extra) = extra {
            let mut set: BTreeSet<String> = target.take().unwrap_or_default().into_iter().collect();
            set.extend(extra.iter().cloned());
            *target = Some(set.into_iter().collect());
        }
    }
    if let Some(labels) = &spec.labels {
        let mut combined = merged.labels.take().unwrap_or_default();
        combined.extend(labels.clone());
        merged.labels = Some(combined);
    }
    if let Some(signal) = &spec.stop_signal {
        merged.stop_signal = Some(signal.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserSpec {
        UserSpec {
            name: "app".into(),
            uid: 10001,
            gid: 10001,
            home: "/home/app".into(),
            shell: "/usr/sbin/nologin".into(),
        }
    }

    #[test]
    fn accounts_are_added_once_and_clashes_refused() {
        let mut passwd = "root:x:0:0:root:/root:/bin/bash".to_owned();
        let mut group = "root:x:0:\n".to_owned();
        add_account(&mut passwd, &mut group, &user()).unwrap();
        add_account(&mut passwd, &mut group, &user()).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/usr/sbin/nologin\n"
        );
        assert_eq!(group, "root:x:0:\napp:x:10001:\n");
        let clash = UserSpec { uid: 5, ..user() };
        assert!(matches!(
            add_account(&mut passwd, &mut group, &clash),
            Err(Error::UserClash { .. })
        ));
        let bad = UserSpec {
            name: "a:b".into(),
            ..user()
        };
        assert!(matches!(
            add_account(&mut passwd, &mut group, &bad),
            Err(Error::BadName { .. })
        ));
    }

    #[test]
    fn runtime_config_merges_like_a_dockerfile() {
        let base = RuntimeConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["bash".into()]),
            exposed_ports: Some(vec!["80/tcp".into()]),
            ..RuntimeConfig::default()
        };
        let spec = RuntimeConfig {
            env: Some(vec!["A=2".into()]),
            entrypoint: Some(vec!["/app".into()]),
            exposed_ports: Some(vec!["8080/tcp".into()]),
            ..RuntimeConfig::default()
        };
        let merged = merge_runtime(&base, &spec);
        assert_eq!(merged.env, Some(vec!["PATH=/bin".into(), "A=2".into()]));
        assert_eq!(merged.cmd, None);
        assert_eq!(
            merged.exposed_ports,
            Some(vec!["80/tcp".into(), "8080/tcp".into()])
        );
    }
}
