//! Package relationship fields (`Depends`, `Pre-Depends`, `Breaks`,
//! `Conflicts`, `Provides`, …): a comma-separated list of relations, each
//! a `|`-separated list of alternatives `name[:arch] [(op version)]`.
//! Architecture restrictions (`[amd64]`) and build profiles (`<!nocheck>`)
//! only occur in source packages; they are skipped.

/// A version constraint operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `<<`.
    Earlier,
    /// `<=` (and the obsolete `<`).
    EarlierOrEqual,
    /// `=`.
    Equal,
    /// `>=` (and the obsolete `>`).
    LaterOrEqual,
    /// `>>`.
    Later,
}

impl Operator {
    /// Parses `<<`, `<=`, `=`, `>=`, `>>` (and the obsolete `<`, `>`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "<<" => Self::Earlier,
            "<=" | "<" => Self::EarlierOrEqual,
            "=" => Self::Equal,
            ">=" | ">" => Self::LaterOrEqual,
            ">>" => Self::Later,
            _ => return None,
        })
    }

    /// The operator as dpkg writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earlier => "<<",
            Self::EarlierOrEqual => "<=",
            Self::Equal => "=",
            Self::LaterOrEqual => ">=",
            Self::Later => ">>",
        }
    }

    /// Whether `ordering` (of the candidate version against the constraint's) satisfies it.
    pub fn accepts(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Earlier => ordering == Less,
            Self::EarlierOrEqual => ordering != Greater,
            Self::Equal => ordering == Equal,
            Self::LaterOrEqual => ordering != Less,
            Self::Later => ordering == Greater,
        }
    }
}

/// One alternative: a package name, an optional architecture qualifier and version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// The package (or virtual package) name.
    pub name: String,
    /// `:any`, `:native` or an architecture, when given.
    pub architecture: Option<String>,
    /// The version constraint, when given.
    pub version: Option<(Operator, String)>,
}

impl std::fmt::Display for Alternative {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.name)?;
        if let Some(architecture) = &self.architecture {
            write!(formatter, ":{architecture}")?;
        }
        if let Some((operator, version)) = &self.version {
            write!(formatter, " ({} {version})", operator.as_str())?;
        }
        Ok(())
    }
}

/// One relation: satisfied by any of its alternatives.
pub type Relation = Vec<Alternative>;

/// Why a relationship field does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {reason}")]
pub struct RelationError {
    /// The alternative as written.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn alternative(text: &str) -> Result<Option<Alternative>, RelationError> {
    let error = |reason| RelationError {
        text: text.to_owned(),
        reason,
    };
    // Source-package restrictions are not part of a binary package's relations.
    let mut rest = text.trim();
    let mut depth = 0usize;
    let cut = rest.char_indices().find_map(|(index, ch)| {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '[' | '<' if depth == 0 => return Some(index),
            _ => {}
        }
        None
    });
    if let Some(start) = cut {
        rest = rest[..start].trim();
    }
    if rest.is_empty() {
        return Ok(None);
    }
    let (head, constraint) = match rest.split_once('(') {
        Some((head, tail)) => {
            let inner = tail
                .strip_suffix(')')
                .ok_or_else(|| error("a version constraint without its ')'"))?
                .trim();
            let split = inner
                .find(|ch: char| !matches!(ch, '<' | '>' | '='))
                .ok_or_else(|| error("a version constraint without a version"))?;
            let operator = Operator::parse(inner[..split].trim())
                .ok_or_else(|| error("an unknown version operator"))?;
            let version = inner[split..].trim();
            if version.is_empty() {
                return Err(error("a version constraint without a version"));
            }
            (head.trim(), Some((operator, version.to_owned())))
        }
        None => (rest, None),
    };
    let (name, architecture) = match head.split_once(':') {
        Some((name, architecture)) => (name, Some(architecture.to_owned())),
        None => (head, None),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '+' | '-' | '.'));
    if !valid || name.contains(char::is_whitespace) {
        return Err(error("not a package name"));
    }
    Ok(Some(Alternative {
        name: name.to_ascii_lowercase(),
        architecture,
        version: constraint,
    }))
}

/// Parses a relationship field (continuation lines allowed).
pub fn parse(text: &str) -> Result<Vec<Relation>, RelationError> {
    let mut relations = Vec::new();
    for relation in text.split(',') {
        let mut alternatives = Vec::new();
        for part in relation.split('|') {
            if let Some(parsed) = alternative(&part.replace('\n', " "))? {
                alternatives.push(parsed);
            }
        }
        if !alternatives.is_empty() {
            relations.push(alternatives);
        }
    }
    Ok(relations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_with_alternatives_versions_and_architectures() {
        let relations = parse(
            "libc6 (>= 2.34), libssl3 (= 3.0.17-1~deb12u2) | libssl-dev,\n debconf (>= 0.5) | debconf-2.0, python3:any, perl:native (<< 5.37)",
        )
        .unwrap();
        assert_eq!(relations.len(), 5);
        assert_eq!(
            relations[0][0],
            Alternative {
                name: "libc6".into(),
                architecture: None,
                version: Some((Operator::LaterOrEqual, "2.34".into()))
            }
        );
        assert_eq!(relations[1].len(), 2);
        assert_eq!(relations[1][0].to_string(), "libssl3 (= 3.0.17-1~deb12u2)");
        assert_eq!(relations[2][1].name, "debconf-2.0");
        assert_eq!(relations[3][0].architecture.as_deref(), Some("any"));
        assert_eq!(relations[4][0].to_string(), "perl:native (<< 5.37)");
    }

    #[test]
    fn source_restrictions_are_skipped_and_damage_refused() {
        let relations = parse("gcc [amd64] <!nocheck>, make").unwrap();
        assert_eq!(relations.len(), 2);
        assert_eq!(relations[0][0].name, "gcc");
        assert!(parse("libc6 (>= 2.34").is_err());
        assert!(parse("libc6 (~= 2)").is_err());
        assert!(parse("lib c6").is_err());
        assert!(parse("").unwrap().is_empty());
        assert!(Operator::Earlier.accepts(std::cmp::Ordering::Less));
        assert!(!Operator::Later.accepts(std::cmp::Ordering::Equal));
        assert!(Operator::LaterOrEqual.accepts(std::cmp::Ordering::Equal));
    }
}
