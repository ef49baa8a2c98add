//! Findings as data: every domain names what it reports with a code from
//! its own enum, written once with [`codes!`], and a [`Warning`] carries a
//! code, the thing it is about and a message.
//!
//! Codes are kebab-case, unique across all domains, and stable: users put
//! them in allowlists and CI filters, so a code is never renamed or reused.
//! [`check_codes`] is what the tests run over every domain.

use std::collections::BTreeSet;
use std::fmt;

use serde::ser::SerializeMap;

/// A domain's code enum.
pub trait Code: Copy + Eq + Ord + fmt::Debug + Send + Sync + 'static {
    /// Every code of the domain, in declaration order.
    const ALL: &'static [Self];
    /// The domain's name (`inventory`, `advisories`, …).
    const DOMAIN: &'static str;
    /// What a warning's subject is called in JSON: `path`, `record`, …
    const SUBJECT: &'static str;
    /// The code as users see it.
    fn as_str(self) -> &'static str;
    /// One line saying what the code means.
    fn description(self) -> &'static str;
    /// The code named `text`, if the domain has it.
    fn from_name(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|code| code.as_str() == text)
    }
}

/// Declares a code enum: its variants, their names and descriptions.
///
/// ```
/// sealcraft_findings::codes! {
///     /// Problems met while reading a thing.
///     pub enum ThingCode: domain "thing", subject "path" {
///         /// A file could not be read.
///         Unreadable = "thing-unreadable": "a file could not be read",
///     }
/// }
/// use sealcraft_findings::Code as _;
/// assert_eq!(ThingCode::Unreadable.as_str(), "thing-unreadable");
/// ```
#[macro_export]
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : domain $domain:literal, subject $subject:literal {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal : $description:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $crate::Code for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            const DOMAIN: &'static str = $domain;
            const SUBJECT: &'static str = $subject;
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            fn description(self) -> &'static str {
                match self { $(Self::$variant => $description),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                formatter.write_str($crate::Code::as_str(*self))
            }
        }

        impl $crate::serde::Serialize for $name {
            fn serialize<S: $crate::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($crate::Code::as_str(*self))
            }
        }
    };
}

#[doc(hidden)]
pub use serde;

/// Something that could not be read or used as expected; the work went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning<C: Code> {
    /// What kind of problem.
    pub code: C,
    /// What it is about (a path in the image, a record id, …).
    pub subject: String,
    /// What was wrong.
    pub message: String,
}

impl<C: Code> Warning<C> {
    /// A warning about `subject`.
    pub fn new(code: C, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            subject: subject.into(),
            message: message.into(),
        }
    }
}

impl<C: Code> fmt::Display for Warning<C> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(formatter, "{}: {}", self.code.as_str(), self.message)
        } else {
            write!(
                formatter,
                "{}: {}: {}",
                self.subject,
                self.code.as_str(),
                self.message
            )
        }
    }
}

impl<C: Code> serde::Serialize for Warning<C> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("code", self.code.as_str())?;
        map.serialize_entry(C::SUBJECT, &self.subject)?;
        map.serialize_entry("message", &self.message)?;
        map.end()
    }
}

/// The codes of a domain as `(code, description)`, for listings and snapshots.
pub fn listing<C: Code>() -> Vec<(&'static str, &'static str)> {
    C::ALL
        .iter()
        .map(|code| (code.as_str(), code.description()))
        .collect()
}

/// What is wrong with a domain's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not lowercase ASCII words joined by single hyphens.
    #[error("{domain}: {code:?} is not kebab-case")]
    NotKebabCase {
        /// The domain.
        domain: &'static str,
        /// The code.
        code: &'static str,
    },
    /// Two variants share a code.
    #[error("{domain}: {code:?} is used twice")]
    Repeated {
        /// The domain.
        domain: &'static str,
        /// The code.
        code: &'static str,
    },
    /// A code without a description.
    #[error("{domain}: {code:?} has no description")]
    Undescribed {
        /// The domain.
        domain: &'static str,
        /// The code.
        code: &'static str,
    },
    /// Looking a code up by its name finds another variant.
    #[error("{domain}: {code:?} does not name itself")]
    Misnamed {
        /// The domain.
        domain: &'static str,
        /// The code.
        code: &'static str,
    },
}

/// An error and its causes on one line (`error: cause: cause`), for
/// warnings and events that carry an error as text. A cause that repeats
/// the one before it (HTTP clients wrap errors in layers that say the same)
/// is written once.
pub fn chain(error: &dyn std::error::Error) -> String {
    causes(error).join(": ")
}

/// An error's message and those of its causes, each once where several in
/// a row say the same.
pub fn causes(error: &dyn std::error::Error) -> Vec<String> {
    let mut messages: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if messages.last() != Some(&message) {
            messages.push(message);
        }
        source = cause.source();
    }
    messages
}

/// Checks a domain's codes: kebab-case ASCII, each used once, each described.
pub fn check_codes<C: Code>() -> Result<(), CodeError> {
    let mut seen = BTreeSet::new();
    for code in C::ALL {
        let text = code.as_str();
        let domain = C::DOMAIN;
        let kebab = !text.is_empty()
            && !text.starts_with('-')
            && !text.ends_with('-')
            && !text.contains("--")
            && text
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !kebab {
            return Err(CodeError::NotKebabCase { domain, code: text });
        }
        if !seen.insert(text) {
            return Err(CodeError::Repeated { domain, code: text });
        }
        if code.description().trim().is_empty() {
            return Err(CodeError::Undescribed { domain, code: text });
        }
        if C::from_name(text) != Some(*code) {
            return Err(CodeError::Misnamed { domain, code: text });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    codes! {
        /// Test codes.
        pub(crate) enum Sample: domain "sample", subject "path" {
            /// One.
            First = "sample-first": "the first",
            /// Two.
            Second = "sample-second": "the second",
        }
    }

    codes! {
        /// Codes with a mistake.
        pub(crate) enum Twice: domain "twice", subject "record" {
            /// One.
            One = "same": "one",
            /// The same again.
            Again = "same": "again",
        }
    }

    codes! {
        /// Codes with a bad name.
        pub(crate) enum Shouting: domain "shouting", subject "record" {
            /// Bad.
            Loud = "Not_Kebab": "loud",
        }
    }

    #[test]
    fn warnings_serialize_with_the_domain_subject() {
        let warning = Warning::new(Sample::Second, "/etc/x", "broken");
        assert_eq!(
            serde_json::to_string(&warning).unwrap(),
            r#"{"code":"sample-second","path":"/etc/x","message":"broken"}"#
        );
        assert_eq!(warning.to_string(), "/etc/x: sample-second: broken");
        assert_eq!(Sample::from_name("sample-first"), Some(Sample::First));
        assert_eq!(Sample::from_name("sample-third"), None);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Layer {
        message: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    #[test]
    fn chains_say_each_repeated_cause_once() {
        let layer = |message, source: Option<Layer>| Layer {
            message,
            source: source.map(Box::new),
        };
        let error = layer(
            "uploading",
            Some(layer(
                "builder error",
                Some(layer(
                    "builder error",
                    Some(layer(
                        "builder error",
                        Some(layer("URL scheme is not allowed", None)),
                    )),
                )),
            )),
        );
        assert_eq!(
            chain(&error),
            "uploading: builder error: URL scheme is not allowed"
        );
    }

    #[test]
    fn the_check_catches_repeats_and_bad_names() {
        check_codes::<Sample>().unwrap();
        assert_eq!(
            check_codes::<Twice>().unwrap_err(),
            CodeError::Repeated {
                domain: "twice",
                code: "same"
            }
        );
        assert!(matches!(
            check_codes::<Shouting>().unwrap_err(),
            CodeError::NotKebabCase { .. }
        ));
        assert_eq!(
            listing::<Sample>(),
            [
                ("sample-first", "the first"),
                ("sample-second", "the second")
            ]
        );
    }
}
