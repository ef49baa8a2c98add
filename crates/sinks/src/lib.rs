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
use serde_json::Value;

/// One event as the sinks see it: its time and stage, and the whole event as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// RFC 3339 time.
    pub time: &'a str,
    /// The stage it is about.
    pub stage: &'a str,
    /// The event, as written to the local log.
    pub event: &'a Value,
}

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or stdout could not be written.
    #[error("writing to {target}")]
    Write {
        /// The sink.
        target: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The syslog server could not be reached or written to.
    #[error("{action} {address}")]
    Syslog {
        /// `connecting to` or `writing to`.
        action: &'static str,
        /// `host:port`.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP request failed in transport.
    #[error("{url}")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error status.
    #[error("{url}: answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
}

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
    /// The last error, with its causes (never a secret: sinks are described by address).
    pub message: String,
}

/// Delivers every event to each configured sink, retrying, and keeps
/// what could not be delivered.
pub struct Shipper {
    sinks: Vec<(Sink, Mutex<Option<TcpStream>>)>,
    agent: ureq::Agent,
    failures: Mutex<Vec<SinkFailure>>,
    hostname: String,
}

const ATTEMPTS: u32 = 3;

impl Shipper {
    /// Ships to `sinks`; `hostname` goes into syslog headers.
    pub fn new(sinks: Vec<Sink>, hostname: String) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Self {
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
        record: &Record<'_>,
        line: &str,
    ) -> Result<(), Error> {
        let write_error = |source| Error::Write {
            target: describe(&sink.target),
            source,
        };
        match &sink.target {
            SinkTarget::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| writeln!(file, "{line}"))
                .map_err(write_error),
            SinkTarget::Stdout => {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}").map_err(write_error)
            }
            SinkTarget::Syslog(address) => {
                // <14> = facility user, severity informational.
                let message = format!(
                    "<14>1 {} {} sealcraft {} {} - {line}\n",
                    record.time,
                    self.hostname,
                    std::process::id(),
                    record.stage
                );
                let mut guard = connection
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if guard.is_none() {
                    let stream = TcpStream::connect(address)
                        .and_then(|stream| {
                            stream.set_write_timeout(Some(Duration::from_secs(5)))?;
                            Ok(stream)
                        })
                        .map_err(|source| Error::Syslog {
                            action: "connecting to",
                            address: address.clone(),
                            source,
                        })?;
                    *guard = Some(stream);
                }
                let result = guard.as_mut().map_or(Ok(()), |stream| {
                    stream
                        .write_all(message.as_bytes())
                        .and_then(|()| stream.flush())
                });
                if let Err(source) = result {
                    *guard = None;
                    return Err(Error::Syslog {
                        action: "writing to",
                        address: address.clone(),
                        source,
                    });
                }
                Ok(())
            }
            SinkTarget::Loki { url, labels } => {
                let nanoseconds = time::OffsetDateTime::parse(
                    record.time,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_or(0, |moment| moment.unix_timestamp_nanos());
                let mut stream = labels.clone();
                stream.insert("stage".into(), record.stage.to_owned());
                let body = serde_json::json!({"streams": [{"stream": stream, "values": [[nanoseconds.to_string(), line]]}]});
                self.post(url, None, &body)
            }
            SinkTarget::Webhook { url, authorization } => {
                let body = serde_json::json!({"event": record.event, "sourcetype": "sealcraft", "time": record.time});
                self.post(url, authorization.as_ref(), &body)
            }
        }
    }

    fn post(
        &self,
        url: &str,
        authorization: Option<&Secret>,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization.expose());
        }
        let response = request
            .send(body.to_string())
            .map_err(|source| Error::Http {
                url: url.to_owned(),
                source: Box::new(source),
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Error::Status {
                url: url.to_owned(),
                status,
            })
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

impl Shipper {
    /// Delivers `record` to every sink; failures after retries are kept for [`Shipper::failures`].
    pub fn ship(&self, record: &Record<'_>) {
        let line = record.event.to_string();
        for (sink, connection) in &self.sinks {
            let mut last_error = String::new();
            let delivered = (0..ATTEMPTS).any(|attempt| {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                match self.deliver(sink, connection, record, &line) {
                    Ok(()) => true,
                    Err(error) => {
                        last_error = sealcraft_findings::chain(&error);
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
    }
}
