//! Inputs from the environment, read once here and passed down as data:
//! this is the only module of the program that reads environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sealcraft_oci::image::ImageName;
use sealcraft_oci::layout::Layout;
use sealcraft_pipeline::plan::SigningKey;
use sealcraft_secrets::Secret;

/// `SOURCE_DATE_EPOCH`, if set.
pub(crate) fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.is_empty() => {
            let seconds: i64 = value.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")
            })?;
            if seconds < 0 {
                bail!("SOURCE_DATE_EPOCH={value:?} is before 1970");
            }
            Ok(Some(seconds))
        }
        _ => Ok(None),
    }
}

/// An `oci:DIR[:TAG]` name, opened.
pub(crate) fn open_layout_image(name: &str) -> Result<(Layout, Option<String>)> {
    match ImageName::parse(name)? {
        ImageName::Layout { path, tag } => Ok((
            Layout::open(&path).with_context(|| format!("opening {name}"))?,
            tag,
        )),
        other => bail!(
            "{other}: this command reads images from OCI layouts (oci:DIR[:TAG]); import others with `sealcraft image import`"
        ),
    }
}

/// An `oci:DIR:TAG` destination, created if missing.
pub(crate) fn output_layout(name: &str) -> Result<(Layout, String)> {
    match ImageName::parse(name)? {
        ImageName::Layout {
            path,
            tag: Some(tag),
        } => {
            sealcraft_oci::reference::Reference::parse(&format!("localhost/x:{tag}"))
                .with_context(|| format!("{tag:?} is not a valid tag"))?;
            Ok((
                Layout::open_or_create(&path).with_context(|| format!("opening {name}"))?,
                tag,
            ))
        }
        ImageName::Layout { tag: None, .. } => {
            bail!("{name}: name the output with a tag, oci:DIR:TAG")
        }
        other => bail!("{other}: outputs are OCI layouts (oci:DIR:TAG)"),
    }
}

/// The private key password: `--password-from REF`, else `COSIGN_PASSWORD`
/// (set but empty is a valid, empty password, as in cosign), else asked for
/// on the terminal when there is one.
pub(crate) fn key_password(password_from: Option<&str>) -> Result<Secret> {
    password(password_from, false)
}

/// The password for a new key: as [`key_password`], but asked for twice on
/// a terminal, and the two must agree.
pub(crate) fn new_key_password(password_from: Option<&str>) -> Result<Secret> {
    password(password_from, true)
}

fn password(password_from: Option<&str>, confirm: bool) -> Result<Secret> {
    if let Some(reference) = password_from {
        return resolve_secret(reference);
    }
    if let Ok(value) = std::env::var("COSIGN_PASSWORD") {
        return Ok(Secret::new(value));
    }
    if !crate::output::can_prompt() {
        bail!(
            "no key password: set COSIGN_PASSWORD or pass --password-from env:NAME|file:PATH|vault:MOUNT/PATH#FIELD"
        );
    }
    let first = crate::output::prompt_password("Enter password for private key: ")
        .context("reading the password from the terminal")?;
    if confirm {
        let again = crate::output::prompt_password("Enter password for private key again: ")
            .context("reading the password from the terminal")?;
        if again.expose() != first.expose() {
            bail!("the two passwords differ; no key was written");
        }
    }
    Ok(first)
}

/// `--build-arg` values: a bare name takes the environment's value, and is
/// left out when the variable is not set (as docker does).
pub(crate) fn build_arg_values(args: &[sealcraft_cli::BuildArg]) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|arg| {
            let value = arg
                .value
                .clone()
                .or_else(|| std::env::var(&arg.name).ok())?;
            Some((arg.name.clone(), value))
        })
        .collect()
}

/// The default build store: `$XDG_CACHE_HOME/sealcraft/build` or `~/.cache/sealcraft/build`.
pub(crate) fn default_store() -> Result<PathBuf> {
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty()) {
        return Ok(Path::new(&cache).join("sealcraft/build"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir")?;
    Ok(Path::new(&home).join(".cache/sealcraft/build"))
}

/// The object-store provider settings of the environment (`AWS_*`,
/// `GOOGLE_*`, `AZURE_*`, …), for uploads with ambient credentials.
pub(crate) fn provider_environment() -> Vec<(String, Secret)> {
    std::env::vars()
        .filter(|(name, _)| sealcraft_store::provider_variable(name))
        .map(|(name, value)| (name, Secret::new(value)))
        .collect()
}

/// Provenance facts: from the GitHub Actions environment when running there,
/// otherwise from the git checkout holding the config file.
pub(crate) fn builder_context(config_path: &Path) -> sealcraft_pipeline::run::BuilderContext {
    use sealcraft_pipeline::run::BuilderContext;
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let mut internal = BTreeMap::new();
    if variable("GITHUB_ACTIONS").as_deref() == Some("true")
        && let (Some(server), Some(repository)) =
            (variable("GITHUB_SERVER_URL"), variable("GITHUB_REPOSITORY"))
    {
        for (key, name) in [
            ("githubRunId", "GITHUB_RUN_ID"),
            ("githubRunAttempt", "GITHUB_RUN_ATTEMPT"),
            ("runnerEnvironment", "RUNNER_ENVIRONMENT"),
        ] {
            if let Some(value) = variable(name) {
                internal.insert(key.to_owned(), serde_json::Value::String(value));
            }
        }
        let builder_id = variable("GITHUB_WORKFLOW_REF").map_or_else(
            || format!("{server}/{repository}"),
            |workflow| format!("{server}/{workflow}"),
        );
        return BuilderContext {
            source: sealcraft_attest::SourceInfo {
                repository: Some(format!("git+{server}/{repository}")),
                git_ref: variable("GITHUB_REF"),
                commit: variable("GITHUB_SHA"),
            },
            builder_id,
            internal,
        };
    }
    let directory = config_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let git = |args: &[&str]| -> Option<String> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(directory)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    // A remote URL may carry credentials (https://user:token@host/…): keep only scheme, host and path.
    let repository = git(&["remote", "get-url", "origin"]).map(|url| match url.split_once("://") {
        Some((scheme, rest)) => format!(
            "git+{scheme}://{}",
            rest.rsplit_once('@').map_or(rest, |(_, host)| host)
        ),
        None => format!("git+{url}"),
    });
    BuilderContext {
        source: sealcraft_attest::SourceInfo {
            repository,
            git_ref: git(&["symbolic-ref", "-q", "HEAD"]),
            commit: git(&["rev-parse", "HEAD"]),
        },
        builder_id: "https://sealcraft.dev/builders/local/v1".to_owned(),
        internal,
    }
}

/// A `--key` argument: a `vault-transit:` key, a `vault:` reference, else a file.
pub(crate) fn signing_key(argument: &str) -> SigningKey {
    SigningKey::classify(argument, |text| std::path::PathBuf::from(text))
}

/// The signer for `key`: a transit key signs in the vault; anything else is
/// a cosign private key decrypted in memory.
pub(crate) fn load_signer(
    key: &SigningKey,
    password_from: Option<&str>,
) -> Result<Box<dyn sealcraft_sign::keys::Signer>> {
    if let SigningKey::Transit(reference) = key {
        return Ok(Box::new(TransitSigner::connect(reference)?));
    }
    Ok(Box::new(load_private_key(key, password_from)?))
}

/// Signing through a Vault/OpenBao transit key.
struct TransitSigner {
    key: sealcraft_secrets::TransitKey,
    vault: sealcraft_secrets::VaultConfig,
    public: sealcraft_sign::keys::PublicKey,
    reference: String,
}

impl TransitSigner {
    fn connect(reference: &str) -> Result<Self> {
        let Some(key) = sealcraft_secrets::TransitKey::parse(reference) else {
            bail!("{reference}: expected vault-transit:KEY or vault-transit:MOUNT/KEY");
        };
        let Some(vault) = vault_from_env()? else {
            bail!(
                "{reference} needs Vault: set VAULT_ADDR and VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID)"
            );
        };
        let pem = key.public_key_pem(&vault)?;
        let public = sealcraft_sign::keys::PublicKey::from_pem(&pem).with_context(|| {
            format!("{reference}: the transit key must be ecdsa-p256, as cosign keys are")
        })?;
        Ok(Self {
            key,
            vault,
            public,
            reference: reference.to_owned(),
        })
    }
}

impl sealcraft_sign::keys::Signer for TransitSigner {
    fn public_key(&self) -> sealcraft_sign::keys::PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> sealcraft_sign::Result<Vec<u8>> {
        self.key
            .sign(&self.vault, message)
            .map_err(|source| sealcraft_sign::Error::Signer {
                signer: self.reference.clone(),
                source: Box::new(source),
            })
    }
}

/// Reads and decrypts a cosign private key: a file, or a `vault:` reference
/// whose value is the encrypted PEM (the key never touches the disk).
pub(crate) fn load_private_key(
    key: &SigningKey,
    password_from: Option<&str>,
) -> Result<sealcraft_sign::keys::PrivateKey> {
    let (pem, name) = match key {
        SigningKey::Transit(reference) => {
            bail!("{reference} signs in the vault; it has no private key to load")
        }
        SigningKey::Vault(reference) => (
            resolve_secret(reference)
                .with_context(|| format!("reading the private key {reference}"))?,
            reference.clone(),
        ),
        SigningKey::File(path) => (
            Secret::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the private key {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
    };
    let password = key_password(password_from)?;
    sealcraft_sign::keys::PrivateKey::from_encrypted_pem(pem.expose(), &password)
        .with_context(|| format!("loading the private key {name}"))
}

/// Reads a public key file.
pub(crate) fn load_public_key(path: &std::path::Path) -> Result<sealcraft_sign::keys::PublicKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading the public key {}", path.display()))?;
    sealcraft_sign::keys::PublicKey::from_pem(&pem)
        .with_context(|| format!("loading the public key {}", path.display()))
}

/// How to reach one registry, before secrets are resolved.
pub(crate) struct RegistryAccess<'a> {
    pub(crate) registry: &'a str,
    pub(crate) ca_bundle: Option<&'a std::path::Path>,
    pub(crate) allow_http: &'a [String],
    pub(crate) username: Option<&'a str>,
    pub(crate) password_from: Option<&'a str>,
}

/// A registry client: credentials from a secret reference, else `~/.docker/config.json`.
pub(crate) fn registry_client(access: &RegistryAccess<'_>) -> Result<sealcraft_registry::Client> {
    use sealcraft_registry::{Client, ClientConfig, Credentials};
    let ca_bundle = match access.ca_bundle {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the CA bundle {}", path.display()))?,
        ),
        None => None,
    };
    let mut credentials = std::collections::HashMap::new();
    if let Some(username) = access.username {
        let Some(reference) = access.password_from else {
            bail!(
                "a registry user name needs a password reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD)"
            );
        };
        let password = resolve_secret(reference)?;
        credentials.insert(
            access.registry.to_owned(),
            Credentials {
                username: username.to_owned(),
                password,
            },
        );
    } else if let Some(found) = docker_config_credentials(access.registry)? {
        credentials.insert(access.registry.to_owned(), found);
    }
    Ok(Client::new(ClientConfig {
        ca_bundle,
        allow_http: access.allow_http.to_vec(),
        credentials,
        retries: 3,
        chunk_size: 0,
    })?)
}

/// A client for the registries base images come from: credentials from
/// `~/.docker/config.json` for each (or the given user for all of them).
pub(crate) fn base_registry_client(
    registries: &[String],
    ca_bundle: Option<&std::path::Path>,
    allow_http: &[String],
    username: Option<&str>,
    password_from: Option<&str>,
) -> Result<Option<sealcraft_registry::Client>> {
    use sealcraft_registry::{Client, ClientConfig, Credentials};
    if registries.is_empty() {
        return Ok(None);
    }
    let ca_bundle = match ca_bundle {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the CA bundle {}", path.display()))?,
        ),
        None => None,
    };
    let mut credentials = std::collections::HashMap::new();
    for registry in registries {
        match (username, password_from) {
            (Some(username), Some(reference)) => {
                credentials.insert(
                    registry.clone(),
                    Credentials {
                        username: username.to_owned(),
                        password: resolve_secret(reference)?,
                    },
                );
            }
            (Some(_), None) => bail!(
                "a registry user name needs a password reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD)"
            ),
            _ => {
                if let Some(found) = docker_config_credentials(registry)? {
                    credentials.insert(registry.clone(), found);
                }
            }
        }
    }
    Ok(Some(Client::new(ClientConfig {
        ca_bundle,
        allow_http: allow_http.to_vec(),
        credentials,
        retries: 3,
        chunk_size: 0,
    })?))
}

/// Credentials for `registry` in `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
fn docker_config_credentials(registry: &str) -> Result<Option<sealcraft_registry::Credentials>> {
    use base64::Engine as _;
    use sealcraft_secrets::Secret;
    let directory = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".docker"))
        });
    let Some(path) = directory.map(|directory| directory.join("config.json")) else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(entry) = config["auths"].as_object().and_then(|auths| {
        auths
            .iter()
            .find(|(key, _)| {
                key.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    == registry
            })
            .map(|(_, value)| value)
    }) else {
        return Ok(None);
    };
    let Some(encoded) = entry["auth"].as_str() else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .with_context(|| {
            format!(
                "{}: the auth entry for {registry} is not base64",
                path.display()
            )
        })?;
    let decoded = Secret::new(String::from_utf8(decoded).with_context(|| {
        format!(
            "{}: the auth entry for {registry} is not text",
            path.display()
        )
    })?);
    let Some((username, password)) = decoded.expose().split_once(':') else {
        bail!(
            "{}: the auth entry for {registry} is not user:password",
            path.display()
        );
    };
    Ok(Some(sealcraft_registry::Credentials {
        username: username.to_owned(),
        password: Secret::new(password),
    }))
}

/// Vault settings from the environment: `VAULT_ADDR`, `VAULT_CACERT`, and
/// `VAULT_TOKEN` or `VAULT_ROLE_ID` with `VAULT_SECRET_ID`.
fn vault_from_env() -> Result<Option<sealcraft_secrets::VaultConfig>> {
    use sealcraft_secrets::{Secret, VaultAuth, VaultConfig};
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let Some(address) = variable("VAULT_ADDR") else {
        return Ok(None);
    };
    let auth = match (
        variable("VAULT_TOKEN"),
        variable("VAULT_ROLE_ID"),
        variable("VAULT_SECRET_ID"),
    ) {
        (_, Some(role_id), Some(secret_id)) => VaultAuth::AppRole {
            role_id,
            secret_id: Secret::new(secret_id),
        },
        (Some(token), _, _) => VaultAuth::Token(Secret::new(token)),
        _ => bail!(
            "VAULT_ADDR is set but neither VAULT_TOKEN nor VAULT_ROLE_ID and VAULT_SECRET_ID are"
        ),
    };
    let ca_bundle = match variable("VAULT_CACERT") {
        Some(path) => {
            Some(std::fs::read(&path).with_context(|| format!("reading VAULT_CACERT {path}"))?)
        }
        None => None,
    };
    Ok(Some(VaultConfig {
        address,
        ca_bundle,
        auth,
    }))
}

/// Resolves a secret reference (`env:`, `file:` or `vault:`).
pub(crate) fn resolve_secret(reference: &str) -> Result<Secret> {
    let parsed = sealcraft_secrets::SecretRef::parse(reference)?;
    let vault = match parsed {
        sealcraft_secrets::SecretRef::Vault { .. } => vault_from_env()?,
        _ => None,
    };
    Ok(parsed.resolve_with(|name| std::env::var(name).ok(), vault.as_ref())?)
}

/// The default download cache: `$XDG_CACHE_HOME/sealcraft/NAME` or `~/.cache/sealcraft/NAME`.
pub(crate) fn default_cache(name: &str) -> Result<PathBuf> {
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty()) {
        return Ok(Path::new(&cache).join("sealcraft").join(name));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir")?;
    Ok(Path::new(&home).join(".cache/sealcraft").join(name))
}

/// The files of `directory` with one of `extensions`, by name, as apt reads
/// its `.d` directories (none when the directory is missing).
fn files_named(directory: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extensions.iter().any(|wanted| extension == *wanted))
        })
        .collect();
    files.sort();
    files
}

/// This machine's apt keyrings: the files sources name, and apt's defaults.
pub(crate) struct HostKeys;

impl sealcraft_apt::KeyFiles for HostKeys {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    fn defaults(&self) -> Vec<(String, Vec<u8>)> {
        let mut keys = Vec::new();
        if let Ok(bytes) = std::fs::read("/etc/apt/trusted.gpg") {
            keys.push(("/etc/apt/trusted.gpg".to_owned(), bytes));
        }
        for path in files_named(Path::new("/etc/apt/trusted.gpg.d"), &["gpg", "asc"]) {
            if let Ok(bytes) = std::fs::read(&path) {
                keys.push((path.display().to_string(), bytes));
            }
        }
        keys
    }
}

/// This machine's apt sources (`/etc/apt/sources.list`, then
/// `sources.list.d/*.list` and `*.sources` by name); none when it has no apt.
pub(crate) fn host_apt_sources() -> Result<Vec<sealcraft_apt::Source>> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    files.extend(files_named(
        Path::new("/etc/apt/sources.list.d"),
        &["list", "sources"],
    ));
    let mut sources = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", file.display()));
            }
        };
        sources.extend(sealcraft_apt::sources::parse(
            &text,
            &file.display().to_string(),
        )?);
    }
    Ok(sources)
}

/// The host variables a test spec passes into its containers
/// (`containerRunOptions.envVars`); one that is unset is left out.
pub(crate) fn host_variables(names: &[String]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
        .collect()
}
