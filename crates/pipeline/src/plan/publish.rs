//! `[publish]`: where the image goes and how it is signed; secrets appear
//! only as references.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;

use super::Checker;
use super::raw::RawPublish;
use crate::error::Result;

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

pub(super) fn validate(
    raw: &RawPublish,
    registry: &str,
    project: &str,
    check: &Checker<'_>,
) -> Result<PublishPlan> {
    let key = SigningKey::classify(raw.key.get_ref(), |path| check.resolve(path));
    if let SigningKey::Vault(text) = &key
        && let Err(error) = sealcraft_secrets::SecretRef::parse(text)
    {
        return Err(check.error_caused_by(
            Some(raw.key.span()),
            "publish.key",
            "not a secret reference",
            error,
        ));
    }
    let key_problem = match &key {
        SigningKey::Transit(text) => sealcraft_secrets::TransitKey::parse(text)
            .is_none()
            .then(|| "expected vault-transit:KEY or vault-transit:MOUNT/KEY".to_owned()),
        SigningKey::Vault(_) => None,
        SigningKey::File(path) => {
            (!path.is_file()).then(|| format!("{} does not exist", path.display()))
        }
    };
    if let Some(message) = key_problem {
        return Err(check.error(Some(raw.key.span()), "publish.key", message));
    }
    for (reference, key_name) in [
        (&raw.key_password, "publish.key_password"),
        (&raw.password, "publish.password"),
    ] {
        if let Some(reference) = reference
            && sealcraft_secrets::SecretRef::parse(reference.get_ref()).is_err()
        {
            return Err(check.error(Some(reference.span()), key_name, "must be a secret reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD), never the secret itself"
                    ));
        }
    }
    if raw.password.is_some() && raw.username.is_none() {
        return Err(check.error(
            Some(raw.password.as_ref().map_or(raw.key.span(), Spanned::span)),
            "publish.password",
            "a password needs a username",
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
            Some(path) if !path.is_empty() => PublishTarget::Layout(check.resolve(path)),
            _ => {
                return Err(check.error(
                    Some(span),
                    "publish.target",
                    format!("{other:?} is not \"registry\" or oci:DIR"),
                ));
            }
        },
    };
    let ca_bundle = match &raw.ca_bundle {
        None => None,
        Some(path) => {
            let resolved = check.resolve(path.get_ref());
            if !resolved.is_file() {
                return Err(check.error(
                    Some(path.span()),
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
                return Err(check.error(
                    Some(span),
                    "publish.provenance",
                    format!("{other:?} is not \"v1\" or \"v0.2\""),
                ));
            }
        },
    })
}
