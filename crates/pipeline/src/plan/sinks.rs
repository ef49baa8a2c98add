//! `[[sinks]]`: where events are shipped besides events.jsonl.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Checker;
use super::raw::RawSink;
use crate::error::Result;

/// One `[[sinks]]` entry.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// Where events go.
    pub destination: SinkDestination,
    /// A delivery failure fails the run.
    pub required: bool,
}

/// Where a sink delivers; an authorization is a secret reference the binary resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkDestination {
    /// JSON Lines appended to a file.
    File(PathBuf),
    /// JSON Lines on standard output.
    Stdout,
    /// RFC 5424 syslog over TCP to `host:port`.
    Syslog(String),
    /// Loki's push API.
    Loki {
        /// The push URL.
        url: String,
        /// Stream labels.
        labels: BTreeMap<String, String>,
    },
    /// A JSON POST per event.
    Webhook {
        /// The URL.
        url: String,
        /// Reference to the `Authorization` header value.
        authorization: Option<String>,
    },
}

/// Validates each `[[sinks]]` entry: a known type with the fields it needs,
/// and an authorization only as a secret reference.
pub(super) fn validate(raw: &[RawSink], check: &Checker<'_>) -> Result<Vec<SinkPlan>> {
    let mut sinks = Vec::new();
    for sink in raw {
        let kind = sink.kind.get_ref().clone();
        let missing = |field: &str| {
            check.error(
                Some(sink.kind.span()),
                "sinks",
                format!("a {kind} sink needs `{field}`"),
            )
        };
        let destination = match (kind.as_str(), &sink.path, &sink.address, &sink.url) {
            ("file", Some(path), _, _) => SinkDestination::File(check.resolve(path)),
            ("file", None, _, _) => return Err(missing("path")),
            ("stdout", ..) => SinkDestination::Stdout,
            ("syslog", _, Some(address), _) => SinkDestination::Syslog(address.clone()),
            ("syslog", _, None, _) => return Err(missing("address")),
            ("loki", _, _, Some(url)) => SinkDestination::Loki {
                url: url.clone(),
                labels: sink.labels.clone(),
            },
            ("webhook", _, _, Some(url)) => SinkDestination::Webhook {
                url: url.clone(),
                authorization: sink
                    .authorization
                    .as_ref()
                    .map(|reference| reference.get_ref().clone()),
            },
            ("loki" | "webhook", _, _, None) => return Err(missing("url")),
            _ => {
                return Err(check.error(
                    Some(sink.kind.span()),
                    "sinks.type",
                    format!("{kind:?} is not file, stdout, syslog, loki or webhook"),
                ));
            }
        };
        if let Some(reference) = &sink.authorization
            && sealcraft_secrets::SecretRef::parse(reference.get_ref()).is_err()
        {
            return Err(check.error(
                Some(reference.span()),
                "sinks.authorization",
                "must be a secret reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD)",
            ));
        }
        sinks.push(SinkPlan {
            destination,
            required: sink.required,
        });
    }
    Ok(sinks)
}
