//! Blobs: existence checks, monolithic and chunked uploads (with cross-repo
//! mounts), and verified pulls.

use std::io::Read;

use sealcraft_oci::digest::{Digest, sha256_of};

use crate::auth::{pull, pull_push};
use crate::request::{Body, Request, with_query};
use crate::{Client, Error, Result, Upload};

impl Client {
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
                let count = reader
                    .read(&mut buffer[filled..])
                    .map_err(|source| content.local_error(source))?;
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
}
