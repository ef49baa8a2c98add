//! Manifests by tag or digest (with OCI and Docker `Accept` headers), tag
//! listing with pagination, and referrers with the tag-schema fallback.

use sealcraft_oci::digest::{Digest, sha256_of};
use sealcraft_oci::manifest::media_type;

use crate::auth::{pull, pull_push};
use crate::request::{Body, Request, read_json};
use crate::{Client, Error, FetchedManifest, MANIFEST_ACCEPT, Result};

impl Client {
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
}
