//! Secrets: references that name where a secret lives (`env:NAME`,
//! `file:PATH`), and [`Secret`], a value whose `Display` and `Debug` never
//! show it and whose memory is wiped when dropped.
//!
//! Secrets are never taken from command-line arguments: only their
//! references are, so that values stay out of process listings.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// A secret value. Formatting it prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file; its first line is the secret (a trailing newline is not part of it).
    File(PathBuf),
    /// A field of a Vault / OpenBao KV v2 secret: `vault:MOUNT/PATH#FIELD`.
    Vault {
        /// The KV v2 mount (`secret`).
        mount: String,
        /// The secret's path under the mount.
        path: String,
        /// The field.
        field: String,
    },
}

/// How to reach Vault / OpenBao.
#[derive(Clone)]
pub struct VaultConfig {
    /// `https://vault.example.com:8200`.
    pub address: String,
    /// PEM CA bundle for the server's certificate.
    pub ca_bundle: Option<Vec<u8>>,
    /// How to log in.
    pub auth: VaultAuth,
}

/// Vault authentication.
#[derive(Clone)]
pub enum VaultAuth {
    /// A token.
    Token(Secret),
    /// AppRole: role id and secret id.
    AppRole {
        /// The role id.
        role_id: String,
        /// The secret id.
        secret_id: Secret,
    },
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("VaultConfig")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Errors resolving secrets. They name the reference, never the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference is not `env:NAME` or `file:PATH`.
    #[error(
        "invalid secret reference {reference:?}: expected env:NAME, file:PATH or vault:MOUNT/PATH#FIELD"
    )]
    InvalidReference {
        /// The reference text.
        reference: String,
    },
    /// The environment variable is not set.
    #[error("the environment variable {name} is not set")]
    EnvNotSet {
        /// The variable.
        name: String,
    },
    /// A `vault:` reference but no Vault configuration.
    #[error(
        "{reference} needs Vault: set VAULT_ADDR and VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID)"
    )]
    VaultNotConfigured {
        /// The reference.
        reference: String,
    },
    /// Vault could not be reached or refused the request.
    #[error("vault {address}: {action}")]
    Vault {
        /// The server.
        address: String,
        /// What was asked.
        action: String,
        /// What went wrong (never a secret).
        #[source]
        problem: VaultProblem,
    },
    /// The secret has no such field.
    #[error("vault secret {mount}/{path} has no field {field:?}")]
    VaultFieldMissing {
        /// The mount.
        mount: String,
        /// The path.
        path: String,
        /// The field.
        field: String,
    },
    /// The file could not be read.
    #[error("reading secret file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl SecretRef {
    /// Parses `env:NAME`, `file:PATH` or `vault:MOUNT/PATH#FIELD`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidReference {
            reference: text.to_owned(),
        };
        if let Some(name) = text.strip_prefix("env:") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(invalid());
            }
            return Ok(Self::Env(name.to_owned()));
        }
        if let Some(path) = text.strip_prefix("file:")
            && !path.is_empty()
        {
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("vault:") {
            let (location, field) = rest.split_once('#').ok_or_else(invalid)?;
            let (mount, path) = location
                .trim_matches('/')
                .split_once('/')
                .ok_or_else(invalid)?;
            if mount.is_empty() || path.is_empty() || field.is_empty() {
                return Err(invalid());
            }
            return Ok(Self::Vault {
                mount: mount.to_owned(),
                path: path.to_owned(),
                field: field.to_owned(),
            });
        }
        Err(invalid())
    }

    /// Reads the secret; `vault:` references need `vault`.
    pub fn resolve_with(
        &self,
        lookup_env: impl Fn(&str) -> Option<String>,
        vault: Option<&VaultConfig>,
    ) -> Result<Secret, Error> {
        match self {
            Self::Vault { mount, path, field } => {
                let config = vault.ok_or_else(|| Error::VaultNotConfigured {
                    reference: format!("vault:{mount}/{path}#{field}"),
                })?;
                read_kv2(config, mount, path, field)
            }
            other => other.resolve(lookup_env),
        }
    }

    /// Reads the secret, with `lookup_env` standing for the process environment.
    pub fn resolve(&self, lookup_env: impl Fn(&str) -> Option<String>) -> Result<Secret, Error> {
        match self {
            Self::Env(name) => lookup_env(name)
                .map(Secret::new)
                .ok_or_else(|| Error::EnvNotSet { name: name.clone() }),
            Self::Vault { mount, path, field } => Err(Error::VaultNotConfigured {
                reference: format!("vault:{mount}/{path}#{field}"),
            }),
            Self::File(path) => {
                let content = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                    Error::File {
                        path: path.clone(),
                        source,
                    }
                })?);
                let first_line = content.split('\n').next().unwrap_or("");
                Ok(Secret::new(
                    first_line.strip_suffix('\r').unwrap_or(first_line),
                ))
            }
        }
    }
}

fn vault_agent(config: &VaultConfig) -> Result<ureq::Agent, Error> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(bundle) = &config.ca_bundle {
        let certificates: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(bundle)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(certificate),
                _ => None,
            })
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certificates));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .build()
        .new_agent())
}

/// What went wrong talking to Vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultProblem {
    /// The request did not get an answer.
    #[error("the request failed")]
    Unreachable(#[source] Box<ureq::Error>),
    /// The token or role may not do this.
    #[error("permission denied (check the token or the role's policies)")]
    PermissionDenied,
    /// Nothing at that path.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Any other answer.
    #[error("answered {0}")]
    Status(u16),
    /// The answer is not the JSON Vault sends.
    #[error("the answer is not JSON")]
    BadAnswer(#[source] Box<ureq::Error>),
    /// The answer lacks what was asked for.
    #[error("no {0} in the answer")]
    Missing(&'static str),
}

fn vault_error(config: &VaultConfig, action: &str, problem: VaultProblem) -> Error {
    Error::Vault {
        address: config.address.clone(),
        action: action.to_owned(),
        problem,
    }
}

fn unreachable(error: ureq::Error) -> VaultProblem {
    VaultProblem::Unreachable(Box::new(error))
}

fn bad_answer(error: ureq::Error) -> VaultProblem {
    VaultProblem::BadAnswer(Box::new(error))
}

/// A client token: the configured one, or one from an AppRole login.
fn vault_token(config: &VaultConfig, agent: &ureq::Agent) -> Result<Secret, Error> {
    match &config.auth {
        VaultAuth::Token(token) => Ok(token.clone()),
        VaultAuth::AppRole { role_id, secret_id } => {
            let url = format!(
                "{}/v1/auth/approle/login",
                config.address.trim_end_matches('/')
            );
            let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id.expose()})
                .to_string();
            let mut response = agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body)
                .map_err(|error| vault_error(config, "AppRole login", unreachable(error)))?;
            if response.status() != 200 {
                return Err(vault_error(
                    config,
                    "AppRole login",
                    VaultProblem::Status(response.status().as_u16()),
                ));
            }
            let document: serde_json::Value = response
                .body_mut()
                .read_json()
                .map_err(|error| vault_error(config, "AppRole login", bad_answer(error)))?;
            document["auth"]["client_token"]
                .as_str()
                .map(Secret::new)
                .ok_or_else(|| {
                    vault_error(
                        config,
                        "AppRole login",
                        VaultProblem::Missing("client token"),
                    )
                })
        }
    }
}

fn read_kv2(config: &VaultConfig, mount: &str, path: &str, field: &str) -> Result<Secret, Error> {
    let agent = vault_agent(config)?;
    let token = vault_token(config, &agent)?;
    let action = format!("reading {mount}/{path}");
    let url = format!(
        "{}/v1/{mount}/data/{path}",
        config.address.trim_end_matches('/')
    );
    let mut response = agent
        .get(&url)
        .header("X-Vault-Token", token.expose())
        .call()
        .map_err(|error| vault_error(config, &action, unreachable(error)))?;
    match response.status().as_u16() {
        200 => {}
        403 => {
            return Err(vault_error(config, &action, VaultProblem::PermissionDenied));
        }
        404 => {
            return Err(vault_error(
                config,
                &action,
                VaultProblem::NotFound("secret"),
            ));
        }
        status => return Err(vault_error(config, &action, VaultProblem::Status(status))),
    }
    let document: serde_json::Value = response
        .body_mut()
        .read_json()
        .map_err(|error| vault_error(config, &action, bad_answer(error)))?;
    document["data"]["data"][field]
        .as_str()
        .map(Secret::new)
        .ok_or_else(|| Error::VaultFieldMissing {
            mount: mount.to_owned(),
            path: path.to_owned(),
            field: field.to_owned(),
        })
}

/// A key in a Vault/OpenBao transit engine: signing happens in the vault
/// and the private key never leaves it (`vault-transit:[MOUNT/]KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitKey {
    /// The transit mount (`transit` unless given).
    pub mount: String,
    /// The key's name.
    pub name: String,
}

impl TransitKey {
    /// Parses `vault-transit:KEY` or `vault-transit:MOUNT/KEY`.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("vault-transit:")?;
        let (mount, name) = rest.rsplit_once('/').unwrap_or(("transit", rest));
        (!mount.is_empty() && !name.is_empty() && !name.contains('/')).then(|| Self {
            mount: mount.to_owned(),
            name: name.to_owned(),
        })
    }

    fn describe(&self) -> String {
        format!("vault-transit:{}/{}", self.mount, self.name)
    }

    /// The PEM public key of the key's latest version.
    pub fn public_key_pem(&self, config: &VaultConfig) -> Result<String, Error> {
        let action = format!("reading the public key of {}", self.describe());
        let document = self.call(config, &action, None)?;
        let versions = &document["data"]["keys"];
        let latest = document["data"]["latest_version"]
            .as_u64()
            .map(|version| version.to_string());
        latest
            .and_then(|version| versions[version.as_str()]["public_key"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                vault_error(
                    config,
                    &action,
                    VaultProblem::Missing("public key (is it an asymmetric key?)"),
                )
            })
    }

    /// Signs `message` with SHA-256; returns the DER (ASN.1) signature.
    pub fn sign(&self, config: &VaultConfig, message: &[u8]) -> Result<Vec<u8>, Error> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let action = format!("signing with {}", self.describe());
        let body = serde_json::json!({
            "input": STANDARD.encode(message),
            "marshaling_algorithm": "asn1",
        });
        let document = self.call(config, &action, Some(body))?;
        let signature = document["data"]["signature"]
            .as_str()
            .and_then(|text| text.rsplit(':').next())
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .ok_or_else(|| vault_error(config, &action, VaultProblem::Missing("signature")))?;
        Ok(signature)
    }

    fn call(
        &self,
        config: &VaultConfig,
        action: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        let agent = vault_agent(config)?;
        let token = vault_token(config, &agent)?;
        let base = config.address.trim_end_matches('/');
        let result = match body {
            Some(body) => agent
                .post(&format!(
                    "{base}/v1/{}/sign/{}/sha2-256",
                    self.mount, self.name
                ))
                .header("X-Vault-Token", token.expose())
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            None => agent
                .get(&format!("{base}/v1/{}/keys/{}", self.mount, self.name))
                .header("X-Vault-Token", token.expose())
                .call(),
        };
        let mut response =
            result.map_err(|error| vault_error(config, action, unreachable(error)))?;
        match response.status().as_u16() {
            200 => {}
            403 => return Err(vault_error(config, action, VaultProblem::PermissionDenied)),
            404 => return Err(vault_error(config, action, VaultProblem::NotFound("key"))),
            status => return Err(vault_error(config, action, VaultProblem::Status(status))),
        }
        response
            .body_mut()
            .read_json()
            .map_err(|error| vault_error(config, action, bad_answer(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_keys_name_a_mount_and_a_key() {
        let parsed = |text| TransitKey::parse(text).map(|key| (key.mount, key.name));
        assert_eq!(
            parsed("vault-transit:release"),
            Some(("transit".into(), "release".into()))
        );
        assert_eq!(
            parsed("vault-transit:kms/prod/release"),
            Some(("kms/prod".into(), "release".into()))
        );
        assert_eq!(parsed("vault-transit:"), None);
        assert_eq!(parsed("vault-transit:transit/"), None);
        assert_eq!(parsed("vault:secret/x#y"), None);
    }

    #[test]
    fn secrets_never_display() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn references_resolve_from_env_and_files() {
        let env = |name: &str| (name == "PASS").then(|| "from-env".to_owned());
        assert_eq!(
            SecretRef::parse("env:PASS")
                .unwrap()
                .resolve(env)
                .unwrap()
                .expose(),
            "from-env"
        );
        let error = SecretRef::parse("env:MISSING")
            .unwrap()
            .resolve(env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("MISSING"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, "first line\nsecond\n").unwrap();
        let secret = SecretRef::parse(&format!("file:{}", path.display()))
            .unwrap()
            .resolve(env)
            .unwrap();
        assert_eq!(secret.expose(), "first line");
        assert_eq!(
            SecretRef::parse("vault:secret/ci/registry#password").unwrap(),
            SecretRef::Vault {
                mount: "secret".into(),
                path: "ci/registry".into(),
                field: "password".into()
            }
        );
        assert!(matches!(
            SecretRef::parse("vault:secret/x#y").unwrap().resolve(env),
            Err(Error::VaultNotConfigured { .. })
        ));
        for bad in [
            "",
            "env:",
            "env:A-B",
            "vault",
            "vault:secret#f",
            "vault:secret/x",
            "vault:secret/x#",
            "file:",
            "password",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }
}
