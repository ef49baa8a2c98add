//! Native assembly: `[base]`, `[user]`, `[[files]]` and `[config]`.

use sealcraft_assemble::{BaseImage, FileCopy, UserSpec};
use sealcraft_oci::digest::parse_digest;
use sealcraft_oci::image::ImageName;
use sealcraft_oci::manifest::RuntimeConfig;
use toml::Spanned;

use super::Checker;
use super::raw::{RawConfig, RawRuntime};
use crate::error::Result;

/// Native assembly.
#[derive(Debug, Clone)]
pub struct AssemblyPlan {
    /// The digest-pinned base image.
    pub base: BaseImage,
    /// Host files to copy.
    pub files: Vec<FileCopy>,
    /// The non-root user to add.
    pub user: Option<UserSpec>,
    /// Runtime config.
    pub runtime: RuntimeConfig,
}

/// Validates the assembly sections: a pinned base, a non-root user, host
/// files that exist, and a runtime config that names no root user.
pub(super) fn validate(raw: &RawConfig, check: &Checker<'_>) -> Result<AssemblyPlan> {
    let Some(base_section) = raw.base.as_ref().map(Spanned::get_ref) else {
        return Err(check.error(
                None,
                "base",
                "say how to make the image: a base to assemble on ([base] image = \"oci:DIR:TAG@sha256:…\") or a Dockerfile ([build] dockerfile = \"Dockerfile\")",
            ));
    };
    let base = parse_base(&base_section.image, check)?;

    let user = match raw.user.as_ref().map(Spanned::get_ref) {
        None => None,
        Some(user) => {
            if *user.uid.get_ref() == 0 {
                return Err(check.error(
                    Some(user.uid.span()),
                    "user.uid",
                    "the image user must not be root (uid 0)",
                ));
            }
            let name = user.name.get_ref().clone();
            Some(UserSpec {
                uid: *user.uid.get_ref(),
                gid: user.gid.unwrap_or(*user.uid.get_ref()),
                home: user.home.clone().unwrap_or_else(|| format!("/home/{name}")),
                shell: user
                    .shell
                    .clone()
                    .unwrap_or_else(|| "/usr/sbin/nologin".into()),
                name,
            })
        }
    };

    let mut files = Vec::new();
    for file in raw.files.iter().map(Spanned::get_ref) {
        let source = check.resolve(file.source.get_ref());
        if !source.exists() {
            return Err(check.error(
                Some(file.source.span()),
                "files.source",
                format!("{} does not exist", source.display()),
            ));
        }
        if !file.destination.get_ref().starts_with('/') {
            return Err(check.error(
                Some(file.destination.span()),
                "files.destination",
                "must be an absolute path in the image",
            ));
        }
        let mode = match &file.mode {
            None => None,
            Some(mode) => Some(
                u32::from_str_radix(mode.get_ref().trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|mode| *mode <= 0o7777)
                    .ok_or_else(|| {
                        check.error(
                            Some(mode.span()),
                            "files.mode",
                            format!("{:?} is not an octal mode such as \"0755\"", mode.get_ref()),
                        )
                    })?,
            ),
        };
        let (uid, gid) = match &file.owner {
            None => (0, 0),
            Some(owner) => parse_owner(owner.get_ref(), user.as_ref()).ok_or_else(|| {
                check.error(
                    Some(owner.span()),
                    "files.owner",
                    format!("{:?} is not UID:GID or the name of [user]", owner.get_ref()),
                )
            })?,
        };
        files.push(FileCopy {
            source,
            destination: file.destination.get_ref().clone(),
            mode,
            directory_mode: None,
            uid,
            gid,
        });
    }

    let default_runtime = RawRuntime::default();
    let runtime = raw
        .config
        .as_ref()
        .map_or(&default_runtime, Spanned::get_ref);
    if let Some(ports) = &runtime.exposed_ports {
        for port in ports {
            let (number, protocol) = port
                .get_ref()
                .split_once('/')
                .unwrap_or((port.get_ref(), "tcp"));
            if number.parse::<u16>().is_err() || !matches!(protocol, "tcp" | "udp" | "sctp") {
                return Err(check.error(
                    Some(port.span()),
                    "config.exposed_ports",
                    format!("{:?} is not PORT[/tcp|udp|sctp]", port.get_ref()),
                ));
            }
        }
    }
    let runtime_user = runtime
        .user
        .as_ref()
        .map(|user| user.get_ref().clone())
        .or_else(|| user.as_ref().map(|user| user.name.clone()));
    if let Some(configured) = &runtime.user {
        let name = configured.get_ref().split(':').next().unwrap_or("");
        if name.is_empty() || name == "root" || name == "0" {
            return Err(check.error(
                Some(configured.span()),
                "config.user",
                "the image must run as a non-root user",
            ));
        }
    }
    let runtime = RuntimeConfig {
        user: runtime_user,
        exposed_ports: runtime.exposed_ports.as_ref().map(|ports| {
            ports
                .iter()
                .map(|port| {
                    if port.get_ref().contains('/') {
                        port.get_ref().clone()
                    } else {
                        format!("{}/tcp", port.get_ref())
                    }
                })
                .collect()
        }),
        env: runtime.env.as_ref().map(|env| {
            env.iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect()
        }),
        entrypoint: runtime.entrypoint.clone(),
        cmd: runtime.cmd.clone(),
        volumes: runtime.volumes.clone(),
        working_dir: runtime.workdir.clone(),
        labels: runtime.labels.clone(),
        stop_signal: runtime.stop_signal.clone(),
    };
    Ok(AssemblyPlan {
        base,
        files,
        user,
        runtime,
    })
}

/// A pinned `oci:DIR[:TAG]@DIGEST`, or an error at `base.image` saying why not.
fn parse_base(image: &Spanned<String>, check: &Checker<'_>) -> Result<BaseImage> {
    let text = image.get_ref();
    let refuse = |message: String| check.error(Some(image.span()), "base.image", message);
    let (name, digest) = text.rsplit_once('@').ok_or_else(|| {
        refuse(format!(
            "{text:?} is not pinned: base images are named with a digest, e.g. oci:DIR:TAG@sha256:…"
        ))
    })?;
    let caused = |message: &str, cause| {
        check.error_caused_by(Some(image.span()), "base.image", message, cause)
    };
    let digest = parse_digest(digest).map_err(|error| caused("its digest is invalid", error))?;
    match ImageName::parse(name).map_err(|error| caused("its name is invalid", error))? {
        ImageName::Layout { path, tag } => Ok(BaseImage {
            layout: check.resolve(&path.to_string_lossy()),
            tag,
            digest,
            display_name: name.to_owned(),
        }),
        other => Err(refuse(format!(
            "{other} is not supported as a base yet; import it into an OCI layout with `sealcraft image import` and name it oci:DIR:TAG@DIGEST"
        ))),
    }
}

fn parse_owner(text: &str, user: Option<&UserSpec>) -> Option<(u32, u32)> {
    if let Some(user) = user
        && text == user.name
    {
        return Some((user.uid, user.gid));
    }
    let (uid, gid) = text.split_once(':').unwrap_or((text, text));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}
