//! `RUN --mount=…` values: secrets, caches and tmpfs.
//!
//! A secret is bind-mounted read-only from a private copy for the one step
//! that asks for it, so it never reaches the layer, the history or the
//! cache key; a cache directory persists between builds outside the image;
//! a tmpfs is discarded with the step. Bind and ssh mounts are refused.

use crate::words::{self, Vars, WordError};

/// Why a `--mount` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// Substitution failed.
    #[error(transparent)]
    Word(#[from] WordError),
    /// A double quote is never closed.
    #[error("unterminated quote in --mount={text}")]
    UnterminatedQuote {
        /// The value.
        text: String,
    },
    /// An option has a value of the wrong kind.
    #[error("--mount {key}={value} is not {expected}")]
    BadValue {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// An option needs a value.
    #[error("--mount {key} needs a value ({key}=…)")]
    NeedsValue {
        /// The option.
        key: String,
    },
    /// `sharing=` names no mode.
    #[error("--mount sharing={value}: expected shared, private or locked")]
    BadSharing {
        /// Its value.
        value: String,
    },
    /// A source was given.
    #[error(
        "--mount {key}= is not supported: cache and secret mounts take no source, and bind mounts are not supported"
    )]
    Source {
        /// The option.
        key: String,
    },
    /// An unknown option.
    #[error("unknown --mount option {option:?}")]
    UnknownOption {
        /// The option.
        option: String,
    },
    /// The target is relative.
    #[error("--mount target {target:?} must be an absolute path")]
    RelativeTarget {
        /// The target.
        target: String,
    },
    /// A required option is missing.
    #[error("a {kind} mount needs {option}=…")]
    Missing {
        /// `secret`, `cache` or `tmpfs`.
        kind: &'static str,
        /// The option.
        option: &'static str,
    },
    /// Bind mounts are refused.
    #[error(
        "bind mounts (--mount=type=bind, the default type) are not supported: COPY the files into a stage instead"
    )]
    Bind,
    /// ssh mounts are refused.
    #[error("ssh mounts are not supported: pass what the step needs as a secret")]
    Ssh,
    /// An unknown type.
    #[error("unknown mount type {kind:?}")]
    UnknownType {
        /// The type.
        kind: String,
    },
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Several steps may use it at once.
    Shared,
    /// Each concurrent user gets its own (empty) directory.
    Private,
    /// One step at a time.
    Locked,
}

/// One `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// `type=secret`.
    Secret {
        /// The secret's id (`--secret id=…`).
        id: String,
        /// Where it appears; `/run/secrets/<id>` by default.
        target: String,
        /// Fail when the secret was not provided (otherwise the step runs without it).
        required: bool,
        /// File mode (0400 by default).
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// `type=cache`.
    Cache {
        /// Cache id (the target by default).
        id: String,
        /// Mount point.
        target: String,
        /// Concurrency.
        sharing: Sharing,
        /// Read-only.
        readonly: bool,
        /// Mode of a new cache directory.
        mode: u32,
        /// Owner of a new cache directory.
        uid: u32,
        /// Group of a new cache directory.
        gid: u32,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Mount point.
        target: String,
        /// Size limit in bytes, if any.
        size: Option<u64>,
    },
}

impl Mount {
    /// The mount point inside the container.
    pub fn target(&self) -> &str {
        match self {
            Self::Secret { target, .. }
            | Self::Cache { target, .. }
            | Self::Tmpfs { target, .. } => target,
        }
    }
}

/// Splits `a=b,"c=d,e"` into fields, honouring double quotes.
fn fields(text: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    if quoted {
        return Err(MountError::UnterminatedQuote {
            text: text.to_owned(),
        });
    }
    fields.push(current);
    Ok(fields
        .into_iter()
        .filter(|field| !field.is_empty())
        .collect())
}

fn bad_value(key: &str, value: &str, expected: &'static str) -> MountError {
    MountError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

fn octal(key: &str, value: &str) -> Result<u32, MountError> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| bad_value(key, value, "an octal mode"))
}

fn number(key: &str, value: &str) -> Result<u32, MountError> {
    value.parse().map_err(|_| bad_value(key, value, "a number"))
}

fn boolean(key: &str, value: Option<&str>) -> Result<bool, MountError> {
    match value {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(bad_value(key, other, "true or false")),
    }
}

fn size(value: &str) -> Result<u64, MountError> {
    let lower = value.to_ascii_lowercase();
    let (digits, scale) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap_or(0)], 1 << 10),
        Some('m') => (&lower[..lower.find('m').unwrap_or(0)], 1 << 20),
        Some('g') => (&lower[..lower.find('g').unwrap_or(0)], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    digits
        .parse::<u64>()
        .map(|number| number * scale)
        .map_err(|_| bad_value("size", value, "a size (e.g. 64m)"))
}

/// Parses one `--mount` value, substituting `vars` in it first.
pub fn parse(raw: &str, vars: &Vars, escape: char) -> Result<Mount, MountError> {
    let text = words::expand_word(raw, vars, escape)?;
    let mut kind = None;
    let mut id = None;
    let mut target = None;
    let mut required = false;
    let mut mode = None;
    let mut uid = 0;
    let mut gid = 0;
    let mut sharing = Sharing::Shared;
    let mut readonly = false;
    let mut size_limit = None;
    for field in fields(&text)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_ascii_lowercase(), Some(value.to_owned())),
            None => (field.to_ascii_lowercase(), None),
        };
        let value_of = |key: &str| {
            value.clone().ok_or_else(|| MountError::NeedsValue {
                key: key.to_owned(),
            })
        };
        match key.as_str() {
            "type" => kind = Some(value_of(&key)?),
            "id" => id = Some(value_of(&key)?),
            "target" | "dst" | "destination" => target = Some(value_of(&key)?),
            "required" => required = boolean(&key, value.as_deref())?,
            "mode" => mode = Some(octal(&key, &value_of(&key)?)?),
            "uid" => uid = number(&key, &value_of(&key)?)?,
            "gid" => gid = number(&key, &value_of(&key)?)?,
            "readonly" | "ro" => readonly = boolean(&key, value.as_deref())?,
            "sharing" => {
                sharing = match value_of(&key)?.as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => {
                        return Err(MountError::BadSharing {
                            value: other.to_owned(),
                        });
                    }
                }
            }
            "size" => size_limit = Some(size(&value_of(&key)?)?),
            "from" | "source" | "src" => return Err(MountError::Source { key }),
            other => {
                return Err(MountError::UnknownOption {
                    option: other.to_owned(),
                });
            }
        }
    }
    let absolute = |target: String| -> Result<String, MountError> {
        if target.starts_with('/') {
            Ok(target)
        } else {
            Err(MountError::RelativeTarget { target })
        }
    };
    match kind.as_deref().unwrap_or("bind") {
        "secret" => {
            let id = id
                .or_else(|| {
                    target
                        .as_deref()
                        .and_then(|target| target.rsplit('/').next().map(str::to_owned))
                })
                .filter(|id| !id.is_empty())
                .ok_or(MountError::Missing {
                    kind: "secret",
                    option: "id",
                })?;
            let target = absolute(target.unwrap_or_else(|| format!("/run/secrets/{id}")))?;
            Ok(Mount::Secret {
                id,
                target,
                required,
                mode: mode.unwrap_or(0o400),
                uid,
                gid,
            })
        }
        "cache" => {
            let target = absolute(target.ok_or(MountError::Missing {
                kind: "cache",
                option: "target",
            })?)?;
            Ok(Mount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
                sharing,
                readonly,
                mode: mode.unwrap_or(0o755),
                uid,
                gid,
            })
        }
        "tmpfs" => Ok(Mount::Tmpfs {
            target: absolute(target.ok_or(MountError::Missing {
                kind: "tmpfs",
                option: "target",
            })?)?,
            size: size_limit,
        }),
        "bind" => Err(MountError::Bind),
        "ssh" => Err(MountError::Ssh),
        other => Err(MountError::UnknownType {
            kind: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_caches_and_tmpfs_parse_with_their_defaults() {
        let vars = Vars::from([("DIR".into(), "/var/cache/apt".into())]);
        assert_eq!(
            parse("type=secret,id=npmrc", &vars, '\\').unwrap(),
            Mount::Secret {
                id: "npmrc".into(),
                target: "/run/secrets/npmrc".into(),
                required: false,
                mode: 0o400,
                uid: 0,
                gid: 0
            }
        );
        assert_eq!(
            parse(
                "type=secret,id=t,dst=/tmp/t,required,mode=0440,uid=10001",
                &vars,
                '\\'
            )
            .unwrap(),
            Mount::Secret {
                id: "t".into(),
                target: "/tmp/t".into(),
                required: true,
                mode: 0o440,
                uid: 10001,
                gid: 0
            }
        );
        assert_eq!(
            parse("type=cache,target=$DIR,sharing=locked", &vars, '\\').unwrap(),
            Mount::Cache {
                id: "/var/cache/apt".into(),
                target: "/var/cache/apt".into(),
                sharing: Sharing::Locked,
                readonly: false,
                mode: 0o755,
                uid: 0,
                gid: 0
            }
        );
        assert_eq!(
            parse("type=tmpfs,target=/scratch,size=64m", &vars, '\\').unwrap(),
            Mount::Tmpfs {
                target: "/scratch".into(),
                size: Some(64 << 20)
            }
        );
    }

    #[test]
    fn unsupported_mounts_are_named() {
        for (text, needle) in [
            ("type=bind,source=.,target=/src", "not supported"),
            ("target=/src", "bind mounts"),
            ("type=ssh", "ssh"),
            ("type=cache", "target"),
            ("type=secret", "id"),
            ("type=secret,id=x,target=relative", "absolute"),
            ("type=cache,target=/c,sharing=sometimes", "sharing"),
            ("type=secret,id=x,mode=999", "octal"),
            ("type=secret,id=x,colour=blue", "colour"),
        ] {
            let error = parse(text, &Vars::new(), '\\').unwrap_err();
            assert!(error.to_string().contains(needle), "{text}: {error}");
        }
    }
}
