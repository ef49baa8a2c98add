//! Test spec files: container-structure-test's schema 2.0.0 (and 1.0.0),
//! YAML or JSON, parsed strictly (an unknown key is an error with its
//! line), plus sealcraft's own `sealcraft:` section for service tests,
//! which CST's strict parser would refuse and so never shares a key with it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// `key`/`value` pairs of env vars and labels.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value (a regular expression with `isRegex`).
    #[serde(default)]
    pub value: String,
    /// Whether `value` is a regular expression (metadata tests only).
    #[serde(default)]
    pub is_regex: bool,
}

/// A command run in the image, its output and exit code checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandTest {
    /// The test's name.
    pub name: String,
    /// argv lists run before the command, in the same container.
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    /// argv lists run after the command, in the same container.
    #[serde(default)]
    pub teardown: Vec<Vec<String>>,
    /// Variables set for setup, command and teardown.
    #[serde(default)]
    pub env_vars: Vec<KeyValue>,
    /// The program (`$VAR` expanded against the image's env).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The expected exit code.
    #[serde(default)]
    pub exit_code: i32,
    /// Regular expressions stdout must match.
    #[serde(default)]
    pub expected_output: Vec<String>,
    /// Regular expressions stdout must not match.
    #[serde(default)]
    pub excluded_output: Vec<String>,
    /// Regular expressions stderr must match.
    #[serde(default)]
    pub expected_error: Vec<String>,
    /// Regular expressions stderr must not match.
    #[serde(default)]
    pub excluded_error: Vec<String>,
}

fn should_exist_default() -> bool {
    true
}

/// A path that must (or must not) exist, with its mode, owner and executable bits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileExistenceTest {
    /// The test's name.
    pub name: String,
    /// The path (`$VAR` expanded against the env).
    pub path: String,
    /// Whether it must exist (the default) or must not.
    #[serde(default = "should_exist_default")]
    pub should_exist: bool,
    /// The mode as Go prints it (`-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`, `urwxr-xr-x`).
    #[serde(default)]
    pub permissions: Option<String>,
    /// The owner's uid.
    #[serde(default)]
    pub uid: Option<i64>,
    /// The group's gid.
    #[serde(default)]
    pub gid: Option<i64>,
    /// `owner`, `group`, `other` or `any`.
    #[serde(default)]
    pub is_executable_by: Option<String>,
}

/// A file whose content must (not) match regular expressions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileContentTest {
    /// The test's name.
    pub name: String,
    /// The file (symlinks followed inside the image).
    pub path: String,
    /// Regular expressions the content must match.
    #[serde(default)]
    pub expected_contents: Vec<String>,
    /// Regular expressions the content must not match.
    #[serde(default)]
    pub excluded_contents: Vec<String>,
}

/// The expected `Healthcheck` of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthcheckSpec {
    /// The test (`["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`).
    #[serde(default)]
    pub test: Option<Vec<String>>,
    /// Go duration strings (`30s`, `1m30s`).
    #[serde(default)]
    pub interval: Option<String>,
    /// How long one check may take.
    #[serde(default)]
    pub timeout: Option<String>,
    /// The grace period after start.
    #[serde(default)]
    pub start_period: Option<String>,
    /// Failures before unhealthy.
    #[serde(default)]
    pub retries: Option<u64>,
}

/// Checks of the image config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetadataTest {
    /// Variables that must be set (exact value, or a regular expression).
    #[serde(default)]
    pub env_vars: Vec<KeyValue>,
    /// Variables that must not be set.
    #[serde(default)]
    pub unbound_env_vars: Vec<KeyValue>,
    /// Ports that must be exposed (the protocol is not compared).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// Ports that must not be exposed.
    #[serde(default)]
    pub unexposed_ports: Vec<String>,
    /// The entrypoint, exactly (`[]`: none).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The command, exactly (`[]`: none).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Volumes that must be declared.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Volumes that must not be declared.
    #[serde(default)]
    pub unmounted_volumes: Vec<String>,
    /// Labels (exact value, or a regular expression).
    #[serde(default)]
    pub labels: Vec<KeyValue>,
    /// The user.
    #[serde(default)]
    pub user: Option<String>,
    /// The stop signal (sealcraft's addition).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// The health check (sealcraft's addition).
    #[serde(default)]
    pub healthcheck: Option<HealthcheckSpec>,
    /// The shell of shell-form instructions (sealcraft's addition).
    #[serde(default)]
    pub shell: Option<Vec<String>>,
    /// ONBUILD triggers (sealcraft's addition; `[]`: none).
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
}

/// License checks of `/usr/share/doc/*/copyright` and listed files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LicenseTest {
    /// Check every Debian package's copyright file.
    #[serde(default)]
    pub debian: bool,
    /// More files to check.
    #[serde(default)]
    pub files: Vec<String>,
}

/// How command test containers run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunOptions {
    /// The user (`name`, `uid` or `uid:gid`) instead of the image's.
    #[serde(default)]
    pub user: Option<String>,
    /// Every capability, no masked paths.
    #[serde(default)]
    pub privileged: bool,
    /// Accepted for compatibility; tests never get a terminal.
    #[serde(default)]
    pub allocate_tty: bool,
    /// Names of host variables passed in (their values come from the caller).
    #[serde(default)]
    pub env_vars: Vec<String>,
    /// A file of `KEY=VALUE` lines passed in.
    #[serde(default)]
    pub env_file: Option<String>,
    /// Capabilities added to the default set.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `host:container[:ro]` bind mounts.
    #[serde(default)]
    pub bind_mounts: Vec<String>,
}

/// What a service must show to be ready.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadySpec {
    /// A TCP port that accepts connections.
    #[serde(default)]
    pub tcp: Option<u16>,
    /// An HTTP endpoint.
    #[serde(default)]
    pub http: Option<HttpReady>,
    /// Seconds to wait (default 30).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// An HTTP readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpReady {
    /// The port.
    pub port: u16,
    /// The path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The status wanted (default 200).
    #[serde(default)]
    pub status: Option<u16>,
}

/// How a service must stop.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StopSpec {
    /// The signal (default: the image's `StopSignal`, else SIGTERM).
    #[serde(default)]
    pub signal: Option<String>,
    /// Seconds it may take (default 10).
    #[serde(default)]
    pub within: Option<u64>,
    /// The exit code wanted (default 0).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// A service started from the image's entrypoint, probed, and stopped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceTest {
    /// The test's name.
    pub name: String,
    /// Variables added to the image's env.
    #[serde(default)]
    pub env_vars: Vec<KeyValue>,
    /// Replaces the image's `Cmd` (the entrypoint stays).
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Readiness.
    #[serde(default)]
    pub ready: Option<ReadySpec>,
    /// Stopping.
    #[serde(default)]
    pub stop: Option<StopSpec>,
    /// Runs with a read-only root (the image's volumes and /tmp stay writable).
    #[serde(default)]
    pub read_only_root: bool,
    /// Runs the image's HEALTHCHECK once ready; it must pass.
    #[serde(default)]
    pub healthcheck: bool,
}

/// sealcraft's own section of a spec file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SealcraftSection {
    /// Service tests.
    #[serde(default)]
    pub service_tests: Vec<ServiceTest>,
    /// The network of command tests: `none` (loopback only, the default) or `host`.
    #[serde(default)]
    pub network: Option<String>,
    /// Command tests run with a read-only root.
    #[serde(default)]
    pub read_only_root: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawV2 {
    #[allow(dead_code, reason = "read by the version pass")]
    schema_version: String,
    #[serde(default)]
    global_env_vars: Vec<KeyValue>,
    #[serde(default)]
    command_tests: Vec<CommandTest>,
    #[serde(default)]
    file_existence_tests: Vec<FileExistenceTest>,
    #[serde(default)]
    file_content_tests: Vec<FileContentTest>,
    #[serde(default)]
    metadata_test: Option<MetadataTest>,
    #[serde(default)]
    license_tests: Vec<LicenseTest>,
    #[serde(default)]
    container_run_options: Option<RunOptions>,
    #[serde(default)]
    sealcraft: Option<SealcraftSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CommandTestV1 {
    name: String,
    #[serde(default)]
    setup: Vec<Vec<String>>,
    #[serde(default)]
    teardown: Vec<Vec<String>>,
    #[serde(default)]
    env_vars: Vec<KeyValue>,
    command: Vec<String>,
    #[serde(default)]
    exit_code: i32,
    #[serde(default)]
    expected_output: Vec<String>,
    #[serde(default)]
    excluded_output: Vec<String>,
    #[serde(default)]
    expected_error: Vec<String>,
    #[serde(default)]
    excluded_error: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileExistenceTestV1 {
    name: String,
    path: String,
    #[serde(default = "should_exist_default")]
    should_exist: bool,
    #[serde(default)]
    permissions: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawV1 {
    #[allow(dead_code, reason = "read by the version pass")]
    schema_version: String,
    #[serde(default)]
    global_env_vars: Vec<KeyValue>,
    #[serde(default)]
    command_tests: Vec<CommandTestV1>,
    #[serde(default)]
    file_existence_tests: Vec<FileExistenceTestV1>,
    #[serde(default)]
    file_content_tests: Vec<FileContentTest>,
    #[serde(default)]
    license_tests: Vec<LicenseTest>,
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<String>,
}

/// One spec file, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestFile {
    /// Where it came from (for reports).
    pub path: PathBuf,
    /// `2.0.0` or `1.0.0`.
    pub schema_version: String,
    /// Variables set for command, file existence and file content tests.
    pub global_env_vars: Vec<KeyValue>,
    /// Command tests.
    pub command_tests: Vec<CommandTest>,
    /// File existence tests.
    pub file_existence_tests: Vec<FileExistenceTest>,
    /// File content tests.
    pub file_content_tests: Vec<FileContentTest>,
    /// The metadata test.
    pub metadata_test: Option<MetadataTest>,
    /// License tests.
    pub license_tests: Vec<LicenseTest>,
    /// How command containers run.
    pub container_run_options: Option<RunOptions>,
    /// sealcraft's section: service tests and how command tests run.
    pub sealcraft: SealcraftSection,
}

fn parse_error(path: &Path, error: &serde_yaml_ng::Error) -> Error {
    let location = error.location();
    Error::Parse {
        path: path.to_path_buf(),
        line: location.as_ref().map(|place| place.line()),
        column: location.as_ref().map(|place| place.column()),
        message: error.to_string(),
    }
}

impl TestFile {
    /// Reads and parses the spec file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSpec {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses a spec file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let version: VersionOnly =
            serde_yaml_ng::from_str(text).map_err(|error| parse_error(path, &error))?;
        let file = match version.schema_version.as_deref() {
            Some("2.0.0") => {
                let raw: RawV2 =
                    serde_yaml_ng::from_str(text).map_err(|error| parse_error(path, &error))?;
                Self {
                    path: path.to_path_buf(),
                    schema_version: "2.0.0".into(),
                    global_env_vars: raw.global_env_vars,
                    command_tests: raw.command_tests,
                    file_existence_tests: raw.file_existence_tests,
                    file_content_tests: raw.file_content_tests,
                    metadata_test: raw.metadata_test,
                    license_tests: raw.license_tests,
                    container_run_options: raw.container_run_options,
                    sealcraft: raw.sealcraft.unwrap_or_default(),
                }
            }
            Some("1.0.0") => {
                let raw: RawV1 =
                    serde_yaml_ng::from_str(text).map_err(|error| parse_error(path, &error))?;
                Self::from_v1(raw, path)?
            }
            Some(other) => {
                return Err(Error::UnsupportedSchema {
                    path: path.to_path_buf(),
                    version: other.to_owned(),
                });
            }
            None => {
                return Err(Error::MissingSchema {
                    path: path.to_path_buf(),
                });
            }
        };
        file.check()?;
        Ok(file)
    }

    fn from_v1(raw: RawV1, path: &Path) -> Result<Self> {
        let mut commands = Vec::new();
        for test in raw.command_tests {
            let mut argv = test.command.into_iter();
            let command = argv.next().ok_or_else(|| Error::InvalidSpec {
                path: path.to_path_buf(),
                test: test.name.clone(),
                problem: "the command is empty".into(),
            })?;
            commands.push(CommandTest {
                name: test.name,
                setup: test.setup,
                teardown: test.teardown,
                env_vars: test.env_vars,
                command,
                args: argv.collect(),
                exit_code: test.exit_code,
                expected_output: test.expected_output,
                excluded_output: test.excluded_output,
                expected_error: test.expected_error,
                excluded_error: test.excluded_error,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            schema_version: "1.0.0".into(),
            global_env_vars: raw.global_env_vars,
            command_tests: commands,
            file_existence_tests: raw
                .file_existence_tests
                .into_iter()
                .map(|test| FileExistenceTest {
                    name: test.name,
                    path: test.path,
                    should_exist: test.should_exist,
                    permissions: test.permissions,
                    uid: None,
                    gid: None,
                    is_executable_by: None,
                })
                .collect(),
            file_content_tests: raw.file_content_tests,
            license_tests: raw.license_tests,
            ..Self::default()
        })
    }

    /// Every regular expression compiles, names and commands are present,
    /// and values are what their fields take.
    fn check(&self) -> Result<()> {
        let invalid = |test: &str, problem: String| Error::InvalidSpec {
            path: self.path.clone(),
            test: test.to_owned(),
            problem,
        };
        let patterns = |test: &str, lists: &[&Vec<String>]| -> Result<()> {
            for pattern in lists.iter().flat_map(|list| list.iter()) {
                regex::Regex::new(pattern)
                    .map_err(|error| invalid(test, format!("bad regular expression: {error}")))?;
            }
            Ok(())
        };
        let env = |test: &str, vars: &[KeyValue], need_value: bool| -> Result<()> {
            for var in vars {
                if var.key.is_empty() {
                    return Err(invalid(test, "a variable has an empty key".into()));
                }
                if need_value && var.value.is_empty() {
                    return Err(invalid(test, format!("variable {} has no value", var.key)));
                }
            }
            Ok(())
        };
        env("globalEnvVars", &self.global_env_vars, true)?;
        for test in &self.command_tests {
            if test.name.is_empty() {
                return Err(invalid("commandTests", "a test has no name".into()));
            }
            if test.command.is_empty() {
                return Err(invalid(&test.name, "the command is empty".into()));
            }
            if test.setup.iter().chain(&test.teardown).any(Vec::is_empty) {
                return Err(invalid(
                    &test.name,
                    "a setup or teardown entry is empty".into(),
                ));
            }
            env(&test.name, &test.env_vars, true)?;
            patterns(
                &test.name,
                &[
                    &test.expected_output,
                    &test.excluded_output,
                    &test.expected_error,
                    &test.excluded_error,
                ],
            )?;
        }
        for test in &self.file_existence_tests {
            if test.name.is_empty() || test.path.is_empty() {
                return Err(invalid(
                    &test.name,
                    "a file existence test needs a name and a path".into(),
                ));
            }
            if let Some(by) = &test.is_executable_by
                && !matches!(by.as_str(), "owner" | "group" | "other" | "any")
            {
                return Err(invalid(
                    &test.name,
                    format!("isExecutableBy is {by:?}; it takes owner, group, other or any"),
                ));
            }
        }
        for test in &self.file_content_tests {
            if test.name.is_empty() || test.path.is_empty() {
                return Err(invalid(
                    &test.name,
                    "a file content test needs a name and a path".into(),
                ));
            }
            patterns(
                &test.name,
                &[&test.expected_contents, &test.excluded_contents],
            )?;
        }
        if let Some(metadata) = &self.metadata_test {
            env("metadataTest", &metadata.env_vars, false)?;
            env("metadataTest", &metadata.unbound_env_vars, false)?;
            env("metadataTest", &metadata.labels, false)?;
            for var in metadata.env_vars.iter().chain(&metadata.labels) {
                if var.is_regex {
                    patterns("metadataTest", &[&vec![var.value.clone()]])?;
                }
            }
            if metadata
                .exposed_ports
                .iter()
                .chain(&metadata.unexposed_ports)
                .any(String::is_empty)
            {
                return Err(invalid("metadataTest", "a port is empty".into()));
            }
            if metadata
                .volumes
                .iter()
                .chain(&metadata.unmounted_volumes)
                .any(String::is_empty)
            {
                return Err(invalid("metadataTest", "a volume is empty".into()));
            }
            if let Some(check) = &metadata.healthcheck {
                for duration in [&check.interval, &check.timeout, &check.start_period]
                    .into_iter()
                    .flatten()
                {
                    crate::duration::parse(duration).ok_or_else(|| {
                        invalid(
                            "metadataTest",
                            format!("healthcheck duration {duration:?} is not like 30s or 1m30s"),
                        )
                    })?;
                }
            }
        }
        if let Some(options) = &self.container_run_options {
            for capability in &options.capabilities {
                if !sealcraft_runtime::is_capability(capability) {
                    return Err(invalid(
                        "containerRunOptions",
                        format!("{capability} is not a Linux capability"),
                    ));
                }
            }
            for mount in &options.bind_mounts {
                crate::sandbox::parse_bind(mount).ok_or_else(|| {
                    invalid(
                        "containerRunOptions",
                        format!(
                            "bind mount {mount:?} is not host:container[:ro], both absolute paths"
                        ),
                    )
                })?;
            }
        }
        if let Some(network) = &self.sealcraft.network
            && !matches!(network.as_str(), "none" | "host")
        {
            return Err(invalid(
                "sealcraft",
                format!("network is {network:?}; it takes none or host"),
            ));
        }
        for test in &self.sealcraft.service_tests {
            if test.name.is_empty() {
                return Err(invalid("serviceTests", "a test has no name".into()));
            }
            env(&test.name, &test.env_vars, false)?;
            if let Some(ready) = &test.ready
                && ready.tcp.is_some() == ready.http.is_some()
            {
                return Err(invalid(
                    &test.name,
                    "ready needs exactly one of tcp and http".into(),
                ));
            }
        }
        Ok(())
    }

    /// The host variables `containerRunOptions.envVars` asks for.
    pub fn host_env_names(&self) -> Vec<String> {
        self.container_run_options
            .as_ref()
            .map(|options| options.env_vars.clone())
            .unwrap_or_default()
    }
}
