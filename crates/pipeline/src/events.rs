//! Structured events: one JSON object per line, written to the run's
//! `events.jsonl` and handed to a [`Reporter`] for display.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339 time with milliseconds.
    pub time: String,
    /// The run it belongs to.
    pub run_id: String,
    /// The stage (`run` for the run itself).
    pub stage: String,
    /// What happened (`started`, `completed`, `failed`, …).
    pub event: String,
    /// Details.
    pub fields: Map<String, Value>,
}

/// Receives events as they happen (the binary shows progress with them).
pub trait Reporter: Send + Sync {
    /// Called for every event, after it was written to the log.
    fn event(&self, event: &Event);
}

/// A reporter that ignores everything.
pub struct NoReporter;

impl Reporter for NoReporter {
    fn event(&self, _event: &Event) {}
}

/// Writes events to a JSON Lines file and forwards them.
pub struct EventLog<'a> {
    run_id: String,
    file: Mutex<BufWriter<File>>,
    path: std::path::PathBuf,
    reporter: &'a dyn Reporter,
}

impl<'a> EventLog<'a> {
    /// Creates (truncates) the log at `path`.
    pub fn create(path: &Path, run_id: &str, reporter: &'a dyn Reporter) -> Result<Self> {
        let file = File::create(path).map_err(|source| Error::Io {
            action: "creating",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            run_id: run_id.to_owned(),
            file: Mutex::new(BufWriter::new(file)),
            path: path.to_path_buf(),
            reporter,
        })
    }

    /// Records one event; the line is flushed at once so a crash loses nothing before it.
    pub fn emit(&self, stage: &str, event: &str, fields: Value) -> Result<()> {
        let fields = match fields {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_owned(), other)]),
        };
        let event = Event {
            time: now_rfc3339(),
            run_id: self.run_id.clone(),
            stage: stage.to_owned(),
            event: event.to_owned(),
            fields,
        };
        let mut line =
            serde_json::to_vec(&event).unwrap_or_else(|_| unreachable!("events are plain data"));
        line.push(b'\n');
        {
            let mut file = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            file.write_all(&line)
                .and_then(|()| file.flush())
                .map_err(|source| Error::Io {
                    action: "writing",
                    path: self.path.clone(),
                    source,
                })?;
        }
        self.reporter.event(&event);
        Ok(())
    }
}

/// The current time as RFC 3339 with milliseconds (UTC).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let millis = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    millis
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
