//! `sealcraft.toml` parsed and validated into one [`Plan`] before any work starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sealcraft_build::{BaseImage, FileCopy, UserSpec};
use sealcraft_oci::digest::parse_digest;
use sealcraft_oci::image::ImageName;
use sealcraft_oci::layer::Compression;
use sealcraft_oci::manifest::RuntimeConfig;
use sealcraft_oci::reference::Reference;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};

/// Architectures sealcraft can name (GOARCH values).
pub const KNOWN_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    project: RawProject,
    #[serde(default)]
    base: Option<Spanned<RawBase>>,
    #[serde(default)]
    user: Option<Spanned<RawUser>>,
    #[serde(default)]
    files: Vec<Spanned<RawFile>>,
    #[serde(default)]
    config: Option<Spanned<RawRuntime>>,
    #[serde(default)]
    squash: RawSquash,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    build: RawBuild,
    #[serde(default)]
    harden: Option<RawHarden>,
    #[serde(default)]
    publish: Option<RawPublish>,
    #[serde(default)]
    scan: Option<RawScan>,
    #[serde(default)]
    upload: Option<RawUpload>,
    #[serde(default)]
    sinks: Vec<RawSink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    path: Option<String>,
    address: Option<String>,
    url: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    authorization: Option<Spanned<String>>,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    url: Spanned<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<Spanned<String>>,
    secret_access_key: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    access_key: Option<Spanned<String>>,
    service_account_key: Option<Spanned<String>>,
    #[serde(default)]
    allow_http: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScan {
    db: Spanned<String>,
    #[serde(default)]
    fail_on: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    ignore_unfixed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    key: Spanned<String>,
    key_password: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    #[serde(default)]
    allow_http: Vec<String>,
    ca_bundle: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<Spanned<String>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    provenance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
    version: Spanned<String>,
    registry: Spanned<String>,
    architectures: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    image: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    uid: Spanned<u32>,
    gid: Option<u32>,
    home: Option<String>,
    shell: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    source: Spanned<String>,
    destination: Spanned<String>,
    mode: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    user: Option<Spanned<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    workdir: Option<String>,
    exposed_ports: Option<Vec<Spanned<String>>>,
    volumes: Option<Vec<String>>,
    stop_signal: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSquash {
    enabled: bool,
}

impl Default for RawSquash {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    dir: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    source_date_epoch: Option<i64>,
    compression: Option<Spanned<String>>,
    dockerfile: Option<Spanned<String>>,
    context: Option<Spanned<String>>,
    target: Option<String>,
    #[serde(default)]
    args: BTreeMap<String, String>,
    #[serde(default)]
    bases: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    secrets: Vec<RawBuildSecret>,
    require_pinned: Option<bool>,
    network: Option<Spanned<String>>,
    runtime: Option<Spanned<String>>,
    cache_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuildSecret {
    id: Spanned<String>,
    source: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHarden {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    remove_shells: bool,
    #[serde(default)]
    remove_packages: Vec<String>,
    #[serde(default)]
    keep: Vec<String>,
    #[serde(default = "yes")]
    keep_copyright: bool,
}

fn yes() -> bool {
    true
}

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
    /// Whether to squash the built image.
    pub squash: bool,
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

/// Native assembly.
#[derive(Debug, Clone)]
pub struct AssemblyPlan {
    /// The digest-pinned base image.
    pub base: BaseImage,
    /// Host files to copy.
    pub files: Vec<FileCopy>,
    /// The non-root user to add.
    pub user: Option<UserSpec>,
    /// Runtime config.
    pub runtime: RuntimeConfig,
}

/// A Dockerfile build; secrets appear only as references.
#[derive(Debug, Clone)]
pub struct DockerfilePlan {
    /// The Dockerfile.
    pub path: PathBuf,
    /// sha256 of its bytes.
    pub digest: String,
    /// Its parsed form.
    pub dockerfile: sealcraft_build::dockerfile::Dockerfile,
    /// The build context.
    pub context: PathBuf,
    /// The stage to build (the last one by default).
    pub target: Option<String>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// Images standing in for the names FROM gives (`oci:` paths made absolute).
    pub bases: BTreeMap<String, String>,
    /// Secrets for `RUN --mount=type=secret`: id and secret reference.
    pub secrets: Vec<(String, String)>,
    /// Refuse base images without a digest (on unless turned off).
    pub require_pinned: bool,
    /// RUN steps without network.
    pub network_none: bool,
    /// The OCI runtime.
    pub runtime: sealcraft_build::RuntimeKind,
    /// The build store, when not the default.
    pub cache_dir: Option<PathBuf>,
}

/// The `[harden]` section.
#[derive(Debug, Clone)]
pub struct HardenPlan {
    /// Remove shells too.
    pub remove_shells: bool,
    /// Further packages to remove.
    pub remove_packages: Vec<String>,
    /// Globs of paths never removed.
    pub keep: Vec<String>,
    /// Keep Debian copyright files.
    pub keep_copyright: bool,
}

/// One `[[sinks]]` entry; the authorization is a secret reference.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// `file`, `stdout`, `syslog`, `loki` or `webhook`.
    pub kind: String,
    /// File path (file).
    pub path: Option<PathBuf>,
    /// `host:port` (syslog).
    pub address: Option<String>,
    /// URL (loki, webhook).
    pub url: Option<String>,
    /// Stream labels (loki).
    pub labels: BTreeMap<String, String>,
    /// Reference to the `Authorization` header value (webhook).
    pub authorization: Option<String>,
    /// A delivery failure fails the run.
    pub required: bool,
}

/// The `[upload]` section; keys appear only as secret references.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    /// `s3://bucket/prefix`, `gs://…`, `az://…` or `file:///dir`.
    pub url: String,
    /// S3-compatible endpoint.
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// How to authenticate; secrets as references.
    pub credentials: UploadCredentials,
    /// Plain HTTP to the endpoint.
    pub allow_http: bool,
}

/// Object store credentials as they stand in the config: every secret is a
/// reference (`env:`, `file:`, `vault:`), resolved only when the upload runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCredentials {
    /// From the environment, as the provider's own tools read it.
    Ambient,
    /// `s3://`: `access_key_id` and `secret_access_key`.
    S3 {
        /// Reference to the access key id.
        access_key_id: String,
        /// Reference to the secret access key.
        secret_access_key: String,
    },
    /// `az://`: `account` and its `access_key`.
    Azure {
        /// The storage account name (not a secret).
        account: String,
        /// Reference to the account key.
        access_key: String,
    },
    /// `gs://`: `service_account_key`, the JSON key.
    Gcs {
        /// Reference to the JSON key.
        service_account_key: String,
    },
}

/// Makes a config error from a span in the text, the key and a message.
type ConfigErrorAt<'a> = dyn Fn(Option<std::ops::Range<usize>>, &str, String) -> Error + 'a;

/// Validates `[upload]`: a known scheme, and only the settings that scheme
/// uses, so a key meant for one store is never silently ignored by another.
fn upload_plan(
    upload: &RawUpload,
    config_error: &ConfigErrorAt<'_>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<UploadPlan> {
    let url = upload.url.get_ref().clone();
    let Some((scheme, _)) = url
        .split_once("://")
        .filter(|(scheme, _)| ["s3", "gs", "az", "file"].contains(scheme))
    else {
        return Err(config_error(
            Some(upload.url.span()),
            "upload.url",
            format!("{url:?} is not s3://BUCKET[/PREFIX], gs://…, az://… or file:///DIR"),
        ));
    };
    let settings = [
        ("access_key_id", &upload.access_key_id, "s3"),
        ("secret_access_key", &upload.secret_access_key, "s3"),
        ("account", &upload.account, "az"),
        ("access_key", &upload.access_key, "az"),
        ("service_account_key", &upload.service_account_key, "gs"),
    ];
    for (name, value, owner) in settings {
        if let Some(value) = value
            && owner != scheme
        {
            return Err(config_error(
                Some(value.span()),
                &format!("upload.{name}"),
                format!("`{name}` is for {owner}:// stores, and the URL is {scheme}://"),
            ));
        }
    }
    if scheme == "file" && (upload.endpoint.is_some() || upload.region.is_some()) {
        return Err(config_error(
            Some(upload.url.span()),
            "upload",
            "a file:// store takes no endpoint or region".into(),
        ));
    }
    for value in [
        &upload.access_key_id,
        &upload.secret_access_key,
        &upload.access_key,
        &upload.service_account_key,
    ]
    .into_iter()
    .flatten()
    {
        if sealcraft_secrets::SecretRef::parse(value.get_ref()).is_err() {
            return Err(config_error(
                Some(value.span()),
                "upload",
                "keys must be secret references (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD), never the keys themselves".into(),
            ));
        }
    }
    let reference = |value: &Spanned<String>| value.get_ref().clone();
    let pair = |first: &Option<Spanned<String>>,
                second: &Option<Spanned<String>>,
                names: [&str; 2]|
     -> Result<Option<(String, String)>> {
        match (first, second) {
            (None, None) => Ok(None),
            (Some(first), Some(second)) => Ok(Some((reference(first), reference(second)))),
            (Some(given), None) | (None, Some(given)) => Err(config_error(
                Some(given.span()),
                "upload",
                format!("`{}` and `{}` go together", names[0], names[1]),
            )),
        }
    };
    let credentials = match scheme {
        "s3" => pair(
            &upload.access_key_id,
            &upload.secret_access_key,
            ["access_key_id", "secret_access_key"],
        )?
        .map(|(access_key_id, secret_access_key)| UploadCredentials::S3 {
            access_key_id,
            secret_access_key,
        }),
        "az" => pair(
            &upload.account,
            &upload.access_key,
            ["account", "access_key"],
        )?
        .map(|(account, access_key)| UploadCredentials::Azure {
            account,
            access_key,
        }),
        "gs" => upload
            .service_account_key
            .as_ref()
            .map(|key| UploadCredentials::Gcs {
                service_account_key: reference(key),
            }),
        _ => None,
    }
    .unwrap_or(UploadCredentials::Ambient);
    let url = match url.strip_prefix("file://") {
        Some(path) if !path.starts_with('/') => format!("file://{}", resolve(path).display()),
        _ => url,
    };
    Ok(UploadPlan {
        url,
        endpoint: upload.endpoint.clone(),
        region: upload.region.clone(),
        credentials,
        allow_http: upload.allow_http,
    })
}

/// The `[scan]` section.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// The advisory database (made by `sealcraft db import`) or a directory of OSV records.
    pub db: PathBuf,
    /// Severities that fail the run.
    pub fail_on: Vec<sealcraft_vuln::severity::Severity>,
    /// Findings without a fix do not fail the run.
    pub ignore_unfixed: bool,
}

/// Where the image is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishTarget {
    /// The registry named by `project.registry`: `host[:port]` and the repository.
    Registry {
        /// `host[:port]`.
        registry: String,
        /// `namespace/project`.
        repository: String,
    },
    /// An OCI layout directory.
    Layout(PathBuf),
}

/// Where the cosign private key (encrypted PEM) is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKey {
    /// A file, resolved against the config's directory.
    File(PathBuf),
    /// A `vault:MOUNT/PATH#FIELD` reference whose value is the PEM.
    Vault(String),
    /// A `vault-transit:[MOUNT/]KEY`: the vault signs, the key never leaves it.
    Transit(String),
}

impl SigningKey {
    /// Classifies a key setting by its prefix; anything else is a file,
    /// placed by `file`. Whether a reference is well formed is checked where it is used.
    pub fn classify(text: &str, file: impl Fn(&str) -> PathBuf) -> Self {
        if text.starts_with("vault-transit:") {
            Self::Transit(text.to_owned())
        } else if text.starts_with("vault:") {
            Self::Vault(text.to_owned())
        } else {
            Self::File(file(text))
        }
    }
}

/// The `[publish]` section: secrets appear only as references (`env:`, `file:`).
#[derive(Debug, Clone)]
pub struct PublishPlan {
    /// Where to.
    pub target: PublishTarget,
    /// The cosign private key.
    pub key: SigningKey,
    /// Reference to the key password; `None` means `COSIGN_PASSWORD`.
    pub key_password: Option<String>,
    /// Registries reachable over plain HTTP.
    pub allow_http: Vec<String>,
    /// CA bundle for the registry's TLS certificate.
    pub ca_bundle: Option<PathBuf>,
    /// Registry user name; without it, `~/.docker/config.json` is consulted.
    pub username: Option<String>,
    /// Reference to the registry password.
    pub password: Option<String>,
    /// Claims added to the signature payload.
    pub annotations: BTreeMap<String, String>,
    /// SLSA provenance version: `v1` (default) or `v0.2`.
    pub provenance_v02: bool,
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
        let config_error = |span: Option<std::ops::Range<usize>>, key: &str, message: String| {
            let (line, column) = span.map_or((0, 0), |span| line_and_column(text, span.start));
            Error::Config {
                path: path.to_path_buf(),
                line,
                column,
                key: key.to_owned(),
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let key = String::new();
            config_error(error.span(), &key, error.message().trim().to_owned())
        })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |value: &str| {
            let candidate = PathBuf::from(value);
            if candidate.is_absolute() {
                candidate
            } else {
                base_dir.join(candidate)
            }
        };

        let project = raw.project.name.get_ref().clone();
        let version = raw.project.version.get_ref().clone();
        if version.is_empty() || version.eq_ignore_ascii_case("latest") {
            return Err(config_error(
                Some(raw.project.version.span()),
                "project.version",
                "a release needs a pinned version; `latest` and empty versions are refused".into(),
            ));
        }
        let architectures = raw.project.architectures.get_ref().clone();
        if architectures.is_empty() {
            return Err(config_error(
                Some(raw.project.architectures.span()),
                "project.architectures",
                "name at least one architecture (e.g. [\"amd64\"]); image tags carry it".into(),
            ));
        }
        for architecture in &architectures {
            if !KNOWN_ARCHITECTURES.contains(&architecture.as_str()) {
                return Err(config_error(
                    Some(raw.project.architectures.span()),
                    "project.architectures",
                    format!(
                        "unknown architecture {architecture:?}; expected one of {}",
                        KNOWN_ARCHITECTURES.join(", ")
                    ),
                ));
            }
            let name = format!(
                "{}/{}:{}-{}",
                raw.project.registry.get_ref(),
                project,
                version,
                architecture
            );
            Reference::parse(&name).map_err(|error| {
                config_error(
                    Some(raw.project.name.span()),
                    "project",
                    format!("the image name {name:?} is not valid: {error}"),
                )
            })?;
        }

        let source = match &raw.build.dockerfile {
            Some(dockerfile) => {
                let assembly_sections = [
                    raw.base.as_ref().map(|section| (section.span(), "base")),
                    raw.user.as_ref().map(|section| (section.span(), "user")),
                    raw.files.first().map(|section| (section.span(), "files")),
                    raw.config
                        .as_ref()
                        .map(|section| (section.span(), "config")),
                ];
                if let Some((span, key)) = assembly_sections.into_iter().flatten().next() {
                    return Err(config_error(
                        Some(span),
                        key,
                        format!(
                            "[{key}] is for native assembly; with build.dockerfile the Dockerfile says what the image is"
                        ),
                    ));
                }
                BuildSource::Dockerfile(
                    parse_dockerfile_plan(&raw.build, dockerfile, &resolve, &architectures)
                        .map_err(|failure| match failure {
                            DockerfileFailure::Config(span, key, message) => {
                                config_error(Some(span), key, message)
                            }
                            DockerfileFailure::Build(error) => Error::Build(error),
                        })?,
                )
            }
            None => {
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
                    return Err(config_error(
                        Some(span),
                        key,
                        "only applies to Dockerfile builds (set build.dockerfile)".into(),
                    ));
                }
                let Some(base_section) = raw.base.as_ref().map(Spanned::get_ref) else {
                    return Err(config_error(
                        None,
                        "base",
                        "say how to make the image: a base to assemble on ([base] image = \"oci:DIR:TAG@sha256:…\") or a Dockerfile ([build] dockerfile = \"Dockerfile\")".into(),
                    ));
                };
                let base =
                    parse_base(base_section.image.get_ref(), &resolve).map_err(|message| {
                        config_error(Some(base_section.image.span()), "base.image", message)
                    })?;

                let user = match raw.user.as_ref().map(Spanned::get_ref) {
                    None => None,
                    Some(user) => {
                        if *user.uid.get_ref() == 0 {
                            return Err(config_error(
                                Some(user.uid.span()),
                                "user.uid",
                                "the image user must not be root (uid 0)".into(),
                            ));
                        }
                        let name = user.name.get_ref().clone();
                        Some(UserSpec {
                            uid: *user.uid.get_ref(),
                            gid: user.gid.unwrap_or(*user.uid.get_ref()),
                            home: user.home.clone().unwrap_or_else(|| format!("/home/{name}")),
                            shell: user
                                .shell
                                .clone()
                                .unwrap_or_else(|| "/usr/sbin/nologin".into()),
                            name,
                        })
                    }
                };

                let mut files = Vec::new();
                for file in raw.files.iter().map(Spanned::get_ref) {
                    let source = resolve(file.source.get_ref());
                    if !source.exists() {
                        return Err(config_error(
                            Some(file.source.span()),
                            "files.source",
                            format!("{} does not exist", source.display()),
                        ));
                    }
                    if !file.destination.get_ref().starts_with('/') {
                        return Err(config_error(
                            Some(file.destination.span()),
                            "files.destination",
                            "must be an absolute path in the image".into(),
                        ));
                    }
                    let mode = match &file.mode {
                        None => None,
                        Some(mode) => Some(
                            u32::from_str_radix(mode.get_ref().trim_start_matches("0o"), 8)
                                .ok()
                                .filter(|mode| *mode <= 0o7777)
                                .ok_or_else(|| {
                                    config_error(
                                        Some(mode.span()),
                                        "files.mode",
                                        format!(
                                            "{:?} is not an octal mode such as \"0755\"",
                                            mode.get_ref()
                                        ),
                                    )
                                })?,
                        ),
                    };
                    let (uid, gid) = match &file.owner {
                        None => (0, 0),
                        Some(owner) => {
                            parse_owner(owner.get_ref(), user.as_ref()).ok_or_else(|| {
                                config_error(
                                    Some(owner.span()),
                                    "files.owner",
                                    format!(
                                        "{:?} is not UID:GID or the name of [user]",
                                        owner.get_ref()
                                    ),
                                )
                            })?
                        }
                    };
                    files.push(FileCopy {
                        source,
                        destination: file.destination.get_ref().clone(),
                        mode,
                        directory_mode: None,
                        uid,
                        gid,
                    });
                }

                let default_runtime = RawRuntime::default();
                let runtime = raw
                    .config
                    .as_ref()
                    .map_or(&default_runtime, Spanned::get_ref);
                if let Some(ports) = &runtime.exposed_ports {
                    for port in ports {
                        let (number, protocol) = port
                            .get_ref()
                            .split_once('/')
                            .unwrap_or((port.get_ref(), "tcp"));
                        if number.parse::<u16>().is_err()
                            || !matches!(protocol, "tcp" | "udp" | "sctp")
                        {
                            return Err(config_error(
                                Some(port.span()),
                                "config.exposed_ports",
                                format!("{:?} is not PORT[/tcp|udp|sctp]", port.get_ref()),
                            ));
                        }
                    }
                }
                let runtime_user = runtime
                    .user
                    .as_ref()
                    .map(|user| user.get_ref().clone())
                    .or_else(|| user.as_ref().map(|user| user.name.clone()));
                if let Some(configured) = &runtime.user {
                    let name = configured.get_ref().split(':').next().unwrap_or("");
                    if name.is_empty() || name == "root" || name == "0" {
                        return Err(config_error(
                            Some(configured.span()),
                            "config.user",
                            "the image must run as a non-root user".into(),
                        ));
                    }
                }
                let runtime = RuntimeConfig {
                    user: runtime_user,
                    exposed_ports: runtime.exposed_ports.as_ref().map(|ports| {
                        ports
                            .iter()
                            .map(|port| {
                                if port.get_ref().contains('/') {
                                    port.get_ref().clone()
                                } else {
                                    format!("{}/tcp", port.get_ref())
                                }
                            })
                            .collect()
                    }),
                    env: runtime.env.as_ref().map(|env| {
                        env.iter()
                            .map(|(key, value)| format!("{key}={value}"))
                            .collect()
                    }),
                    entrypoint: runtime.entrypoint.clone(),
                    cmd: runtime.cmd.clone(),
                    volumes: runtime.volumes.clone(),
                    working_dir: runtime.workdir.clone(),
                    labels: runtime.labels.clone(),
                    stop_signal: runtime.stop_signal.clone(),
                };
                BuildSource::Assembly(AssemblyPlan {
                    base,
                    files,
                    user,
                    runtime,
                })
            }
        };
        let harden = raw
            .harden
            .as_ref()
            .filter(|section| section.enabled)
            .map(|section| HardenPlan {
                remove_shells: section.remove_shells,
                remove_packages: section.remove_packages.clone(),
                keep: section.keep.clone(),
                keep_copyright: section.keep_copyright,
            });

        let compression = match raw
            .build
            .compression
            .as_ref()
            .map(|value| (value.get_ref().as_str(), value.span()))
        {
            None | Some(("gzip", _)) => Compression::Gzip,
            Some(("zstd", _)) => Compression::Zstd,
            Some(("none", _)) => Compression::None,
            Some((other, span)) => {
                return Err(config_error(
                    Some(span),
                    "build.compression",
                    format!("{other:?} is not gzip, zstd or none"),
                ));
            }
        };
        let source_date_epoch = inputs
            .source_date_epoch
            .or(raw.build.source_date_epoch)
            .unwrap_or(0);
        let registry = raw
            .project
            .registry
            .get_ref()
            .trim_end_matches('/')
            .to_owned();
        let scan = match &raw.scan {
            None => None,
            Some(scan) => {
                let db = resolve(scan.db.get_ref());
                if !db.is_dir() {
                    return Err(config_error(
                        Some(scan.db.span()),
                        "scan.db",
                        format!(
                            "{} is not a directory; create a database with `sealcraft db import`",
                            db.display()
                        ),
                    ));
                }
                let mut fail_on = Vec::new();
                match &scan.fail_on {
                    None => fail_on.extend([
                        sealcraft_vuln::severity::Severity::High,
                        sealcraft_vuln::severity::Severity::Critical,
                    ]),
                    Some(levels) => {
                        for level in levels.get_ref() {
                            let parsed = sealcraft_vuln::severity::Severity::parse(level).ok_or_else(|| config_error(Some(levels.span()), "scan.fail_on", format!("{level:?} is not UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL")))?;
                            fail_on.push(parsed);
                        }
                    }
                }
                Some(ScanPlan {
                    db,
                    fail_on,
                    ignore_unfixed: scan.ignore_unfixed,
                })
            }
        };
        let upload = raw
            .upload
            .as_ref()
            .map(|upload| upload_plan(upload, &config_error, &resolve))
            .transpose()?;
        let mut sinks = Vec::new();
        for sink in &raw.sinks {
            let kind = sink.kind.get_ref().clone();
            let missing = |field: &str| {
                config_error(
                    Some(sink.kind.span()),
                    "sinks",
                    format!("a {kind} sink needs `{field}`"),
                )
            };
            match kind.as_str() {
                "file" if sink.path.is_none() => return Err(missing("path")),
                "syslog" if sink.address.is_none() => return Err(missing("address")),
                "loki" | "webhook" if sink.url.is_none() => return Err(missing("url")),
                "file" | "stdout" | "syslog" | "loki" | "webhook" => {}
                _ => {
                    return Err(config_error(
                        Some(sink.kind.span()),
                        "sinks.type",
                        format!("{kind:?} is not file, stdout, syslog, loki or webhook"),
                    ));
                }
            }
            if let Some(reference) = &sink.authorization
                && sealcraft_secrets::SecretRef::parse(reference.get_ref()).is_err()
            {
                return Err(config_error(
                    Some(reference.span()),
                    "sinks.authorization",
                    "must be a secret reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD)"
                        .into(),
                ));
            }
            sinks.push(SinkPlan {
                kind,
                path: sink.path.as_deref().map(&resolve),
                address: sink.address.clone(),
                url: sink.url.clone(),
                labels: sink.labels.clone(),
                authorization: sink
                    .authorization
                    .as_ref()
                    .map(|reference| reference.get_ref().clone()),
                required: sink.required,
            });
        }
        let publish = match &raw.publish {
            None => None,
            Some(publish) => Some(
                parse_publish(publish, &registry, &project, &resolve)
                    .map_err(|(span, key, message)| config_error(Some(span), key, message))?,
            ),
        };

        Ok(Self {
            config_path: path.to_path_buf(),
            config_digest: sealcraft_oci::digest::sha256_of(text.as_bytes()).to_string(),
            project,
            version,
            registry,
            architectures,
            source,
            harden,
            squash: raw.squash.enabled,
            output_dir: resolve(raw.output.dir.as_deref().unwrap_or("out")),
            source_date_epoch,
            compression,
            publish,
            scan,
            upload,
            sinks,
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

fn parse_base(
    text: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<BaseImage, String> {
    let (name, digest) = text.rsplit_once('@').ok_or_else(|| {
        format!(
            "{text:?} is not pinned: base images are named with a digest, e.g. oci:DIR:TAG@sha256:…"
        )
    })?;
    let digest = parse_digest(digest).map_err(|error| error.to_string())?;
    match ImageName::parse(name).map_err(|error| error.to_string())? {
        ImageName::Layout { path, tag } => Ok(BaseImage {
            layout: resolve(&path.to_string_lossy()),
            tag,
            digest,
            display_name: name.to_owned(),
        }),
        other => Err(format!(
            "{other} is not supported as a base yet; import it into an OCI layout with `sealcraft image import` and name it oci:DIR:TAG@DIGEST"
        )),
    }
}

type SpannedError = (std::ops::Range<usize>, &'static str, String);

/// Why `[build]` for a Dockerfile is refused: a key of sealcraft.toml, or the Dockerfile itself.
enum DockerfileFailure {
    Config(std::ops::Range<usize>, &'static str, String),
    Build(sealcraft_build::Error),
}

/// Validates the Dockerfile build: the file parses, the target exists, and
/// (unless turned off) every base image it would use is pinned by digest.
fn parse_dockerfile_plan(
    raw: &RawBuild,
    dockerfile: &Spanned<String>,
    resolve: &dyn Fn(&str) -> PathBuf,
    architectures: &[String],
) -> std::result::Result<DockerfilePlan, DockerfileFailure> {
    let config = |span: std::ops::Range<usize>, key: &'static str, message: String| {
        DockerfileFailure::Config(span, key, message)
    };
    let path = resolve(dockerfile.get_ref());
    let bytes = std::fs::read(&path).map_err(|error| {
        config(
            dockerfile.span(),
            "build.dockerfile",
            format!("{}: {error}", path.display()),
        )
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| {
        config(
            dockerfile.span(),
            "build.dockerfile",
            format!("{} is not UTF-8 text", path.display()),
        )
    })?;
    let parsed = sealcraft_build::dockerfile::parse(&text).map_err(|error| {
        DockerfileFailure::Build(sealcraft_build::Error::Dockerfile {
            path: path.clone(),
            line: error.line,
            message: error.message,
        })
    })?;
    let context = match &raw.context {
        Some(context) => resolve(context.get_ref()),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    if !context.is_dir() {
        let span = raw
            .context
            .as_ref()
            .map_or(dockerfile.span(), Spanned::span);
        return Err(config(
            span,
            "build.context",
            format!("{} is not a directory", context.display()),
        ));
    }
    let mut bases = BTreeMap::new();
    for (name, image) in &raw.bases {
        let image_text = image.get_ref();
        let mapped = match image_text.strip_prefix("oci:") {
            Some(rest) if !rest.starts_with('/') => {
                let path = std::path::absolute(resolve(rest)).unwrap_or_else(|_| resolve(rest));
                format!("oci:{}", path.display())
            }
            _ => image_text.clone(),
        };
        bases.insert(name.clone(), mapped);
    }
    let require_pinned = raw.require_pinned.unwrap_or(true);
    for architecture in architectures {
        let images = sealcraft_build::external_images(
            &parsed,
            &path,
            raw.target.as_deref(),
            &raw.args,
            architecture,
        )
        .map_err(DockerfileFailure::Build)?;
        for image in images {
            let name = bases.get(&image.name).unwrap_or(&image.name);
            let pinned = name
                .rsplit_once('@')
                .is_some_and(|(_, digest)| parse_digest(digest).is_ok());
            if require_pinned && !pinned {
                return Err(DockerfileFailure::Build(sealcraft_build::Error::At {
                    path: path.clone(),
                    line: image.line,
                    source: Box::new(sealcraft_build::Error::NotPinned { name: name.clone() }),
                }));
            }
        }
    }
    let mut secrets = Vec::new();
    for secret in &raw.secrets {
        if sealcraft_secrets::SecretRef::parse(secret.source.get_ref()).is_err() {
            return Err(config(
                secret.source.span(),
                "build.secrets.source",
                "must be a secret reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD)".into(),
            ));
        }
        secrets.push((secret.id.get_ref().clone(), secret.source.get_ref().clone()));
    }
    let network_none = match raw
        .network
        .as_ref()
        .map(|value| (value.get_ref().as_str(), value.span()))
    {
        None | Some(("default" | "host", _)) => false,
        Some(("none", _)) => true,
        Some((other, span)) => {
            return Err(config(
                span,
                "build.network",
                format!("{other:?} is not default or none"),
            ));
        }
    };
    let runtime = match &raw.runtime {
        None => sealcraft_build::RuntimeKind::Runc,
        Some(value) => {
            sealcraft_build::RuntimeKind::from_name(value.get_ref()).ok_or_else(|| {
                config(
                    value.span(),
                    "build.runtime",
                    format!("{:?} is not runc or crun", value.get_ref()),
                )
            })?
        }
    };
    Ok(DockerfilePlan {
        digest: sealcraft_oci::digest::sha256_of(&bytes).to_string(),
        path,
        dockerfile: parsed,
        context,
        target: raw.target.clone(),
        args: raw.args.clone(),
        bases,
        secrets,
        require_pinned,
        network_none,
        runtime,
        cache_dir: raw.cache_dir.as_deref().map(resolve),
    })
}

fn parse_publish(
    raw: &RawPublish,
    registry: &str,
    project: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<PublishPlan, SpannedError> {
    let key = SigningKey::classify(raw.key.get_ref(), resolve);
    let key_problem = match &key {
        SigningKey::Transit(text) => sealcraft_secrets::TransitKey::parse(text)
            .is_none()
            .then(|| "expected vault-transit:KEY or vault-transit:MOUNT/KEY".to_owned()),
        SigningKey::Vault(text) => sealcraft_secrets::SecretRef::parse(text)
            .err()
            .map(|error| error.to_string()),
        SigningKey::File(path) => {
            (!path.is_file()).then(|| format!("{} does not exist", path.display()))
        }
    };
    if let Some(message) = key_problem {
        return Err((raw.key.span(), "publish.key", message));
    }
    for (reference, key_name) in [
        (&raw.key_password, "publish.key_password"),
        (&raw.password, "publish.password"),
    ] {
        if let Some(reference) = reference
            && sealcraft_secrets::SecretRef::parse(reference.get_ref()).is_err()
        {
            return Err((
                reference.span(),
                key_name,
                "must be a secret reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD), never the secret itself"
                    .into(),
            ));
        }
    }
    if raw.password.is_some() && raw.username.is_none() {
        return Err((
            raw.password.as_ref().map_or(raw.key.span(), Spanned::span),
            "publish.password",
            "a password needs a username".into(),
        ));
    }
    let target = match raw
        .target
        .as_ref()
        .map(|target| (target.get_ref().as_str(), target.span()))
    {
        None | Some(("registry", _)) => {
            let (host, namespace) = registry
                .split_once('/')
                .map_or((registry, ""), |(host, rest)| (host, rest));
            let repository = if namespace.is_empty() {
                project.to_owned()
            } else {
                format!("{namespace}/{project}")
            };
            PublishTarget::Registry {
                registry: host.to_owned(),
                repository,
            }
        }
        Some((other, span)) => match other.strip_prefix("oci:") {
            Some(path) if !path.is_empty() => PublishTarget::Layout(resolve(path)),
            _ => {
                return Err((
                    span,
                    "publish.target",
                    format!("{other:?} is not \"registry\" or oci:DIR"),
                ));
            }
        },
    };
    let ca_bundle = match &raw.ca_bundle {
        None => None,
        Some(path) => {
            let resolved = resolve(path.get_ref());
            if !resolved.is_file() {
                return Err((
                    path.span(),
                    "publish.ca_bundle",
                    format!("{} does not exist", resolved.display()),
                ));
            }
            Some(resolved)
        }
    };
    Ok(PublishPlan {
        target,
        key,
        key_password: raw
            .key_password
            .as_ref()
            .map(|reference| reference.get_ref().clone()),
        allow_http: raw.allow_http.clone(),
        ca_bundle,
        username: raw.username.clone(),
        password: raw
            .password
            .as_ref()
            .map(|reference| reference.get_ref().clone()),
        annotations: raw.annotations.clone(),
        provenance_v02: match raw
            .provenance
            .as_ref()
            .map(|value| (value.get_ref().as_str(), value.span()))
        {
            None | Some(("v1", _)) => false,
            Some(("v0.2", _)) => true,
            Some((other, span)) => {
                return Err((
                    span,
                    "publish.provenance",
                    format!("{other:?} is not \"v1\" or \"v0.2\""),
                ));
            }
        },
    })
}

fn parse_owner(text: &str, user: Option<&UserSpec>) -> Option<(u32, u32)> {
    if let Some(user) = user
        && text == user.name
    {
        return Some((user.uid, user.gid));
    }
    let (uid, gid) = text.split_once(':').unwrap_or((text, text));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |index| index + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn config(version: &str, architectures: &str, base: &str) -> String {
        format!(
            "[project]\nname = \"hello\"\nversion = \"{version}\"\nregistry = \"registry.example.com/team\"\narchitectures = {architectures}\n\n[base]\nimage = \"{base}\"\n"
        )
    }

    fn parse(text: &str) -> Result<Plan> {
        Plan::parse(
            text,
            Path::new("/project/sealcraft.toml"),
            &PlanInputs::default(),
        )
    }

    #[test]
    fn a_valid_config_becomes_a_plan() {
        let plan = parse(&config(
            "1.2.3",
            "[\"amd64\"]",
            &format!("oci:base:bookworm@{DIGEST}"),
        ))
        .unwrap();
        assert_eq!(
            plan.image_name("amd64"),
            "registry.example.com/team/hello:1.2.3-amd64"
        );
        assert_eq!(
            plan.run_dir("amd64"),
            PathBuf::from("/project/out/hello-1.2.3-amd64")
        );
        let BuildSource::Assembly(assembly) = &plan.source else {
            panic!("an assembly plan expected");
        };
        assert_eq!(assembly.base.layout, PathBuf::from("/project/base"));
        assert_eq!(assembly.base.tag.as_deref(), Some("bookworm"));
        assert!(plan.squash);
    }

    fn error_of(text: &str) -> (usize, String) {
        match parse(text).unwrap_err() {
            Error::Config {
                line, key, message, ..
            } => (line, format!("{key}: {message}")),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn bad_configs_point_at_the_line_and_key() {
        let pinned = format!("oci:base:bookworm@{DIGEST}");
        let (line, message) = error_of(&config("latest", "[\"amd64\"]", &pinned));
        assert_eq!(line, 3, "{message}");
        assert!(message.contains("project.version"), "{message}");

        let (line, message) = error_of(&config("1.0", "[]", &pinned));
        assert_eq!(line, 5, "{message}");

        let (line, message) = error_of(&config("1.0", "[\"amd64\"]", "oci:base:bookworm"));
        assert_eq!(line, 8, "{message}");
        assert!(message.contains("not pinned"), "{message}");

        let (line, message) = error_of(&format!(
            "{}\n[user]\nname = \"app\"\nuid = 0\n",
            config("1.0", "[\"amd64\"]", &pinned)
        ));
        assert_eq!(line, 12, "{message}");

        let (line, message) = error_of(&format!(
            "{}\n[[files]]\nsource = \"/nonexistent/x\"\ndestination = \"/x\"\n",
            config("1.0", "[\"amd64\"]", &pinned)
        ));
        assert_eq!(line, 11, "{message}");

        let (line, message) = error_of(&format!(
            "{}unknown_key = 1\n",
            config("1.0", "[\"amd64\"]", &pinned)
        ));
        assert_eq!(line, 9, "{message}");
    }

    #[test]
    fn a_signing_key_can_live_in_the_vault() {
        let pinned = format!("oci:base:bookworm@{DIGEST}");
        let with_key = |key: &str| {
            format!(
                "{}\n[publish]\nkey = \"{key}\"\ntarget = \"oci:/project/published\"\n",
                config("1.0", "[\"amd64\"]", &pinned)
            )
        };
        let plan = parse(&with_key("vault-transit:release")).unwrap();
        assert_eq!(
            plan.publish.unwrap().key,
            SigningKey::Transit("vault-transit:release".into())
        );
        let (line, message) = error_of(&with_key("vault-transit:"));
        assert_eq!(line, 11, "{message}");
        let plan = parse(&with_key("vault:secret/release/cosign#key")).unwrap();
        assert_eq!(
            plan.publish.unwrap().key,
            SigningKey::Vault("vault:secret/release/cosign#key".into())
        );
        // A reference without a field is rejected where it is written.
        let (line, message) = error_of(&with_key("vault:secret/release/cosign"));
        assert_eq!(line, 11, "{message}");
        assert!(message.starts_with("publish.key"), "{message}");
        // Anything else is a file, and it must exist.
        let (line, message) = error_of(&with_key("keys/cosign.key"));
        assert_eq!(line, 11, "{message}");
        assert!(message.contains("does not exist"), "{message}");
    }

    /// A project with a Dockerfile in a temporary directory; `build` is the rest of `[build]`.
    #[test]
    fn upload_credentials_belong_to_their_store() {
        let base = config("1.0", "[\"amd64\"]", &format!("oci:base:bookworm@{DIGEST}"));
        let upload = |section: &str| format!("{base}\n[upload]\n{section}");
        let plan = parse(&upload(
            "url = \"az://releases/app\"\nendpoint = \"https://acct.blob.example\"\naccount = \"acct\"\naccess_key = \"vault:secret/azure#key\"\n",
        ))
        .unwrap();
        assert_eq!(
            plan.upload.unwrap().credentials,
            UploadCredentials::Azure {
                account: "acct".into(),
                access_key: "vault:secret/azure#key".into()
            }
        );
        let plan = parse(&upload(
            "url = \"gs://releases/app\"\nservice_account_key = \"file:/run/gcs.json\"\n",
        ))
        .unwrap();
        assert_eq!(
            plan.upload.unwrap().credentials,
            UploadCredentials::Gcs {
                service_account_key: "file:/run/gcs.json".into()
            }
        );
        let plan = parse(&upload("url = \"s3://releases/app\"\n")).unwrap();
        assert_eq!(plan.upload.unwrap().credentials, UploadCredentials::Ambient);

        // Line 11 is the first setting of [upload].
        let (line, message) = error_of(&upload(
            "url = \"gs://releases/app\"\naccess_key_id = \"env:KEY\"\nsecret_access_key = \"env:SECRET\"\n",
        ));
        assert_eq!(line, 12, "{message}");
        assert_eq!(
            message,
            "upload.access_key_id: `access_key_id` is for s3:// stores, and the URL is gs://"
        );
        let (line, message) = error_of(&upload("url = \"az://c/p\"\naccount = \"acct\"\n"));
        assert_eq!(line, 12, "{message}");
        assert_eq!(message, "upload: `account` and `access_key` go together");
        let (_, message) = error_of(&upload(
            "url = \"az://c/p\"\naccount = \"acct\"\naccess_key = \"Eby8vdM02xNOcqFl==\"\n",
        ));
        assert!(message.contains("must be secret references"), "{message}");
        assert!(!message.contains("Eby8vdM02xNOcqFl"), "{message}");
        let (_, message) = error_of(&upload("url = \"file:///srv\"\nregion = \"eu\"\n"));
        assert_eq!(
            message,
            "upload: a file:// store takes no endpoint or region"
        );
        let (_, message) = error_of(&upload("url = \"ftp://host/dir\"\n"));
        assert!(
            message.starts_with("upload.url: \"ftp://host/dir\" is not"),
            "{message}"
        );
    }

    fn dockerfile_project(
        dockerfile: &str,
        build: &str,
        extra: &str,
    ) -> (tempfile::TempDir, Result<Plan>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let text = format!(
            "[project]\nname = \"app\"\nversion = \"1.0\"\nregistry = \"registry.example.com/team\"\narchitectures = [\"amd64\"]\n\n[build]\ndockerfile = \"Dockerfile\"\n{build}\n{extra}"
        );
        let path = dir.path().join("sealcraft.toml");
        let plan = Plan::parse(&text, &path, &PlanInputs::default());
        (dir, plan)
    }

    #[test]
    fn a_dockerfile_build_is_pinned_through_its_base_mappings() {
        let dockerfile = "ARG BASE=debian:bookworm\nFROM ${BASE} AS builder\nFROM scratch\nCOPY --from=builder /x /x\n";
        let mapping =
            format!("[build.bases]\n\"debian:bookworm\" = \"oci:base:bookworm@{DIGEST}\"\n");
        let (_, plan) = dockerfile_project(dockerfile, "", &mapping);
        let plan = plan.unwrap();
        let BuildSource::Dockerfile(build) = &plan.source else {
            panic!("a Dockerfile plan expected");
        };
        assert!(build.require_pinned);
        let mapped = &build.bases["debian:bookworm"];
        assert!(
            mapped.starts_with("oci:/") && mapped.ends_with(&format!("base:bookworm@{DIGEST}")),
            "{mapped}"
        );
        assert!(build.digest.starts_with("sha256:"));
        assert!(plan.summary().dockerfile.is_some() && plan.summary().base_image.is_none());
        // Without the mapping the FROM is not pinned: refused at its line, before anything runs.
        let (_, plan) = dockerfile_project(dockerfile, "", "");
        match plan.unwrap_err() {
            Error::Build(sealcraft_build::Error::At { line, source, .. }) => {
                assert_eq!(line, 2);
                assert!(
                    matches!(*source, sealcraft_build::Error::NotPinned { .. }),
                    "{source}"
                );
            }
            other => panic!("unexpected {other}"),
        }
        // Unless pins are explicitly not required.
        let (_, plan) = dockerfile_project(dockerfile, "require_pinned = false", "");
        assert!(plan.is_ok());
        // A broken Dockerfile is refused with its own line.
        let (_, plan) = dockerfile_project("FROM scratch\nBOGUS x\n", "", "");
        assert!(matches!(
            plan.unwrap_err(),
            Error::Build(sealcraft_build::Error::Dockerfile { line: 2, .. })
        ));
    }

    #[test]
    fn dockerfile_and_assembly_settings_do_not_mix() {
        let dockerfile = format!("FROM debian@{DIGEST}\n");
        let config_error = |plan: Result<Plan>| match plan.unwrap_err() {
            Error::Config {
                line, key, message, ..
            } => (line, format!("{key}: {message}")),
            other => panic!("unexpected {other}"),
        };
        let (_, plan) = dockerfile_project(
            &dockerfile,
            "",
            &format!("[base]\nimage = \"oci:base:x@{DIGEST}\"\n"),
        );
        let (line, message) = config_error(plan);
        assert_eq!(line, 10, "{message}");
        assert!(
            message.starts_with("base: [base] is for native assembly"),
            "{message}"
        );
        let (_, plan) = dockerfile_project(&dockerfile, "network = \"bridge\"", "");
        assert!(config_error(plan).1.starts_with("build.network"));
        let (_, plan) = dockerfile_project(&dockerfile, "runtime = \"youki\"", "");
        assert!(config_error(plan).1.starts_with("build.runtime"));
        let (_, plan) = dockerfile_project(
            &dockerfile,
            "[[build.secrets]]\nid = \"npm\"\nsource = \"s3cr3t\"",
            "",
        );
        assert!(config_error(plan).1.starts_with("build.secrets.source"));
        // Dockerfile settings without a Dockerfile.
        let text = format!(
            "{}\n[build]\ncontext = \".\"\n",
            config("1.0", "[\"amd64\"]", &format!("oci:base:bookworm@{DIGEST}"))
        );
        let (line, message) = error_of(&text);
        assert_eq!(line, 11, "{message}");
        assert!(
            message.contains("only applies to Dockerfile builds"),
            "{message}"
        );
        // Neither a base nor a Dockerfile.
        let (_, message) = error_of(
            "[project]\nname = \"x\"\nversion = \"1\"\nregistry = \"r.example.com/t\"\narchitectures = [\"amd64\"]\n",
        );
        assert!(message.contains("a Dockerfile"), "{message}");
    }
}
