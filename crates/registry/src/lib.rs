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

use base64::Engine as _;
use sealcraft_oci::digest::{Digest, sha256_of};
use sealcraft_oci::manifest::media_type;
use sealcraft_secrets::Secret;

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
    #[error("token service {realm}: {reason}")]
    Token {
        /// The realm URL.
        realm: String,
        /// What went wrong.
        reason: String,
    },
    /// The CA bundle could not be parsed.
    #[error("the CA bundle is not PEM certificates")]
    BadCaBundle,
    /// Reading local content to upload failed.
    #[error("reading content to upload")]
    Local(#[source] std::io::Error),
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
                std::fs::File::open(path).map_err(Error::Local)?,
            ))),
        }
    }
}

/// A registry client (one per run; it caches tokens).
pub struct Client {
    agent: ureq::Agent,
    config: ClientConfig,
    tokens: Mutex<HashMap<String, String>>,
}

enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Upload(&'a Upload<'a>),
}

struct Request<'a> {
    method: &'static str,
    registry: &'a str,
    path_and_query: String,
    /// Full URL (an upload location), overriding registry + path.
    absolute: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Body<'a>,
    scope: String,
}

/// A JSON body; `url` names it in errors.
fn read_json<T: serde::de::DeserializeOwned>(
    response: &mut ureq::http::Response<ureq::Body>,
    url: String,
) -> Result<T> {
    response
        .body_mut()
        .read_json()
        .map_err(|source| Error::Transport {
            url,
            source: Box::new(source),
        })
}

impl<'a> Request<'a> {
    /// `method` on a path of `registry`, with no headers and no body.
    fn to(method: &'static str, registry: &'a str, path_and_query: String, scope: String) -> Self {
        Self {
            method,
            registry,
            path_and_query,
            absolute: None,
            headers: Vec::new(),
            body: Body::Empty,
            scope,
        }
    }

    /// `method` on an upload location the registry answered with.
    fn to_location(method: &'static str, registry: &'a str, url: String, scope: String) -> Self {
        Self {
            absolute: Some(url),
            ..Self::to(method, registry, String::new(), scope)
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
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

    /// Whether `repository` has the blob.
    pub fn has_blob(&self, registry: &str, repository: &str, digest: &Digest) -> Result<bool> {
        let response = self.send(
            Request::to(
                "HEAD",
                registry,
                format!("/v2/{repository}/blobs/{digest}"),
                pull_push(repository),
            ),
            &[200, 404],
        )?;
        Ok(response.status() == 200)
    }

    /// Uploads a blob unless the repository already has it; tries a
    /// cross-repository mount from `mount_from` first when given.
    pub fn push_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        content: &Upload<'_>,
        mount_from: Option<&str>,
    ) -> Result<()> {
        if self.has_blob(registry, repository, digest)? {
            return Ok(());
        }
        let mut scope = pull_push(repository);
        let mut query = String::new();
        if let Some(source) = mount_from.filter(|source| *source != repository) {
            query = format!("?mount={digest}&from={source}");
            scope.push_str(&format!(" repository:{source}:pull"));
        }
        let response = self.send(
            Request::to(
                "POST",
                registry,
                format!("/v2/{repository}/blobs/uploads/{query}"),
                scope.clone(),
            )
            .header("Content-Length", "0"),
            &[201, 202],
        )?;
        if response.status() == 201 {
            return Ok(());
        }
        let mut location = self.location(registry, &response)?;
        if self.config.chunk_size > 0 && size > self.config.chunk_size {
            location = self.upload_chunks(registry, &location, content, size, &scope)?;
            let url = with_query(&location, &format!("digest={digest}"));
            self.send(
                Request::to_location("PUT", registry, url, scope).header("Content-Length", "0"),
                &[201],
            )?;
            return Ok(());
        }
        let url = with_query(&location, &format!("digest={digest}"));
        self.send(
            Request::to_location("PUT", registry, url, scope)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", size.to_string())
                .body(Body::Upload(content)),
            &[201],
        )?;
        Ok(())
    }

    fn upload_chunks(
        &self,
        registry: &str,
        location: &str,
        content: &Upload<'_>,
        size: u64,
        scope: &str,
    ) -> Result<String> {
        let mut reader = content.open()?;
        let mut location = location.to_owned();
        let mut offset = 0u64;
        let chunk_size = usize::try_from(self.config.chunk_size).unwrap_or(usize::MAX);
        let mut buffer = vec![0u8; chunk_size];
        while offset < size {
            let mut filled = 0;
            while filled < chunk_size {
                let count = reader.read(&mut buffer[filled..]).map_err(Error::Local)?;
                if count == 0 {
                    break;
                }
                filled += count;
            }
            if filled == 0 {
                break;
            }
            let end = offset + filled as u64 - 1;
            let response = self.send(
                Request::to_location("PATCH", registry, location.clone(), scope.to_owned())
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{offset}-{end}"))
                    .header("Content-Length", filled.to_string())
                    .body(Body::Bytes(&buffer[..filled])),
                &[202],
            )?;
            location = self.location(registry, &response)?;
            offset = end + 1;
        }
        Ok(location)
    }

    fn location(
        &self,
        registry: &str,
        response: &ureq::http::Response<ureq::Body>,
    ) -> Result<String> {
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Error::Status {
                method: "POST",
                url: format!("{}/v2/…/blobs/uploads/", self.base_url(registry)),
                status: response.status().as_u16(),
                body: "no Location header in the upload response".into(),
            })?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location.to_owned()
            } else {
                format!("{}{location}", self.base_url(registry))
            },
        )
    }

    /// Stores a manifest under `reference` (a tag or its digest), byte for byte.
    pub fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let digest = sha256_of(bytes);
        let response = self.send(
            Request::to(
                "PUT",
                registry,
                format!("/v2/{repository}/manifests/{reference}"),
                pull_push(repository),
            )
            .header("Content-Type", media_type)
            .header("Content-Length", bytes.len().to_string())
            .body(Body::Bytes(bytes)),
            &[201],
        )?;
        if let Some(answered) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            && answered != digest.as_ref()
        {
            return Err(Error::DigestMismatch {
                what: "stored manifest",
                url: format!(
                    "{}/v2/{repository}/manifests/{reference}",
                    self.base_url(registry)
                ),
                expected: digest.to_string(),
                actual: answered.to_owned(),
            });
        }
        Ok(digest)
    }

    /// Fetches a manifest by tag or digest; `None` when there is none.
    pub fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let mut response = self.send(
            Request::to("GET", registry, path.clone(), pull(repository))
                .header("Accept", MANIFEST_ACCEPT),
            &[200, 404],
        )?;
        if response.status() == 404 {
            return Ok(None);
        }
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let url = format!("{}{path}", self.base_url(registry));
        let bytes = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|source| Error::Transport {
                url: url.clone(),
                source: Box::new(source),
            })?;
        let digest = sha256_of(&bytes);
        if reference.contains(':') && reference != digest.as_ref() {
            return Err(Error::DigestMismatch {
                what: "manifest",
                url,
                expected: reference.to_owned(),
                actual: digest.to_string(),
            });
        }
        let media_type = if media_type.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|value| value["mediaType"].as_str().map(str::to_owned))
                .unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned())
        } else {
            media_type
        };
        Ok(Some(FetchedManifest {
            media_type,
            bytes,
            digest,
        }))
    }

    /// Fetches a blob, verifying it against `digest` (at most `limit` bytes).
    pub fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let (mut response, url) = self.blob_response(registry, repository, digest)?;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|source| Error::Transport {
                url: url.clone(),
                source: Box::new(source),
            })?;
        let actual = sha256_of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: "blob",
                url,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// The response to a blob GET, and its URL for messages.
    fn blob_response(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<(ureq::http::Response<ureq::Body>, String)> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self.send(
            Request::to("GET", registry, path.clone(), pull(repository)),
            &[200],
        )?;
        Ok((response, format!("{}{path}", self.base_url(registry))))
    }

    /// Streams a blob into `layout`, verified against its digest and size,
    /// so large layers never sit in memory; nothing is stored if it does
    /// not match.
    pub fn pull_blob_into(
        &self,
        registry: &str,
        repository: &str,
        descriptor: &sealcraft_oci::manifest::Descriptor,
        layout: &sealcraft_oci::layout::Layout,
    ) -> Result<()> {
        if layout.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let (mut response, url) = self.blob_response(registry, repository, &descriptor.digest)?;
        let reader = response
            .body_mut()
            .with_config()
            .limit(descriptor.size.saturating_add(1))
            .reader();
        layout
            .put_blob_verified(reader, &descriptor.digest, descriptor.size)
            .map_err(|source| match source {
                sealcraft_oci::Error::BlobMismatch { actual_digest, .. } => Error::DigestMismatch {
                    what: "blob",
                    url: url.clone(),
                    expected: descriptor.digest.to_string(),
                    actual: actual_digest,
                },
                other => Error::Store {
                    url: url.clone(),
                    source: Box::new(other),
                },
            })
    }

    /// Lists every tag of a repository, following pagination.
    pub fn list_tags(&self, registry: &str, repository: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repository}/tags/list?n=1000"));
        while let Some(path) = next.take() {
            let mut response = self.send(
                Request::to("GET", registry, path.clone(), pull(repository)),
                &[200, 404],
            )?;
            if response.status() == 404 {
                break;
            }
            next = response
                .headers()
                .get("link")
                .and_then(|value| value.to_str().ok())
                .and_then(|link| link.split(';').next())
                .map(|target| {
                    target
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_owned()
                });
            let url = format!("{}{path}", self.base_url(registry));
            let list: TagList = read_json(&mut response, url)?;
            tags.extend(list.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    /// Manifests that refer to `digest`: the referrers API, or the
    /// `sha256-<hex>` index of the referrers tag schema where the API is missing.
    pub fn referrers(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Vec<sealcraft_oci::manifest::Descriptor>> {
        let path = format!("/v2/{repository}/referrers/{digest}");
        let mut response = self.send(
            Request::to("GET", registry, path.clone(), pull(repository))
                .header("Accept", media_type::OCI_INDEX),
            &[200, 404, 400],
        )?;
        let is_index = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with(media_type::OCI_INDEX));
        if response.status() == 200 && is_index {
            let url = format!("{}{path}", self.base_url(registry));
            let index: sealcraft_oci::manifest::Index = read_json(&mut response, url)?;
            return Ok(index.manifests);
        }
        let fallback_tag = format!("{}-{}", digest.algorithm(), digest.digest());
        match self.get_manifest(registry, repository, &fallback_tag)? {
            None => Ok(Vec::new()),
            Some(fetched) => {
                let index: sealcraft_oci::manifest::Index = serde_json::from_slice(&fetched.bytes)
                    .map_err(|error| Error::Status {
                        method: "GET",
                        url: format!(
                            "{}/v2/{repository}/manifests/{fallback_tag}",
                            self.base_url(registry)
                        ),
                        status: 200,
                        body: format!("the referrers index is malformed: {error}"),
                    })?;
                Ok(index.manifests)
            }
        }
    }

    fn send(
        &self,
        request: Request<'_>,
        expected: &[u16],
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = request.absolute.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                self.base_url(request.registry),
                request.path_and_query
            )
        });
        if url.starts_with("http://")
            && !self
                .config
                .allow_http
                .iter()
                .any(|allowed| allowed == request.registry)
        {
            return Err(Error::PlainHttpNotAllowed {
                registry: request.registry.to_owned(),
            });
        }
        let mut attempt = 0;
        let mut authorization = self.cached_authorization(request.registry, &request.scope);
        let mut authenticated_once = false;
        loop {
            let outcome = self.attempt(&request, &url, authorization.as_deref());
            let retryable = match &outcome {
                Ok(response) => {
                    matches!(response.status().as_u16(), 429 | 500..=599)
                        && !expected.contains(&response.status().as_u16())
                }
                Err(Error::Transport { source, .. }) => is_retryable_transport(source),
                Err(_) => false,
            };
            if retryable && attempt < self.config.retries {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 * (1 << attempt.min(6))));
                continue;
            }
            let response = outcome?;
            let status = response.status().as_u16();
            if status == 401 && !authenticated_once {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                authorization = Some(self.authenticate(
                    request.registry,
                    &challenge,
                    &request.scope,
                    request.method,
                    &request.path_and_query,
                )?);
                authenticated_once = true;
                continue;
            }
            if status == 401 || status == 403 {
                return Err(Error::Unauthorized {
                    registry: request.registry.to_owned(),
                    method: request.method,
                    path: request.path_and_query.clone(),
                    status,
                    has_credentials: self.config.credentials.contains_key(request.registry),
                });
            }
            if !expected.contains(&status) {
                let mut response = response;
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .lossy_utf8(true)
                    .read_to_string()
                    .unwrap_or_default();
                return Err(Error::Status {
                    method: request.method,
                    url,
                    status,
                    body: body.trim().chars().take(400).collect(),
                });
            }
            return Ok(response);
        }
    }

    fn attempt(
        &self,
        request: &Request<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let transport = |source: ureq::Error| Error::Transport {
            url: url.to_owned(),
            source: Box::new(source),
        };
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(authorization) = authorization {
            builder = builder.header("Authorization", authorization);
        }
        let response = match &request.body {
            Body::Empty => self
                .agent
                .run(builder.body(()).map_err(|error| transport(error.into()))?),
            Body::Bytes(bytes) => self.agent.run(
                builder
                    .body(*bytes)
                    .map_err(|error| transport(error.into()))?,
            ),
            Body::Upload(upload) => {
                let mut reader = upload.open()?;
                let body = ureq::SendBody::from_reader(&mut reader);
                self.agent.run(
                    builder
                        .body(body)
                        .map_err(|error| transport(error.into()))?,
                )
            }
        };
        response.map_err(transport)
    }

    fn cached_authorization(&self, registry: &str, scope: &str) -> Option<String> {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens
            .get(&format!("{registry} {scope}"))
            .or_else(|| tokens.get(&format!("{registry} *")))
            .cloned()
    }

    fn authenticate(
        &self,
        registry: &str,
        challenge: &str,
        scope: &str,
        method: &'static str,
        path: &str,
    ) -> Result<String> {
        let credentials = self.config.credentials.get(registry);
        let (scheme, parameters) = parse_challenge(challenge);
        let unauthorized = || Error::Unauthorized {
            registry: registry.to_owned(),
            method,
            path: path.to_owned(),
            status: 401,
            has_credentials: credentials.is_some(),
        };
        let authorization = match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let credentials = credentials.ok_or_else(unauthorized)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    credentials.username,
                    credentials.password.expose()
                ));
                let value = format!("Basic {encoded}");
                self.tokens
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(format!("{registry} *"), value.clone());
                return Ok(value);
            }
            "bearer" => {
                let realm = parameters.get("realm").ok_or_else(|| Error::Token {
                    realm: String::new(),
                    reason: "the challenge names no realm".into(),
                })?;
                let mut query: Vec<String> = Vec::new();
                if let Some(service) = parameters.get("service") {
                    query.push(format!("service={}", encode_query(service)));
                }
                let mut scopes: Vec<String> = parameters
                    .get("scope")
                    .map(|scope| scope.split(' ').map(str::to_owned).collect())
                    .unwrap_or_default();
                for extra in scope.split(' ').filter(|extra| !extra.is_empty()) {
                    if !scopes.iter().any(|existing| existing == extra) {
                        scopes.push(extra.to_owned());
                    }
                }
                for scope in &scopes {
                    query.push(format!("scope={}", encode_query(scope)));
                }
                let url = if query.is_empty() {
                    realm.clone()
                } else {
                    format!(
                        "{realm}{}{}",
                        if realm.contains('?') { '&' } else { '?' },
                        query.join("&")
                    )
                };
                let mut builder = ureq::http::Request::builder().method("GET").uri(&url);
                if let Some(credentials) = credentials {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        credentials.username,
                        credentials.password.expose()
                    ));
                    builder = builder.header("Authorization", format!("Basic {encoded}"));
                }
                let request = builder.body(()).map_err(|error| Error::Token {
                    realm: realm.clone(),
                    reason: error.to_string(),
                })?;
                let mut response = self.agent.run(request).map_err(|source| Error::Transport {
                    url: realm.clone(),
                    source: Box::new(source),
                })?;
                if response.status() == 401 || response.status() == 403 {
                    return Err(unauthorized());
                }
                if response.status() != 200 {
                    return Err(Error::Token {
                        realm: realm.clone(),
                        reason: format!("answered {}", response.status()),
                    });
                }
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let token: TokenResponse =
                    response
                        .body_mut()
                        .read_json()
                        .map_err(|error| Error::Token {
                            realm: realm.clone(),
                            reason: error.to_string(),
                        })?;
                let token = token
                    .token
                    .or(token.access_token)
                    .ok_or_else(|| Error::Token {
                        realm: realm.clone(),
                        reason: "no token in the answer".into(),
                    })?;
                format!("Bearer {token}")
            }
            _ => return Err(unauthorized()),
        };
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("{registry} {scope}"), authorization.clone());
        Ok(authorization)
    }
}

fn is_retryable_transport(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed
    )
}

fn pull(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn pull_push(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn with_query(url: &str, query: &str) -> String {
    format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' })
}

fn encode_query(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Parses `Bearer realm="…",service="…",scope="…"` into the scheme and its parameters.
fn parse_challenge(challenge: &str) -> (String, HashMap<String, String>) {
    let challenge = challenge.trim();
    let (scheme, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
    let mut parameters = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        parameters.insert(key, value.to_owned());
        rest = remaining.trim_start_matches([',', ' ']);
    }
    (scheme.to_owned(), parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

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
