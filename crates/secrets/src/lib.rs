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
}

/// Errors resolving secrets. They name the reference, never the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference is not `env:NAME` or `file:PATH`.
    #[error("invalid secret reference {reference:?}: expected env:NAME or file:PATH")]
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
    /// Parses `env:NAME` or `file:PATH`.
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
        Err(invalid())
    }

    /// Reads the secret, with `lookup_env` standing for the process environment.
    pub fn resolve(&self, lookup_env: impl Fn(&str) -> Option<String>) -> Result<Secret, Error> {
        match self {
            Self::Env(name) => lookup_env(name)
                .map(Secret::new)
                .ok_or_else(|| Error::EnvNotSet { name: name.clone() }),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in ["", "env:", "env:A-B", "vault", "file:", "password"] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }
}
