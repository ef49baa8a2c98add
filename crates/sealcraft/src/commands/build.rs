use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sealcraft_build::dockerfile;
use sealcraft_build::{
    BuildEnvironment, BuildReporter, BuildSpec, RuntimeKind, RuntimeSettings, StepEvent, StepStatus,
};
use sealcraft_cli::BuildArgs;
use sealcraft_oci::layer::Compression;
use sealcraft_secrets::Secret;

use crate::output::Printer;
use crate::settings::{base_registry_client, output_layout, resolve_secret, source_date_epoch};

/// Progress on stderr: one line per step, RUN output indented under it.
pub(crate) struct BuildProgress {
    quiet: bool,
}

impl BuildProgress {
    pub(crate) fn new(quiet: bool) -> Self {
        Self { quiet }
    }
}

impl BuildReporter for BuildProgress {
    fn step(&self, event: &StepEvent<'_>) {
        if self.quiet {
            return;
        }
        let status = match event.status {
            StepStatus::Started => return,
            StepStatus::Cached => " (cached)",
            StepStatus::Done => "",
        };
        crate::output::progress_line(&format!(
            "[{}/{}] {}: {}{status}",
            event.number, event.total, event.stage, event.instruction
        ));
    }

    fn output(&self, stage: &str, line: &str) {
        if !self.quiet {
            crate::output::progress_line(&format!("  {stage} | {line}"));
        }
    }
}

/// `KEY=VALUE`, or `KEY` with the value from the environment (as docker does).
fn build_args(raw: &[String]) -> Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for item in raw {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => match std::env::var(item) {
                Ok(value) => (item.clone(), value),
                // Docker ignores a bare name that is not set; so do we.
                Err(_) => continue,
            },
        };
        if key.is_empty() {
            bail!("--build-arg {item:?}: the name is empty");
        }
        args.insert(key, value);
    }
    Ok(args)
}

/// `id=ID,src=FILE`, `id=ID,env=NAME` or `id=ID,ref=REF`, resolved to values.
pub(crate) fn build_secrets(raw: &[String]) -> Result<BTreeMap<String, Secret>> {
    let mut secrets = BTreeMap::new();
    for item in raw {
        let mut id = None;
        let mut reference = None;
        for field in item.split(',') {
            match field.split_once('=') {
                Some(("id", value)) => id = Some(value.to_owned()),
                Some(("src" | "source", value)) => reference = Some(format!("file:{value}")),
                Some(("env", value)) => reference = Some(format!("env:{value}")),
                Some(("ref", value)) => reference = Some(value.to_owned()),
                Some(("type", "file" | "env")) => {}
                _ => bail!(
                    "--secret {item:?}: expected id=ID with src=FILE, env=NAME or ref=env:/file:/vault: reference"
                ),
            }
        }
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            bail!("--secret {item:?} needs id=…");
        };
        // Like buildx: a bare id reads the environment variable of that name.
        let reference = reference.unwrap_or_else(|| format!("env:{id}"));
        let value =
            resolve_secret(&reference).with_context(|| format!("reading the secret {id:?}"))?;
        secrets.insert(id, value);
    }
    Ok(secrets)
}

pub(crate) fn parse_bases(raw: &[String]) -> Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|item| match item.split_once('=') {
            Some((name, image)) if !name.is_empty() && !image.is_empty() => {
                Ok((name.to_owned(), image.to_owned()))
            }
            _ => bail!("--base {item:?}: expected NAME=IMAGE"),
        })
        .collect()
}

/// The default build store: `$XDG_CACHE_HOME/sealcraft/build` or `~/.cache/sealcraft/build`.
pub(crate) fn default_store() -> Result<PathBuf> {
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty()) {
        return Ok(Path::new(&cache).join("sealcraft/build"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir")?;
    Ok(Path::new(&home).join(".cache/sealcraft/build"))
}

/// The registries a Dockerfile's bases name (after mapping), for credentials.
pub(crate) fn base_registries(
    file: &dockerfile::Dockerfile,
    bases: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut registries = Vec::new();
    let mut names: Vec<String> = file
        .stages
        .iter()
        .map(|stage| stage.image.clone())
        .collect();
    names.extend(bases.values().cloned());
    for name in names {
        let name = bases.get(&name).cloned().unwrap_or(name);
        if name.starts_with("oci:") || name.contains('$') || name.eq_ignore_ascii_case("scratch") {
            continue;
        }
        if let Ok(reference) = sealcraft_oci::reference::Reference::parse(&name)
            && !registries.contains(&reference.registry().to_owned())
        {
            registries.push(reference.registry().to_owned());
        }
    }
    registries
}

pub(crate) fn compression(name: &str) -> Compression {
    match name {
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        _ => Compression::Gzip,
    }
}

pub(crate) fn build(args: &BuildArgs, printer: &Printer) -> Result<()> {
    let dockerfile_path = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile"));
    let text = std::fs::read_to_string(&dockerfile_path)
        .with_context(|| format!("reading {}", dockerfile_path.display()))?;
    let parsed = dockerfile::parse(&text).map_err(|error| sealcraft_build::Error::Dockerfile {
        path: dockerfile_path.clone(),
        line: error.line,
        message: error.message,
    })?;
    // A layout this command creates is removed again if the build fails.
    let created = match sealcraft_oci::image::ImageName::parse(&args.output) {
        Ok(sealcraft_oci::image::ImageName::Layout { path, .. }) => {
            (!path.exists()).then_some(path)
        }
        _ => None,
    };
    let (output, tag) = output_layout(&args.output)?;
    let bases = parse_bases(&args.base)?;
    let registries = base_registries(&parsed, &bases);
    let client = base_registry_client(
        &registries,
        args.registry.ca_bundle.as_deref(),
        &args.registry.allow_http,
        args.registry.registry_username.as_deref(),
        args.registry.registry_password_from.as_deref(),
    )?;
    let store = match &args.cache_dir {
        Some(directory) => directory.clone(),
        None => default_store()?,
    };
    let architecture = args
        .arch
        .clone()
        .unwrap_or_else(sealcraft_oci::import::host_architecture);
    let spec = BuildSpec {
        dockerfile: &parsed,
        dockerfile_path: dockerfile_path.clone(),
        context: args.context.clone(),
        target: args.target.clone(),
        build_args: build_args(&args.build_arg)?,
        secrets: build_secrets(&args.secret)?,
        bases,
        require_pinned: args.require_pinned,
        architecture,
        source_date_epoch: source_date_epoch()?.unwrap_or(0),
        compression: compression(&args.compression),
        network_none: args.network == "none",
        no_cache: args.no_cache,
        allow_root: args.allow_root,
    };
    let progress = BuildProgress::new(printer.is_quiet());
    let runtime_kind = RuntimeKind::from_name(&args.runtime).unwrap_or_default();
    let environment = BuildEnvironment {
        store,
        runtime: RuntimeSettings {
            kind: runtime_kind,
            program: PathBuf::from(runtime_kind.name()),
        },
        registry: client.as_ref(),
        reporter: &progress,
    };
    let report = match sealcraft_build::build(&spec, &environment, &output) {
        Ok(report) => report,
        Err(error) => {
            if let Some(path) = created {
                let _ = std::fs::remove_dir_all(path);
            }
            return Err(error.into());
        }
    };
    output.tag(&tag, &report.manifest)?;
    for unused in &report.unused_build_args {
        printer.warning(&format!(
            "the build argument {unused} was not consumed by any ARG"
        ));
    }
    let cached = report.steps.iter().filter(|step| step.cached).count();
    printer.result(
        &serde_json::json!({
            "image": args.output,
            "digest": report.manifest.digest.to_string(),
            "report": report,
        }),
        &[format!(
            "built {} (stage {}, {} layers, {} of {} layer steps cached): {}",
            args.output,
            report.target,
            report.layers,
            cached,
            report.steps.len(),
            report.manifest.digest
        )],
    );
    Ok(())
}
