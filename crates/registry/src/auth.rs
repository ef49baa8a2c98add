//! Authentication: basic credentials, or the bearer-token flow the
//! registry's `WWW-Authenticate` challenge asks for, tokens cached per scope.

use std::collections::HashMap;

use base64::Engine as _;

use crate::request::encode_query;
use crate::{Client, Error, Result, TokenProblem};

impl Client {
    pub(crate) fn cached_authorization(&self, registry: &str, scope: &str) -> Option<String> {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens
            .get(&format!("{registry} {scope}"))
            .or_else(|| tokens.get(&format!("{registry} *")))
            .cloned()
    }

    pub(crate) fn authenticate(
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
                    problem: TokenProblem::NoRealm,
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
                    problem: TokenProblem::Request(error),
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
                        problem: TokenProblem::Status(response.status().as_u16()),
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
                            problem: TokenProblem::BadAnswer(Box::new(error)),
                        })?;
                let token = token
                    .token
                    .or(token.access_token)
                    .ok_or_else(|| Error::Token {
                        realm: realm.clone(),
                        problem: TokenProblem::NoToken,
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

pub(crate) fn pull(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(crate) fn pull_push(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Parses `Bearer realm="…",service="…",scope="…"` into the scheme and its parameters.
pub(crate) fn parse_challenge(challenge: &str) -> (String, HashMap<String, String>) {
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
