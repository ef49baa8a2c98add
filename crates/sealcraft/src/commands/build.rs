use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sealcraft_builder::{BuildEnvironment, BuildReporter, BuildSpec, StepEvent, StepStatus};
use sealcraft_cli::{BuildArgs, CompressionArg, NetworkArg, RuntimeArg, SecretArg};
use sealcraft_dockerfile::Dockerfile;
use sealcraft_oci::layer::Compression;
use sealcraft_runtime::{RuntimeKind, RuntimeSettings};
use sealcraft_secrets::Secret;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{
    base_registry_client, build_arg_values, default_store, output_layout, resolve_secret,
    source_date_epoch,
};

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

/// `--secret` values, resolved.
pub(crate) fn build_secrets(secrets: &[SecretArg]) -> Result<BTreeMap<String, Secret>> {
    secrets
        .iter()
        .map(|secret| {
            let value = resolve_secret(&secret.reference)
                .with_context(|| format!("reading the secret {:?}", secret.id))?;
            Ok((secret.id.clone(), value))
        })
        .collect()
}

/// The registries a build pulls bases from, for credentials: the external
/// images of the target's stages as the frontend resolves them (global
/// ARGs substituted), after the `--base` mappings.
pub(crate) fn base_registries(
    dockerfile: &Dockerfile,
    path: &Path,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
    architecture: &str,
    bases: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let images =
        sealcraft_dockerfile::external_images(dockerfile, path, target, build_args, architecture)?;
    let mut registries = Vec::new();
    for image in images {
        let name = bases.get(&image.name).unwrap_or(&image.name);
        if name.starts_with("oci:") {
            continue;
        }
        if let Ok(reference) = sealcraft_oci::reference::Reference::parse(name)
            && !registries.contains(&reference.registry().to_owned())
        {
            registries.push(reference.registry().to_owned());
        }
    }
    Ok(registries)
}

pub(crate) fn compression(choice: CompressionArg) -> Compression {
    match choice {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    }
}

pub(crate) fn build(args: &BuildArgs, printer: &Printer) -> Result<ExitStatus> {
    let dockerfile_path = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile"));
    let text = std::fs::read_to_string(&dockerfile_path)
        .with_context(|| format!("reading {}", dockerfile_path.display()))?;
    let parsed = sealcraft_dockerfile::parse_file(&dockerfile_path, &text)?;
    // A layout this command creates is removed again if the build fails.
    let created = match sealcraft_oci::image::ImageName::parse(&args.output) {
        Ok(sealcraft_oci::image::ImageName::Layout { path, .. }) => {
            (!path.exists()).then_some(path)
        }
        _ => None,
    };
    let bases: BTreeMap<String, String> = args.base.iter().cloned().collect();
    let build_args = build_arg_values(&args.build_arg);
    let architecture = args
        .arch
        .clone()
        .unwrap_or_else(sealcraft_oci::import::host_architecture);
    let registries = base_registries(
        &parsed,
        &dockerfile_path,
        args.target.as_deref(),
        &build_args,
        &architecture,
        &bases,
    )?;
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
    let secrets = build_secrets(&args.secret)?;
    let (output, tag) = output_layout(&args.output)?;
    let spec = BuildSpec {
        dockerfile: &parsed,
        dockerfile_path: dockerfile_path.clone(),
        context: args.context.clone(),
        target: args.target.clone(),
        build_args,
        secrets,
        bases,
        require_pinned: args.require_pinned,
        architecture,
        source_date_epoch: source_date_epoch()?.unwrap_or(0),
        compression: compression(args.compression),
        network_none: args.network == NetworkArg::None,
        no_cache: args.no_cache,
        allow_root: args.allow_root,
    };
    let progress = BuildProgress::new(printer.is_quiet());
    let runtime_kind = match args.runtime {
        RuntimeArg::Runc => RuntimeKind::Runc,
        RuntimeArg::Crun => RuntimeKind::Crun,
    };
    let environment = BuildEnvironment {
        store,
        runtime: RuntimeSettings {
            kind: runtime_kind,
            program: PathBuf::from(runtime_kind.name()),
        },
        registry: client.as_ref(),
        reporter: &progress,
    };
    let report = match sealcraft_builder::build(&spec, &environment, &output) {
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
    Ok(ExitStatus::Success)
}
