//! Processes in an OCI runtime sandbox (runc, or crun).
//!
//! Each process gets a bundle whose root is a given directory (a stage's overlay mount), fresh
//! pid, ipc, uts and mount namespaces, Docker's default capability set, a
//! private /dev, /proc and read-only /sys, and read-only copies of the
//! host's resolv.conf and a minimal hosts file. The network namespace is
//! the host's unless the step asks for `--network=none`. The bundle
//! (`config.json` holds the step's environment, build arguments included)
//! is private to the build and removed after the step.
//!
//! crun refuses hybrid cgroup hosts (v1 controllers plus a v2 mount at
//! `/sys/fs/cgroup/unified`); there it runs in a private mount namespace
//! with the v2 mount hidden, which leaves the host untouched.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::{Error, Result};

/// Which OCI runtime runs RUN steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// runc (the default: it handles hybrid cgroup hosts as they are).
    #[default]
    Runc,
    /// crun (on hybrid cgroup hosts, through a private mount namespace).
    Crun,
}

impl RuntimeKind {
    /// Parses `runc` or `crun`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "runc" => Some(Self::Runc),
            "crun" => Some(Self::Crun),
            _ => None,
        }
    }

    /// The runtime's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runc => "runc",
            Self::Crun => "crun",
        }
    }
}

/// The runtime and the program that implements it.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// runc or crun.
    pub kind: RuntimeKind,
    /// The executable (a name looked up in PATH, or a path).
    pub program: PathBuf,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            kind: RuntimeKind::Runc,
            program: PathBuf::from("runc"),
        }
    }
}

/// A host bind or tmpfs mount for one step.
#[derive(Debug, Clone)]
pub enum ExtraMount {
    /// A host path bound at `destination`.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Where in the container.
        destination: String,
        /// Mounted read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Where in the container.
        destination: String,
        /// Its size limit in bytes.
        size: Option<u64>,
    },
}

impl ExtraMount {
    /// Where the mount appears in the container.
    pub fn destination(&self) -> &str {
        match self {
            Self::Bind { destination, .. } | Self::Tmpfs { destination, .. } => destination,
        }
    }
}

/// The process to run.
#[derive(Debug, Clone, Default)]
pub struct ProcessSpec {
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The working directory in the container.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// A network namespace of its own (loopback only) instead of the host's.
    pub network_none: bool,
    /// Mounts beyond the standard ones.
    pub mounts: Vec<ExtraMount>,
    /// The root filesystem mounted read-only.
    pub readonly_root: bool,
    /// Capabilities added to Docker's default set (`CAP_` prefix optional).
    pub add_capabilities: Vec<String>,
    /// Every capability and no masked paths, as `docker run --privileged`.
    pub privileged: bool,
}

/// How a step ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when one ended it.
    pub signal: Option<i32>,
    /// The last lines it printed.
    pub tail: Vec<String>,
}

impl RunOutcome {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

const TAIL_LINES: usize = 20;

const CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability Linux defines, for privileged containers.
const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities `spec` runs with: Docker's defaults plus the added ones, or all.
fn capability_set(spec: &ProcessSpec) -> Vec<String> {
    if spec.privileged {
        return ALL_CAPABILITIES
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
    }
    let mut set: Vec<String> = CAPABILITIES.iter().map(|name| (*name).to_owned()).collect();
    for added in &spec.add_capabilities {
        let name = added.to_ascii_uppercase();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        if !set.contains(&name) {
            set.push(name);
        }
    }
    set
}

/// Whether `name` (with or without `CAP_`, any case) is a Linux capability.
pub fn is_capability(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    let name = name.strip_prefix("CAP_").unwrap_or(&name);
    ALL_CAPABILITIES
        .iter()
        .any(|known| known.strip_prefix("CAP_") == Some(name))
}

/// A runtime ready to run steps.
#[derive(Debug)]
pub struct Runtime {
    settings: RuntimeSettings,
    hide_cgroup_v2: bool,
    state: PathBuf,
    resolv_conf: PathBuf,
    hosts: PathBuf,
}

/// Whether this host mixes cgroup v1 controllers with a v2 mount (the layout crun rejects).
fn hybrid_cgroups() -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let magic = |path: &str| rustix::fs::statfs(path).ok().map(|stat| stat.f_type);
    magic("/sys/fs/cgroup") == Some(TMPFS_MAGIC)
        && magic("/sys/fs/cgroup/unified") == Some(CGROUP2_SUPER_MAGIC)
}

impl Runtime {
    /// Prepares the runtime's state directory and the files every step binds.
    pub fn new(settings: &RuntimeSettings, work: &Path) -> Result<Self> {
        let state = work.join("runtime");
        fs::create_dir_all(&state)
            .and_then(|()| fs::set_permissions(&state, fs::Permissions::from_mode(0o700)))
            .map_err(Error::io("preparing the runtime state in", &state))?;
        let resolv_conf = work.join("resolv.conf");
        // Containers resolve names the way the host does; a host without one gets an empty file.
        let host_resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        let hosts = work.join("hosts");
        for (file, content) in [
            (&resolv_conf, host_resolv.as_slice()),
            (
                &hosts,
                b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".as_slice(),
            ),
        ] {
            fs::write(file, content)
                .and_then(|()| fs::set_permissions(file, fs::Permissions::from_mode(0o644)))
                .map_err(Error::io("writing", file))?;
        }
        Ok(Self {
            settings: settings.clone(),
            hide_cgroup_v2: settings.kind == RuntimeKind::Crun && hybrid_cgroups(),
            state,
            resolv_conf,
            hosts,
        })
    }

    /// Files bound into every step, and where.
    pub fn standard_binds(&self) -> Vec<ExtraMount> {
        vec![
            ExtraMount::Bind {
                source: self.resolv_conf.clone(),
                destination: "/etc/resolv.conf".into(),
                readonly: true,
            },
            ExtraMount::Bind {
                source: self.hosts.clone(),
                destination: "/etc/hosts".into(),
                readonly: true,
            },
        ]
    }

    /// Mount points the runtime itself needs in the root filesystem.
    pub fn runtime_mount_points() -> [&'static str; 3] {
        ["/proc", "/dev", "/sys"]
    }

    /// Runs `spec` with `rootfs` as its root, passing each output line to `output`.
    pub fn run(
        &self,
        rootfs: &Path,
        spec: &ProcessSpec,
        bundle: &Path,
        id: &str,
        output: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome> {
        self.write_bundle(rootfs, spec, bundle)?;
        let result = self.execute(bundle, id, output);
        // The config holds the step's environment (build arguments): never leave it behind.
        let _ = fs::remove_dir_all(bundle);
        result
    }

    /// The runtime invoked with its state root and `args` (behind the private
    /// mount namespace where crun needs one).
    pub(crate) fn command(&self, args: &[std::ffi::OsString]) -> Command {
        let mut runtime_args: Vec<std::ffi::OsString> =
            vec!["--root".into(), self.state.clone().into_os_string()];
        runtime_args.extend(args.iter().cloned());
        if self.hide_cgroup_v2 {
            let mut command = Command::new("unshare");
            command
                .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg("umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"")
                .arg(&self.settings.program)
                .args(&runtime_args);
            command
        } else {
            let mut command = Command::new(&self.settings.program);
            command.args(&runtime_args);
            command
        }
    }

    /// The runtime's executable.
    pub(crate) fn program(&self) -> &Path {
        &self.settings.program
    }

    /// Writes the bundle of `spec` with `rootfs` as its root (`config.json`,
    /// private to the owner: it holds the environment).
    pub fn write_bundle(&self, rootfs: &Path, spec: &ProcessSpec, bundle: &Path) -> Result<()> {
        fs::create_dir_all(bundle)
            .and_then(|()| fs::set_permissions(bundle, fs::Permissions::from_mode(0o700)))
            .map_err(Error::io("creating the bundle", bundle))?;
        let config_path = bundle.join("config.json");
        let config = self.config(rootfs, spec).to_string();
        write_private(&config_path, config.as_bytes()).map_err(Error::io("writing", &config_path))
    }

    fn execute(&self, bundle: &Path, id: &str, output: &mut dyn FnMut(&str)) -> Result<RunOutcome> {
        let mut command = self.command(&[
            "run".into(),
            "--bundle".into(),
            bundle.as_os_str().to_owned(),
            id.into(),
        ]);
        let start = |source| Error::Start {
            program: self.settings.program.clone(),
            source,
        };
        let (reader, writer) = io::pipe().map_err(start)?;
        command
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(start)?)
            .stderr(writer);
        let mut child = command.spawn().map_err(start)?;
        // The pipe's write ends now live only in the child.
        drop(command);
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|source| Error::Output {
                    program: self.settings.program.clone(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            output(text);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.to_owned());
        }
        let status = child.wait().map_err(|source| Error::Output {
            program: self.settings.program.clone(),
            source,
        })?;
        Ok(RunOutcome {
            code: status.code(),
            signal: status.signal(),
            tail: tail.into_iter().collect(),
        })
    }

    fn config(&self, rootfs: &Path, spec: &ProcessSpec) -> Value {
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .unwrap_or(1024)
            .min(1 << 20);
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
        ];
        for mount in &spec.mounts {
            mounts.push(match mount {
                ExtraMount::Bind {
                    source,
                    destination,
                    readonly,
                } => {
                    let mut options = vec!["rbind", "nosuid", "nodev"];
                    options.push(if *readonly { "ro" } else { "rw" });
                    json!({"destination": destination, "type": "bind",
                           "source": source, "options": options})
                }
                ExtraMount::Tmpfs { destination, size } => {
                    let mut options = vec!["nosuid".to_owned(), "nodev".to_owned()];
                    if let Some(size) = size {
                        options.push(format!("size={size}"));
                    }
                    json!({"destination": destination, "type": "tmpfs",
                           "source": "tmpfs", "options": options})
                }
            });
        }
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
        ];
        if spec.network_none {
            namespaces.push(json!({"type": "network"}));
        }
        let capabilities = capability_set(spec);
        let (masked, readonly): (&[&str], &[&str]) = if spec.privileged {
            (&[], &[])
        } else {
            (&MASKED_PATHS, &READONLY_PATHS)
        };
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": spec.additional_gids},
                "args": spec.args,
                "env": spec.env,
                "cwd": spec.cwd,
                "capabilities": {
                    "bounding": capabilities,
                    "effective": capabilities,
                    "permitted": capabilities,
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
                "noNewPrivileges": false,
            },
            "root": {"path": rootfs, "readonly": spec.readonly_root},
            "hostname": "sealcraft-build",
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "maskedPaths": masked,
                "readonlyPaths": readonly,
            },
        })
    }
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}
