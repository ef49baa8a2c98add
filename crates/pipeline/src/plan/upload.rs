//! `[upload]`: where the artifacts go, with keys as secret references.

use toml::Spanned;

use super::Checker;
use super::raw::RawUpload;
use crate::error::Result;

/// The `[upload]` section; keys appear only as secret references.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    /// `s3://bucket/prefix`, `gs://…`, `az://…` or `file:///dir`.
    pub url: String,
    /// S3-compatible endpoint.
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// How to authenticate; secrets as references.
    pub credentials: UploadCredentials,
    /// Plain HTTP to the endpoint.
    pub allow_http: bool,
}

/// Object store credentials as they stand in the config: every secret is a
/// reference (`env:`, `file:`, `vault:`), resolved only when the upload runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCredentials {
    /// From the environment, as the provider's own tools read it.
    Ambient,
    /// `s3://`: `access_key_id` and `secret_access_key`.
    S3 {
        /// Reference to the access key id.
        access_key_id: String,
        /// Reference to the secret access key.
        secret_access_key: String,
    },
    /// `az://`: `account` and its `access_key`.
    Azure {
        /// The storage account name (not a secret).
        account: String,
        /// Reference to the account key.
        access_key: String,
    },
    /// `gs://`: `service_account_key`, the JSON key.
    Gcs {
        /// Reference to the JSON key.
        service_account_key: String,
    },
}

/// Validates `[upload]`: a known scheme, and only the settings that scheme
/// uses, so a key meant for one store is never silently ignored by another.
pub(super) fn validate(upload: &RawUpload, check: &Checker<'_>) -> Result<UploadPlan> {
    let url = upload.url.get_ref().clone();
    let Some((scheme, _)) = url
        .split_once("://")
        .filter(|(scheme, _)| ["s3", "gs", "az", "file"].contains(scheme))
    else {
        return Err(check.error(
            Some(upload.url.span()),
            "upload.url",
            format!("{url:?} is not s3://BUCKET[/PREFIX], gs://…, az://… or file:///DIR"),
        ));
    };
    let settings = [
        ("access_key_id", &upload.access_key_id, "s3"),
        ("secret_access_key", &upload.secret_access_key, "s3"),
        ("account", &upload.account, "az"),
        ("access_key", &upload.access_key, "az"),
        ("service_account_key", &upload.service_account_key, "gs"),
    ];
    for (name, value, owner) in settings {
        if let Some(value) = value
            && owner != scheme
        {
            return Err(check.error(
                Some(value.span()),
                &format!("upload.{name}"),
                format!("`{name}` is for {owner}:// stores, and the URL is {scheme}://"),
            ));
        }
    }
    if let Some(endpoint) = &upload.endpoint
        && endpoint.get_ref().starts_with("http://")
        && !upload.allow_http
    {
        return Err(check.error(
            Some(endpoint.span()),
            "upload.endpoint",
            format!(
                "{} is plain HTTP: set `allow_http = true` in [upload] to send artifacts (and keys) over it, or use https://",
                endpoint.get_ref()
            ),
        ));
    }
    if scheme == "file" && (upload.endpoint.is_some() || upload.region.is_some()) {
        return Err(check.error(
            Some(upload.url.span()),
            "upload",
            "a file:// store takes no endpoint or region",
        ));
    }
    for value in [
        &upload.access_key_id,
        &upload.secret_access_key,
        &upload.access_key,
        &upload.service_account_key,
    ]
    .into_iter()
    .flatten()
    {
        if sealcraft_secrets::SecretRef::parse(value.get_ref()).is_err() {
            return Err(check.error(
                Some(value.span()),
                "upload",
                "keys must be secret references (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD), never the keys themselves",
            ));
        }
    }
    let reference = |value: &Spanned<String>| value.get_ref().clone();
    let pair = |first: &Option<Spanned<String>>,
                second: &Option<Spanned<String>>,
                names: [&str; 2]|
     -> Result<Option<(String, String)>> {
        match (first, second) {
            (None, None) => Ok(None),
            (Some(first), Some(second)) => Ok(Some((reference(first), reference(second)))),
            (Some(given), None) | (None, Some(given)) => Err(check.error(
                Some(given.span()),
                "upload",
                format!("`{}` and `{}` go together", names[0], names[1]),
            )),
        }
    };
    let credentials = match scheme {
        "s3" => pair(
            &upload.access_key_id,
            &upload.secret_access_key,
            ["access_key_id", "secret_access_key"],
        )?
        .map(|(access_key_id, secret_access_key)| UploadCredentials::S3 {
            access_key_id,
            secret_access_key,
        }),
        "az" => pair(
            &upload.account,
            &upload.access_key,
            ["account", "access_key"],
        )?
        .map(|(account, access_key)| UploadCredentials::Azure {
            account,
            access_key,
        }),
        "gs" => upload
            .service_account_key
            .as_ref()
            .map(|key| UploadCredentials::Gcs {
                service_account_key: reference(key),
            }),
        _ => None,
    }
    .unwrap_or(UploadCredentials::Ambient);
    let url = match url.strip_prefix("file://") {
        Some(path) if !path.starts_with('/') => format!("file://{}", check.resolve(path).display()),
        _ => url,
    };
    Ok(UploadPlan {
        url,
        endpoint: upload
            .endpoint
            .as_ref()
            .map(|endpoint| endpoint.get_ref().clone()),
        region: upload.region.clone(),
        credentials,
        allow_http: upload.allow_http,
    })
}
