//! Where packages come from: apt's `sources.list` one-line entries
//! (`deb [opts] URI suite [component…]`) and deb822 `.sources` stanzas
//! (`Types`, `URIs`, `Suites`, `Components`, `Architectures`, `Signed-By`,
//! `Enabled`), as `sources.list(5)` describes them. Only binary (`deb`)
//! entries count; `deb-src` is skipped.

use std::path::PathBuf;

use sealcraft_deb::deb822;

/// Which keys may sign a source's Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    /// apt's default trust: `trusted.gpg` and `trusted.gpg.d/*`.
    Default,
    /// Keyring files (absolute paths) and, or instead, key fingerprints.
    Keys {
        /// Keyring files.
        keyrings: Vec<PathBuf>,
        /// Fingerprints of keys of the default keyrings.
        fingerprints: Vec<String>,
    },
    /// An ASCII-armored key block written in the `.sources` file itself.
    Embedded(String),
}

/// One repository suite to read packages from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The archive root (`http://deb.debian.org/debian`), without a trailing slash.
    pub uri: String,
    /// The suite (`bookworm-security`), or a flat repository's path ending in `/`.
    pub suite: String,
    /// Components (`main`); empty for a flat repository.
    pub components: Vec<String>,
    /// Architectures it serves, when the entry limits them.
    pub architectures: Option<Vec<String>>,
    /// Who signs it.
    pub signed_by: SignedBy,
}

/// A sources entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {reason}")]
pub struct SourcesError {
    /// The file (or setting) it came from.
    pub origin: String,
    /// The 1-based line of the entry.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// A `Signed-By` value: an embedded key block, or absolute keyring paths
/// and key fingerprints (apt reads anything else as a fingerprint, so a
/// relative path is refused here rather than silently trusting nothing).
fn signed_by(value: &str) -> Result<SignedBy, String> {
    if value.contains("BEGIN PGP PUBLIC KEY BLOCK") {
        // Continuation lines are indented by one space, and " ." stands for an empty line.
        let block: Vec<&str> = value
            .lines()
            .map(|line| {
                let line = line.strip_prefix(' ').unwrap_or(line);
                if line == "." { "" } else { line }
            })
            .collect();
        return Ok(SignedBy::Embedded(
            block.join("\n").trim().to_owned() + "\n",
        ));
    }
    let mut keyrings = Vec::new();
    let mut fingerprints = Vec::new();
    for item in value
        .split([',', ' ', '\n'])
        .filter(|item| !item.is_empty())
    {
        let fingerprint = item.trim_end_matches('!');
        if item.starts_with('/') {
            keyrings.push(PathBuf::from(item));
        } else if fingerprint.len() >= 16
            && fingerprint.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            fingerprints.push(fingerprint.to_ascii_uppercase());
        } else {
            return Err(format!(
                "signed-by {item:?} is neither an absolute keyring path nor a key fingerprint"
            ));
        }
    }
    Ok(SignedBy::Keys {
        keyrings,
        fingerprints,
    })
}

fn check_uri(uri: &str, origin: &str, line: usize) -> Result<String, SourcesError> {
    let trimmed = uri.trim_end_matches('/');
    if ["http://", "https://", "file://"]
        .iter()
        .any(|scheme| trimmed.starts_with(scheme))
    {
        Ok(trimmed.to_owned())
    } else {
        Err(SourcesError {
            origin: origin.to_owned(),
            line,
            reason: format!("{uri:?}: only http://, https:// and file:// archives are read"),
        })
    }
}

/// Parses a one-line `sources.list` file.
pub fn parse_list(text: &str, origin: &str) -> Result<Vec<Source>, SourcesError> {
    let mut sources = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let error = |reason: String| SourcesError {
            origin: origin.to_owned(),
            line,
            reason,
        };
        let (kind, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        match kind {
            "deb" => {}
            "deb-src" => continue,
            other => return Err(error(format!("{other:?} is not deb or deb-src"))),
        }
        let mut rest = rest.trim();
        let mut architectures = None;
        let mut signed = SignedBy::Default;
        if let Some(options) = rest.strip_prefix('[') {
            let (options, after) = options
                .split_once(']')
                .ok_or_else(|| error("an option list without its ']'".into()))?;
            for option in options.split_whitespace() {
                let Some((key, value)) = option.split_once('=') else {
                    return Err(error(format!("{option:?} is not key=value")));
                };
                match key {
                    "arch" => {
                        architectures = Some(value.split(',').map(str::to_owned).collect());
                    }
                    "signed-by" => signed = signed_by(value).map_err(error)?,
                    // Options that change nothing about which packages are read.
                    _ => {}
                }
            }
            rest = after.trim();
        }
        let mut words = rest.split_whitespace();
        let uri = words.next().ok_or_else(|| error("no archive URI".into()))?;
        let suite = words.next().ok_or_else(|| error("no suite".into()))?;
        let components: Vec<String> = words.map(str::to_owned).collect();
        if components.is_empty() != suite.ends_with('/') {
            return Err(error(
                "a suite takes components, and a flat repository (suite ending in /) none".into(),
            ));
        }
        sources.push(Source {
            uri: check_uri(uri, origin, line)?,
            suite: suite.to_owned(),
            components,
            architectures,
            signed_by: signed,
        });
    }
    Ok(sources)
}

/// Parses a deb822 `.sources` file.
pub fn parse_deb822(text: &str, origin: &str) -> Result<Vec<Source>, SourcesError> {
    // Paragraph lines, for messages: the line each paragraph starts on.
    let mut starts = Vec::new();
    let mut in_paragraph = false;
    for (index, line) in text.lines().enumerate() {
        let blank = line.trim().is_empty();
        let comment = line.starts_with('#');
        if !blank && !comment && !in_paragraph {
            starts.push(index + 1);
            in_paragraph = true;
        } else if blank {
            in_paragraph = false;
        }
    }
    let mut sources = Vec::new();
    for (paragraph, line) in deb822::parse(text).into_iter().zip(starts) {
        let error = |reason: String| SourcesError {
            origin: origin.to_owned(),
            line,
            reason,
        };
        let list = |name: &str| -> Vec<String> {
            paragraph
                .get(name)
                .map(|value| value.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        if paragraph
            .single("Enabled")
            .is_some_and(|value| value.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let types = list("Types");
        if types.is_empty() {
            return Err(error("a stanza without Types".into()));
        }
        if !types.iter().any(|kind| kind == "deb") {
            continue;
        }
        let uris = list("URIs");
        let suites = list("Suites");
        if uris.is_empty() || suites.is_empty() {
            return Err(error("a stanza needs URIs and Suites".into()));
        }
        let components = list("Components");
        let architectures = paragraph
            .get("Architectures")
            .map(|value| value.split_whitespace().map(str::to_owned).collect());
        let signed = match paragraph.get("Signed-By") {
            Some(value) => signed_by(value).map_err(error)?,
            None => SignedBy::Default,
        };
        for uri in &uris {
            for suite in &suites {
                if components.is_empty() != suite.ends_with('/') {
                    return Err(error(format!(
                        "{suite}: a suite takes components, and a flat repository (suite ending in /) none"
                    )));
                }
                sources.push(Source {
                    uri: check_uri(uri, origin, line)?,
                    suite: suite.clone(),
                    components: components.clone(),
                    architectures: architectures.clone(),
                    signed_by: signed.clone(),
                });
            }
        }
    }
    Ok(sources)
}

/// Parses either form: deb822 when `origin` ends in `.sources` or the text has `Types:`.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Source>, SourcesError> {
    let deb822 = origin.ends_with(".sources")
        || text
            .lines()
            .any(|line| line.trim_start().to_ascii_lowercase().starts_with("types:"));
    if deb822 {
        parse_deb822(text, origin)
    } else {
        parse_list(text, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_entries_with_options() {
        let sources = parse_list(
            "# comment\ndeb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian/ bookworm main contrib\ndeb-src http://deb.debian.org/debian bookworm main\ndeb file:///srv/repo ./\n",
            "sources.list",
        )
        .unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uri, "http://deb.debian.org/debian");
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].architectures.as_deref(),
            Some(&["amd64".to_owned(), "arm64".to_owned()][..])
        );
        assert_eq!(
            sources[0].signed_by,
            SignedBy::Keys {
                keyrings: vec!["/usr/share/keyrings/debian-archive-keyring.gpg".into()],
                fingerprints: vec![]
            }
        );
        assert_eq!(sources[1].suite, "./");
        assert!(sources[1].components.is_empty());
        let error = parse_list("deb ftp://old/debian bookworm main\n", "x.list").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(parse_list("deb http://a bookworm\n", "x.list").is_err());
        assert!(parse_list("rpm http://a b c\n", "x.list").is_err());
        // A relative keyring path is not a fingerprint either: refused, not trusted as nothing.
        let error = parse_list(
            "deb [signed-by=keys/mirror.gpg] http://a stable main\n",
            "x.list",
        )
        .unwrap_err();
        assert!(error.reason.contains("keys/mirror.gpg"), "{error}");
        let pinned = parse_list(
            "deb [signed-by=B7C5D7D6350947F8,/k.gpg] http://a stable main\n",
            "x.list",
        )
        .unwrap();
        assert_eq!(
            pinned[0].signed_by,
            SignedBy::Keys {
                keyrings: vec!["/k.gpg".into()],
                fingerprints: vec!["B7C5D7D6350947F8".into()]
            }
        );
    }

    #[test]
    fn deb822_stanzas_multiply_uris_and_suites() {
        let text = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n# disabled\nTypes: deb\nURIs: http://other\nSuites: x\nComponents: main\nEnabled: no\n\nTypes: deb deb-src\nURIs: https://repo.example\nSuites: stable\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF\n -----END PGP PUBLIC KEY BLOCK-----\n";
        let sources = parse(text, "debian.sources").unwrap();
        assert_eq!(sources.len(), 3);
        assert_eq!(sources[1].suite, "bookworm-updates");
        assert_eq!(
            sources[2].signed_by,
            SignedBy::Embedded(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n"
                    .into()
            )
        );
        let error = parse("Types: deb\nSuites: x\n", "broken.sources").unwrap_err();
        assert_eq!((error.line, error.origin.as_str()), (1, "broken.sources"));
    }
}
