//! `[[sinks]]`: where events are shipped besides events.jsonl.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Checker;
use super::raw::RawSink;
use crate::error::Result;

/// One `[[sinks]]` entry; the authorization is a secret reference.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// `file`, `stdout`, `syslog`, `loki` or `webhook`.
    pub kind: String,
    /// File path (file).
    pub path: Option<PathBuf>,
    /// `host:port` (syslog).
    pub address: Option<String>,
    /// URL (loki, webhook).
    pub url: Option<String>,
    /// Stream labels (loki).
    pub labels: BTreeMap<String, String>,
    /// Reference to the `Authorization` header value (webhook).
    pub authorization: Option<String>,
    /// A delivery failure fails the run.
    pub required: bool,
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
        match kind.as_str() {
            "file" if sink.path.is_none() => return Err(missing("path")),
            "syslog" if sink.address.is_none() => return Err(missing("address")),
            "loki" | "webhook" if sink.url.is_none() => return Err(missing("url")),
            "file" | "stdout" | "syslog" | "loki" | "webhook" => {}
            _ => {
                return Err(check.error(
                    Some(sink.kind.span()),
                    "sinks.type",
                    format!("{kind:?} is not file, stdout, syslog, loki or webhook"),
                ));
            }
        }
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
            kind,
            path: sink.path.as_deref().map(|path| check.resolve(path)),
            address: sink.address.clone(),
            url: sink.url.clone(),
            labels: sink.labels.clone(),
            authorization: sink
                .authorization
                .as_ref()
                .map(|reference| reference.get_ref().clone()),
            required: sink.required,
        });
    }
    Ok(sinks)
}
