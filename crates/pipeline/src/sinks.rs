//! Shipping the event log: every event also goes to the sinks configured in
//! `sealcraft.toml` — JSON Lines to a file or stdout, syslog over TCP
//! (RFC 5424, one JSON event per message), a Loki push endpoint, or a
//! generic JSON webhook (such as Splunk HEC). The local `events.jsonl` is
//! written before any sink is tried, so a failing sink never loses events;
//! failures are retried, counted and reported, and fail the run only for
//! sinks marked `required`.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use sealcraft_secrets::Secret;

use crate::events::{Event, Reporter};

/// Where events go.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// Append JSON Lines to a file.
    File(std::path::PathBuf),
    /// JSON Lines on standard output.
    Stdout,
    /// Syslog over TCP, RFC 5424 with newline framing.
    Syslog(String),
    /// Loki's push API.
    Loki {
        /// The push URL.
        url: String,
        /// Stream labels.
        labels: std::collections::BTreeMap<String, String>,
    },
    /// A JSON webhook; the token, when given, goes in `Authorization`.
    Webhook {
        /// The URL.
        url: String,
        /// `Authorization` header value (e.g. `Splunk <token>`).
        authorization: Option<Secret>,
    },
}

/// A configured sink.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Where.
    pub target: SinkTarget,
    /// Whether a delivery failure fails the run.
    pub required: bool,
}

/// A delivery that failed after retries.
#[derive(Debug, Clone)]
pub struct SinkFailure {
    /// Which sink (its description, without secrets).
    pub sink: String,
    /// Whether the sink was required.
    pub required: bool,
    /// The last error.
    pub message: String,
}

/// A reporter that ships every event to the sinks, then to `inner`.
pub struct ShippingReporter<'a> {
    inner: &'a dyn Reporter,
    sinks: Vec<(Sink, Mutex<Option<TcpStream>>)>,
    agent: ureq::Agent,
    failures: Mutex<Vec<SinkFailure>>,
    hostname: String,
}

const ATTEMPTS: u32 = 3;

impl<'a> ShippingReporter<'a> {
    /// Ships to `sinks` and passes events on to `inner`.
    pub fn new(sinks: Vec<Sink>, inner: &'a dyn Reporter, hostname: String) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Self {
            inner,
            sinks: sinks
                .into_iter()
                .map(|sink| (sink, Mutex::new(None)))
                .collect(),
            agent,
            failures: Mutex::new(Vec::new()),
            hostname,
        }
    }

    /// Deliveries that failed after retries.
    pub fn failures(&self) -> Vec<SinkFailure> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn deliver(
        &self,
        sink: &Sink,
        connection: &Mutex<Option<TcpStream>>,
        event: &Event,
        line: &str,
    ) -> Result<(), String> {
        match &sink.target {
            SinkTarget::File(path) => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| error.to_string())?;
                writeln!(file, "{line}").map_err(|error| error.to_string())
            }
            SinkTarget::Stdout => {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}").map_err(|error| error.to_string())
            }
            SinkTarget::Syslog(address) => {
                // <14> = facility user, severity informational.
                let message = format!(
                    "<14>1 {} {} sealcraft {} {} - {line}\n",
                    event.time,
                    self.hostname,
                    std::process::id(),
                    event.stage
                );
                let mut guard = connection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if guard.is_none() {
                    let stream = TcpStream::connect(address)
                        .map_err(|error| format!("connecting to {address}: {error}"))?;
                    stream
                        .set_write_timeout(Some(Duration::from_secs(5)))
                        .map_err(|error| error.to_string())?;
                    *guard = Some(stream);
                }
                let result = guard.as_mut().map_or(Ok(()), |stream| {
                    stream
                        .write_all(message.as_bytes())
                        .and_then(|()| stream.flush())
                });
                if let Err(error) = result {
                    *guard = None;
                    return Err(format!("writing to {address}: {error}"));
                }
                Ok(())
            }
            SinkTarget::Loki { url, labels } => {
                let nanoseconds = time::OffsetDateTime::parse(
                    &event.time,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_or(0, |moment| moment.unix_timestamp_nanos());
                let mut stream = labels.clone();
                stream.insert("stage".into(), event.stage.clone());
                let body = serde_json::json!({"streams": [{"stream": stream, "values": [[nanoseconds.to_string(), line]]}]});
                self.post(url, None, &body)
            }
            SinkTarget::Webhook { url, authorization } => {
                let body = serde_json::json!({"event": event, "sourcetype": "sealcraft", "time": event.time});
                self.post(url, authorization.as_ref(), &body)
            }
        }
    }

    fn post(
        &self,
        url: &str,
        authorization: Option<&Secret>,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization.expose());
        }
        let response = request
            .send(body.to_string())
            .map_err(|error| format!("{url}: {error}"))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("{url}: answered {status}"))
        }
    }
}

/// A description of a sink that never includes a secret.
fn describe(target: &SinkTarget) -> String {
    match target {
        SinkTarget::File(path) => format!("file {}", path.display()),
        SinkTarget::Stdout => "stdout".into(),
        SinkTarget::Syslog(address) => format!("syslog {address}"),
        SinkTarget::Loki { url, .. } => format!("loki {url}"),
        SinkTarget::Webhook { url, .. } => format!("webhook {url}"),
    }
}

impl Reporter for ShippingReporter<'_> {
    fn event(&self, event: &Event) {
        let line =
            serde_json::to_string(event).unwrap_or_else(|_| unreachable!("events are plain data"));
        for (sink, connection) in &self.sinks {
            let mut last_error = String::new();
            let delivered = (0..ATTEMPTS).any(|attempt| {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                match self.deliver(sink, connection, event, &line) {
                    Ok(()) => true,
                    Err(error) => {
                        last_error = error;
                        false
                    }
                }
            });
            if !delivered {
                self.failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(SinkFailure {
                        sink: describe(&sink.target),
                        required: sink.required,
                        message: last_error,
                    });
            }
        }
        self.inner.event(event);
    }
}
