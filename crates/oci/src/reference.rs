//! Registry image references: `[registry/]repository[:tag][@digest]`.
//!
//! Follows the grammar of the distribution project's reference package,
//! including its normalisation: a name without a registry lives on
//! `docker.io`, and a one-component name there is under `library/`.

use std::fmt;

use crate::digest::{Digest, parse_digest};
use crate::error::{Error, Result};

/// The registry that names without a registry component refer to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const MAX_NAME_LENGTH: usize = 255;
const MAX_TAG_LENGTH: usize = 128;

/// A parsed and normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidReference {
            reference: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let digest = parse_digest(digest).map_err(|_| invalid("invalid digest"))?;
                (rest, Some(digest))
            }
            None => (text, None),
        };
        let last_slash = name_and_tag.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => {
                let colon = last_slash + colon;
                (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(invalid)?;
        }
        let (registry, repository) = split_registry(name);
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        validate_registry(registry).map_err(invalid)?;
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        validate_repository(&repository).map_err(invalid)?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LENGTH {
            return Err(invalid("name longer than 255 characters"));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host (and port).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same reference pinned to `digest`.
    #[must_use]
    pub fn with_digest(mut self, digest: Digest) -> Self {
        self.digest = Some(digest);
        self
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok {
        return Err("tag must start with a letter, digit or underscore");
    }
    if tag.len() > MAX_TAG_LENGTH {
        return Err("tag longer than 128 characters");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("tag may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn validate_registry(registry: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or("unterminated IPv6 address")?;
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err("invalid IPv6 address");
        }
        (
            None,
            after
                .strip_prefix(':')
                .map(Some)
                .unwrap_or_else(|| (!after.is_empty()).then_some("")),
        )
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("registry port must be a number");
    }
    if let Some(host) = host {
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(valid_label) {
            return Err("invalid registry host name");
        }
    }
    Ok(())
}

fn validate_repository(repository: &str) -> Result<(), &'static str> {
    if repository.is_empty() {
        return Err("empty repository name");
    }
    for component in repository.split('/') {
        validate_path_component(component)?;
    }
    Ok(())
}

/// `[a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*`
fn validate_path_component(component: &str) -> Result<(), &'static str> {
    const MESSAGE: &str = "repository components are lowercase letters and digits, separated by '.', '_', '__' or dashes";
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err("empty repository component");
    }
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut index = 0;
    loop {
        let start = index;
        while index < bytes.len() && alphanumeric(bytes[index]) {
            index += 1;
        }
        if index == start {
            return Err(MESSAGE);
        }
        if index == bytes.len() {
            return Ok(());
        }
        let separator_start = index;
        while index < bytes.len() && !alphanumeric(bytes[index]) {
            index += 1;
        }
        let separator = &component[separator_start..index];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid || index == bytes.len() {
            return Err(MESSAGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_normalises_good_references() {
        let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
            ("alpine", "docker.io", "library/alpine", None, false),
            (
                "alpine:3.20",
                "docker.io",
                "library/alpine",
                Some("3.20"),
                false,
            ),
            (
                "index.docker.io/library/debian:bookworm",
                "docker.io",
                "library/debian",
                Some("bookworm"),
                false,
            ),
            ("user/app", "docker.io", "user/app", None, false),
            ("localhost/app:1", "localhost", "app", Some("1"), false),
            (
                "localhost:5000/team/app:v1.2-amd64",
                "localhost:5000",
                "team/app",
                Some("v1.2-amd64"),
                false,
            ),
            (
                "127.0.0.1:5443/hello:1",
                "127.0.0.1:5443",
                "hello",
                Some("1"),
                false,
            ),
            ("ghcr.io/org/sub/app", "ghcr.io", "org/sub/app", None, false),
            ("[::1]:5000/app:x", "[::1]:5000", "app", Some("x"), false),
            (
                "registry.example.com/a__b/c-d--e/f.g:t_",
                "registry.example.com",
                "a__b/c-d--e/f.g",
                Some("t_"),
                false,
            ),
        ];
        for (text, registry, repository, tag, _) in cases {
            let reference = Reference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(reference.registry(), *registry, "{text}");
            assert_eq!(reference.repository(), *repository, "{text}");
            assert_eq!(reference.tag(), *tag, "{text}");
        }
        let pinned = Reference::parse(&format!("example.com/app:1@{DIGEST}")).unwrap();
        assert_eq!(
            pinned.digest().map(ToString::to_string).as_deref(),
            Some(DIGEST)
        );
        assert_eq!(pinned.to_string(), format!("example.com/app:1@{DIGEST}"));
    }

    #[test]
    fn refuses_bad_references() {
        let long_tag = format!("app:{}", "a".repeat(129));
        let long_name = format!("example.com/{}", "a".repeat(250));
        let bad = [
            "",
            "UPPER",
            "app:",
            "app:-tag",
            "app:tag!",
            "a//b",
            "/app",
            "app/",
            "a..b",
            "a-",
            "-a",
            "app@sha256:abc",
            "app@md5:d41d8cd98f00b204e9800998ecf8427e",
            "example.com:port/app",
            long_tag.as_str(),
            long_name.as_str(),
            "exa_mple.com/app",
            "a___b",
        ];
        for text in bad {
            assert!(
                Reference::parse(text).is_err(),
                "{text:?} should be refused"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(
            host in "[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}",
            port in proptest::option::of(1u16..),
            components in proptest::collection::vec("[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        ) {
            let registry = match port { Some(port) => format!("{host}:{port}"), None => host };
            let mut text = format!("{registry}/{}", components.join("/"));
            if let Some(tag) = &tag { text.push(':'); text.push_str(tag); }
            let parsed = Reference::parse(&text).unwrap();
            proptest::prop_assert_eq!(parsed.to_string(), text.clone());
            proptest::prop_assert_eq!(Reference::parse(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = Reference::parse(&text);
        }
    }
}
