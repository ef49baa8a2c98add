//! A Dockerfile build: `[build] dockerfile` with its context, target,
//! arguments, base mappings, secrets (as references), network and runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sealcraft_oci::digest::parse_digest;
use toml::Spanned;

use super::Checker;
use super::raw::RawBuild;
use crate::error::Result;

/// A Dockerfile build; secrets appear only as references.
#[derive(Debug, Clone)]
pub struct DockerfilePlan {
    /// The Dockerfile.
    pub path: PathBuf,
    /// sha256 of its bytes.
    pub digest: String,
    /// Its parsed form.
    pub dockerfile: sealcraft_dockerfile::Dockerfile,
    /// The build context.
    pub context: PathBuf,
    /// The stage to build (the last one by default).
    pub target: Option<String>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// Images standing in for the names FROM gives (`oci:` paths made absolute).
    pub bases: BTreeMap<String, String>,
    /// Secrets for `RUN --mount=type=secret`: id and secret reference.
    pub secrets: Vec<(String, String)>,
    /// Refuse base images without a digest (on unless turned off).
    pub require_pinned: bool,
    /// RUN steps without network.
    pub network_none: bool,
    /// The OCI runtime.
    pub runtime: sealcraft_runtime::RuntimeKind,
    /// The build store, when not the default.
    pub cache_dir: Option<PathBuf>,
}

/// Validates the Dockerfile build: the file parses, the target exists, and
/// (unless turned off) every base image it would use is pinned by digest.
pub(super) fn validate(
    raw: &RawBuild,
    dockerfile: &Spanned<String>,
    check: &Checker<'_>,
    architectures: &[String],
) -> Result<DockerfilePlan> {
    let config = |span: std::ops::Range<usize>, key: &'static str, message: String| {
        check.error(Some(span), key, message)
    };
    let path = check.resolve(dockerfile.get_ref());
    let bytes = std::fs::read(&path).map_err(|error| {
        config(
            dockerfile.span(),
            "build.dockerfile",
            format!("{}: {error}", path.display()),
        )
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| {
        config(
            dockerfile.span(),
            "build.dockerfile",
            format!("{} is not UTF-8 text", path.display()),
        )
    })?;
    let parsed = sealcraft_dockerfile::parse_file(&path, &text)?;
    let context = match &raw.context {
        Some(context) => check.resolve(context.get_ref()),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    if !context.is_dir() {
        let span = raw
            .context
            .as_ref()
            .map_or(dockerfile.span(), Spanned::span);
        return Err(config(
            span,
            "build.context",
            format!("{} is not a directory", context.display()),
        ));
    }
    let mut bases = BTreeMap::new();
    for (name, image) in &raw.bases {
        let image_text = image.get_ref();
        let mapped = match image_text.strip_prefix("oci:") {
            Some(rest) if !rest.starts_with('/') => {
                let path = std::path::absolute(check.resolve(rest))
                    .unwrap_or_else(|_| check.resolve(rest));
                format!("oci:{}", path.display())
            }
            _ => image_text.clone(),
        };
        bases.insert(name.clone(), mapped);
    }
    let require_pinned = raw.require_pinned.unwrap_or(true);
    for architecture in architectures {
        let images = sealcraft_dockerfile::external_images(
            &parsed,
            &path,
            raw.target.as_deref(),
            &raw.args,
            architecture,
        )?;
        for image in images {
            let name = bases.get(&image.name).unwrap_or(&image.name);
            let pinned = name
                .rsplit_once('@')
                .is_some_and(|(_, digest)| parse_digest(digest).is_ok());
            if require_pinned && !pinned {
                return Err(sealcraft_dockerfile::Error::at(
                    &path,
                    image.line,
                    sealcraft_dockerfile::Error::NotPinned { name: name.clone() },
                )
                .into());
            }
        }
    }
    let mut secrets = Vec::new();
    for secret in &raw.secrets {
        if sealcraft_secrets::SecretRef::parse(secret.source.get_ref()).is_err() {
            return Err(config(
                secret.source.span(),
                "build.secrets.source",
                "must be a secret reference (env:NAME, file:PATH or vault:MOUNT/PATH#FIELD)".into(),
            ));
        }
        secrets.push((secret.id.get_ref().clone(), secret.source.get_ref().clone()));
    }
    let network_none = match raw
        .network
        .as_ref()
        .map(|value| (value.get_ref().as_str(), value.span()))
    {
        None | Some(("default" | "host", _)) => false,
        Some(("none", _)) => true,
        Some((other, span)) => {
            return Err(config(
                span,
                "build.network",
                format!("{other:?} is not default or none"),
            ));
        }
    };
    let runtime = match &raw.runtime {
        None => sealcraft_runtime::RuntimeKind::Runc,
        Some(value) => {
            sealcraft_runtime::RuntimeKind::from_name(value.get_ref()).ok_or_else(|| {
                config(
                    value.span(),
                    "build.runtime",
                    format!("{:?} is not runc or crun", value.get_ref()),
                )
            })?
        }
    };
    Ok(DockerfilePlan {
        digest: sealcraft_oci::digest::sha256_of(&bytes).to_string(),
        path,
        dockerfile: parsed,
        context,
        target: raw.target.clone(),
        args: raw.args.clone(),
        bases,
        secrets,
        require_pinned,
        network_none,
        runtime,
        cache_dir: raw.cache_dir.as_deref().map(|path| check.resolve(path)),
    })
}
