//! Release artifacts in object storage.
//!
//! One API over `s3://` (any S3-compatible endpoint, path-style requests,
//! SigV4), `gs://`, `az://` and `file://` (the embedded default), through
//! the `object_store` crate. Uploads are write-once: an object that already
//! exists is never overwritten; if its content is identical the upload
//! counts as done (so a rerun converges), otherwise it is a conflict. Every
//! upload is read back and checked (size and sha256). Transient failures
//! are retried with backoff by the client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use sealcraft_secrets::Secret;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Where and how to upload.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or `file:///dir`.
    pub url: String,
    /// A custom endpoint: an S3-compatible server (`http://127.0.0.1:8014`),
    /// or an Azure blob account URL (`http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: Option<String>,
    /// S3: the region.
    pub region: Option<String>,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Allow a plain-HTTP endpoint.
    pub allow_http: bool,
    /// Retries of a failed request.
    pub retries: usize,
    /// Provider settings the caller took from the environment (`AWS_*`;
    /// `GOOGLE_*` and `SERVICE_ACCOUNT`; `AZURE_*` and `IDENTITY_ENDPOINT`),
    /// applied before the explicit settings above. The store reads no
    /// environment itself.
    pub environment: Vec<(String, Secret)>,
}

/// The environment variables a provider's own tools read, as the caller
/// should collect them for [`StoreConfig::environment`].
pub fn provider_variable(name: &str) -> bool {
    ["AWS_", "GOOGLE_", "AZURE_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || matches!(name, "SERVICE_ACCOUNT" | "IDENTITY_ENDPOINT")
}

/// The settings of `environment` that start with `prefix`, as config keys.
fn provider_settings<'a, K: std::str::FromStr>(
    environment: &'a [(String, Secret)],
    prefix: &'a str,
) -> impl Iterator<Item = (K, &'a str)> + 'a {
    environment.iter().filter_map(move |(name, value)| {
        if !name.starts_with(prefix) {
            return None;
        }
        let key = name.to_ascii_lowercase().parse().ok()?;
        Some((key, value.expose()))
    })
}

/// The value of one variable of `environment`.
fn provider_value<'a>(environment: &'a [(String, Secret)], name: &str) -> Option<&'a str> {
    environment
        .iter()
        .find(|(candidate, _)| candidate == name)
        .map(|(_, value)| value.expose())
}

/// Credentials for a store, each secret resolved through the secrets crate.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// Whatever the environment provides (`AWS_*`, `GOOGLE_*`, `AZURE_STORAGE_*`,
    /// instance metadata), as each provider's own tools read it.
    #[default]
    Ambient,
    /// An S3 access key pair (SigV4).
    S3 {
        /// The access key id.
        access_key_id: Secret,
        /// The secret access key.
        secret_access_key: Secret,
    },
    /// An Azure storage account and its shared key.
    Azure {
        /// The account name.
        account: String,
        /// The account's access key (base64).
        access_key: Secret,
    },
    /// A Google Cloud service account key (the JSON file's content).
    Gcs {
        /// The JSON key.
        service_account_key: Secret,
    },
}

impl Credentials {
    /// The URL scheme these credentials belong to, if any.
    fn scheme(&self) -> Option<&'static str> {
        match self {
            Self::Ambient => None,
            Self::S3 { .. } => Some("s3"),
            Self::Azure { .. } => Some("az"),
            Self::Gcs { .. } => Some("gs"),
        }
    }
}

/// One file to upload, and its key under the prefix.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The local file.
    pub local: PathBuf,
    /// Its key, relative to the prefix (`sboms/amd64/sbom-….json`).
    pub key: String,
}

/// One uploaded object.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// The full key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// `sha256:<hex>` as read back.
    pub sha256: String,
    /// The object was already there with this content.
    pub already_present: bool,
}

/// What an upload run did.
#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    /// The store URL (without credentials, which never appear in it).
    pub location: String,
    /// The objects, in upload order.
    pub objects: Vec<Uploaded>,
}

/// Errors of uploads. They name the store and key, never credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not one of the supported schemes.
    #[error(
        "{url:?} is not an object store URL (s3://BUCKET[/PREFIX], gs://…, az://…, file:///DIR)"
    )]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// The credentials are for another kind of store.
    #[error("{url} is a {scheme}:// store; the credentials given are for {credentials}:// stores")]
    CredentialsMismatch {
        /// The URL.
        url: String,
        /// The URL's scheme.
        scheme: String,
        /// The scheme the credentials are for.
        credentials: &'static str,
    },
    /// The store could not be set up.
    #[error("configuring {url}")]
    Configure {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local file could not be read.
    #[error("reading {path}")]
    Local {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A request failed (after retries).
    #[error("{action} {location}/{key}")]
    Request {
        /// What was being done.
        action: &'static str,
        /// The store.
        location: String,
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The object exists with other content: write-once refuses to overwrite it.
    #[error(
        "{location}/{key} already exists with different content (sha256 {existing}); artifacts are write-once"
    )]
    Conflict {
        /// The store.
        location: String,
        /// The key.
        key: String,
        /// The existing content's digest.
        existing: String,
    },
    /// What was read back differs from what was uploaded.
    #[error(
        "{location}/{key} reads back as {actual_size} bytes {actual}, not the uploaded {expected_size} bytes {expected}"
    )]
    Verification {
        /// The store.
        location: String,
        /// The key.
        key: String,
        /// Uploaded size.
        expected_size: u64,
        /// Read-back size.
        actual_size: u64,
        /// Uploaded digest.
        expected: String,
        /// Read-back digest.
        actual: String,
    },
    /// The endpoint is plain HTTP and the config does not allow it.
    #[error("{endpoint} is plain HTTP; allow it explicitly (allow_http) or use https://")]
    PlainHttp {
        /// The endpoint.
        endpoint: String,
    },
    /// The async runtime could not start.
    #[error("starting the I/O runtime")]
    Runtime(#[source] std::io::Error),
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn open(config: &StoreConfig) -> Result<(Arc<dyn ObjectStore>, String), Error> {
    let bad = || Error::BadUrl {
        url: config.url.clone(),
    };
    let configure = |source: object_store::Error| Error::Configure {
        url: config.url.clone(),
        source: Box::new(source),
    };
    let retry = RetryConfig {
        max_retries: config.retries,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    };
    if let Some(endpoint) = &config.endpoint
        && endpoint.starts_with("http://")
        && !config.allow_http
    {
        return Err(Error::PlainHttp {
            endpoint: endpoint.clone(),
        });
    }
    let (scheme, rest) = config.url.split_once("://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').map_or((rest, ""), |(bucket, prefix)| {
        (bucket, prefix.trim_matches('/'))
    });
    if let Some(credentials) = config.credentials.scheme()
        && credentials != scheme
    {
        return Err(Error::CredentialsMismatch {
            url: config.url.clone(),
            scheme: scheme.to_owned(),
            credentials,
        });
    }
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" => {
            let mut builder = object_store::aws::AmazonS3Builder::new();
            for (key, value) in provider_settings(&config.environment, "AWS_") {
                builder = builder.with_config(key, value);
            }
            let mut builder = builder
                .with_bucket_name(bucket)
                .with_region(config.region.clone().unwrap_or_else(|| "us-east-1".into()))
                .with_virtual_hosted_style_request(false)
                .with_allow_http(config.allow_http)
                .with_retry(retry);
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Credentials::S3 {
                access_key_id,
                secret_access_key,
            } = &config.credentials
            {
                builder = builder
                    .with_access_key_id(access_key_id.expose())
                    .with_secret_access_key(secret_access_key.expose());
            }
            Arc::new(builder.build().map_err(configure)?)
        }
        "gs" => {
            let mut builder = object_store::gcp::GoogleCloudStorageBuilder::new();
            if let Some(path) = provider_value(&config.environment, "SERVICE_ACCOUNT") {
                builder = builder.with_service_account_path(path);
            }
            for (key, value) in provider_settings(&config.environment, "GOOGLE_") {
                builder = builder.with_config(key, value);
            }
            let mut builder = builder.with_bucket_name(bucket).with_retry(retry);
            if let Credentials::Gcs {
                service_account_key,
            } = &config.credentials
            {
                builder = builder.with_service_account_key(service_account_key.expose());
            }
            Arc::new(builder.build().map_err(configure)?)
        }
        "az" => {
            let mut builder = object_store::azure::MicrosoftAzureBuilder::new();
            for (key, value) in provider_settings(&config.environment, "AZURE_") {
                builder = builder.with_config(key, value);
            }
            if let Some(endpoint) = provider_value(&config.environment, "IDENTITY_ENDPOINT") {
                builder = builder.with_msi_endpoint(endpoint);
            }
            let mut builder = builder
                .with_container_name(bucket)
                .with_allow_http(config.allow_http)
                .with_retry(retry);
            if let Some(endpoint) = &config.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            if let Credentials::Azure {
                account,
                access_key,
            } = &config.credentials
            {
                builder = builder
                    .with_account(account)
                    .with_access_key(access_key.expose());
            }
            Arc::new(builder.build().map_err(configure)?)
        }
        "file" => {
            let directory = PathBuf::from(format!("/{}", rest.trim_start_matches('/')));
            std::fs::create_dir_all(&directory).map_err(|source| Error::Local {
                path: directory.clone(),
                source,
            })?;
            return Ok((
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&directory)
                        .map_err(configure)?,
                ),
                String::new(),
            ));
        }
        _ => return Err(bad()),
    };
    Ok((store, prefix.to_owned()))
}

/// Uploads `uploads` (write-once, verified) and reports every object.
pub fn upload(config: &StoreConfig, uploads: &[Upload]) -> Result<UploadReport, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let (store, prefix) = open(config)?;
    let location = config.url.trim_end_matches('/').to_owned();
    let mut objects = Vec::new();
    for item in uploads {
        let bytes = std::fs::read(&item.local).map_err(|source| Error::Local {
            path: item.local.clone(),
            source,
        })?;
        let key = if prefix.is_empty() {
            item.key.clone()
        } else {
            format!("{prefix}/{}", item.key)
        };
        let object_path = ObjectPath::from(key.as_str());
        let expected = sha256(&bytes);
        let request = |action, source: object_store::Error| Error::Request {
            action,
            location: location.clone(),
            key: item.key.clone(),
            source: Box::new(source),
        };
        let put = runtime.block_on(store.put_opts(
            &object_path,
            PutPayload::from(bytes.clone()),
            PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            },
        ));
        let already_present = match put {
            Ok(_) => false,
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => true,
            Err(source) => return Err(request("uploading", source)),
        };
        let read = runtime
            .block_on(async { store.get(&object_path).await?.bytes().await })
            .map_err(|source| request("reading back", source))?;
        let actual = sha256(&read);
        if already_present && actual != expected {
            return Err(Error::Conflict {
                location,
                key: item.key.clone(),
                existing: actual,
            });
        }
        if actual != expected || read.len() != bytes.len() {
            return Err(Error::Verification {
                location,
                key: item.key.clone(),
                expected_size: bytes.len() as u64,
                actual_size: read.len() as u64,
                expected,
                actual,
            });
        }
        objects.push(Uploaded {
            key,
            size: bytes.len() as u64,
            sha256: actual,
            already_present,
        });
    }
    Ok(UploadReport { location, objects })
}

/// The guide's layout for one architecture's artifacts: `(local file, key)`
/// for every file of `run_dir` that belongs in object storage, `.sig` files included.
pub fn release_layout(run_dir: &Path, architecture: &str) -> Vec<Upload> {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut uploads: Vec<Upload> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".sig").unwrap_or(&name);
            let folder = if base.starts_with("sbom-") {
                "sboms"
            } else if base.starts_with("attestation-") {
                "attestations"
            } else if base.starts_with("scan-") {
                "scans"
            } else {
                return None;
            };
            if !base.ends_with(".json") {
                return None;
            }
            Some(Upload {
                local: entry.path(),
                key: format!("{folder}/{architecture}/{name}"),
            })
        })
        .collect();
    uploads.sort_by(|a, b| a.key.cmp(&b.key));
    uploads
}
