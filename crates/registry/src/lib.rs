//! A client for the OCI distribution API.
//!
//! - Auth: anonymous, basic, and the bearer-token flow driven by the
//!   registry's `WWW-Authenticate` challenge (realm, service, scope), with
//!   tokens cached per scope. Credentials are [`Secret`]s.
//! - TLS with the system roots or a custom CA bundle; plain HTTP only for
//!   registries listed in [`ClientConfig::allow_http`].
//! - Manifest requests always send OCI and Docker `Accept` headers (the
//!   distribution registry answers 404 to an OCI manifest GET without them).
//! - Everything pulled is checked against its digest; pushed manifests are
//!   sent byte for byte, so their digest is the one computed locally.
//! - Retries with exponential backoff on 5xx, 429 and transport errors.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use sealcraft_oci::digest::Digest;
use sealcraft_secrets::Secret;

mod auth;
mod blobs;
mod manifests;
mod request;

use crate::request::Request;

/// Credentials for one registry.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or identity token.
    pub password: Secret,
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// PEM bundle of CAs to trust instead of the built-in roots.
    pub ca_bundle: Option<Vec<u8>>,
    /// Registries (`host:port`) that may be reached over plain HTTP.
    pub allow_http: Vec<String>,
    /// Credentials by registry (`host:port`).
    pub credentials: HashMap<String, Credentials>,
    /// Retries after the first attempt for retryable failures.
    pub retries: u32,
    /// Upload blobs larger than this in chunks of this size (0: always monolithic).
    pub chunk_size: u64,
}

/// Errors talking to a registry. They name the registry and request, never credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry could not be reached (connection, TLS, timeout).
    #[error("cannot reach {url}")]
    Transport {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// Plain HTTP was not allowed for this registry.
    #[error(
        "{registry} would be reached over plain HTTP, which is not allowed; pass --allow-http {registry} if that is intended"
    )]
    PlainHttpNotAllowed {
        /// The registry.
        registry: String,
    },
    /// The registry refused the credentials (or none were given).
    #[error("{registry}: authentication failed for {method} {path} ({status}){}", hint(*has_credentials))]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The method.
        method: &'static str,
        /// The path.
        path: String,
        /// The status.
        status: u16,
        /// Whether credentials were sent.
        has_credentials: bool,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: {status} {body}")]
    Status {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body (the registry's error document).
        body: String,
    },
    /// Content did not match its digest.
    #[error("{what} from {url} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: &'static str,
        /// The URL.
        url: String,
        /// The expected digest.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The token endpoint answered something unusable.
    #[error("token service {realm}")]
    Token {
        /// The realm URL (empty when the challenge names none).
        realm: String,
        /// What went wrong.
        #[source]
        problem: TokenProblem,
    },
    /// The CA bundle could not be parsed.
    #[error("the CA bundle is not PEM certificates")]
    BadCaBundle,
    /// Reading local content to upload failed.
    #[error("reading {what} to upload")]
    Local {
        /// The file, or `memory`.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Storing pulled content locally failed (a broken stream or a full disk).
    #[error("storing what {url} sent")]
    Store {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<sealcraft_oci::Error>,
    },
}

fn hint(has_credentials: bool) -> &'static str {
    if has_credentials {
        ": check the user name and password"
    } else {
        ": no credentials are configured for this registry"
    }
}

/// What went wrong getting a bearer token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// The `WWW-Authenticate` challenge has no realm.
    #[error("the challenge names no realm")]
    NoRealm,
    /// The token request could not be built from the challenge.
    #[error("the challenge makes no valid request")]
    Request(#[source] ureq::http::Error),
    /// The token service refused.
    #[error("answered {0}")]
    Status(u16),
    /// The answer is not the token JSON.
    #[error("the answer is not JSON")]
    BadAnswer(#[source] Box<ureq::Error>),
    /// The answer has neither `token` nor `access_token`.
    #[error("no token in the answer")]
    NoToken,
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Accept header for manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest as stored in the registry.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Its media type.
    pub media_type: String,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// sha256 of the bytes.
    pub digest: Digest,
}

/// Content to upload, re-readable for retries.
pub enum Upload<'a> {
    /// In memory.
    Bytes(&'a [u8]),
    /// A file.
    File(&'a std::path::Path),
}

impl Upload<'_> {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        match self {
            Self::Bytes(bytes) => Ok(Box::new(*bytes)),
            Self::File(path) => Ok(Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(path).map_err(|source| self.local_error(source))?,
            ))),
        }
    }

    /// A read failure, naming what was being read.
    fn local_error(&self, source: std::io::Error) -> Error {
        Error::Local {
            what: match self {
                Self::Bytes(_) => "memory".into(),
                Self::File(path) => path.display().to_string(),
            },
            source,
        }
    }
}

/// A registry client (one per run; it caches tokens).
pub struct Client {
    agent: ureq::Agent,
    config: ClientConfig,
    tokens: Mutex<HashMap<String, String>>,
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(bundle) = &config.ca_bundle {
            let certificates: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(bundle)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                    Ok(_) => None,
                    Err(_) => Some(Err(Error::BadCaBundle)),
                })
                .collect::<Result<_>>()?;
            if certificates.is_empty() {
                return Err(Error::BadCaBundle);
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certificates));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_redirects(5)
            .build()
            .new_agent();
        Ok(Self {
            agent,
            config,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn base_url(&self, registry: &str) -> String {
        let scheme = if self
            .config
            .allow_http
            .iter()
            .any(|allowed| allowed == registry)
        {
            "http"
        } else {
            "https"
        };
        // docker.io's API lives at registry-1.docker.io.
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        format!("{scheme}://{host}")
    }

    /// Checks that the registry speaks the distribution API (`GET /v2/`), authenticating if asked.
    pub fn ping(&self, registry: &str) -> Result<()> {
        self.send(
            Request::to("GET", registry, "/v2/".into(), String::new()),
            &[200],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::parse_challenge;

    #[test]
    fn challenges_parse() {
        let (scheme, parameters) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(parameters["realm"], "https://auth.example.com/token");
        assert_eq!(parameters["service"], "registry.example.com");
        assert_eq!(parameters["scope"], "repository:a/b:pull,push");
        let (scheme, parameters) = parse_challenge(r#"Basic realm="test-registry""#);
        assert_eq!(
            (scheme.as_str(), parameters["realm"].as_str()),
            ("Basic", "test-registry")
        );
    }

    #[test]
    fn plain_http_needs_permission() {
        let client = Client::new(ClientConfig::default()).unwrap();
        assert_eq!(client.base_url("127.0.0.1:5000"), "https://127.0.0.1:5000");
        let client = Client::new(ClientConfig {
            allow_http: vec!["127.0.0.1:5000".into()],
            ..ClientConfig::default()
        })
        .unwrap();
        assert_eq!(client.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(client.base_url("127.0.0.1:5001"), "https://127.0.0.1:5001");
    }
}
