//! One request to a registry: built by [`Request::to`], sent by
//! [`Client::send`] with authentication and retries.

use std::time::Duration;

use crate::{Client, Error, Result, Upload};

pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Upload(&'a Upload<'a>),
}

pub(crate) struct Request<'a> {
    pub(crate) method: &'static str,
    pub(crate) registry: &'a str,
    pub(crate) path_and_query: String,
    /// Full URL (an upload location), overriding registry + path.
    pub(crate) absolute: Option<String>,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body<'a>,
    pub(crate) scope: String,
}

/// A JSON body; `url` names it in errors.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
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
    pub(crate) fn to(
        method: &'static str,
        registry: &'a str,
        path_and_query: String,
        scope: String,
    ) -> Self {
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
    pub(crate) fn to_location(
        method: &'static str,
        registry: &'a str,
        url: String,
        scope: String,
    ) -> Self {
        Self {
            absolute: Some(url),
            ..Self::to(method, registry, String::new(), scope)
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

impl Client {
    pub(crate) fn send(
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
}

fn is_retryable_transport(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed
    )
}

pub(crate) fn with_query(url: &str, query: &str) -> String {
    format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' })
}

pub(crate) fn encode_query(value: &str) -> String {
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
