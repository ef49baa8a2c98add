use anyhow::{Context, Result};
use sealcraft_cli::{RunArgs, StageArg};
use sealcraft_pipeline::plan::{
    BuildSource, Plan, PlanInputs, PublishTarget, SinkDestination, UploadCredentials,
};
use sealcraft_pipeline::run::{
    BuildContext, PatchContext, PublishContext, RunOptions, Stage, run as run_pipeline,
};
use sealcraft_pipeline::shipping::ShippingReporter;
use sealcraft_sinks::{Shipper, Sink, SinkTarget};
use sealcraft_store::{Credentials, StoreConfig};

use crate::ExitStatus;
use crate::output::{Printer, StageReporter};
use crate::settings::{
    RegistryAccess, base_registry_client, builder_context, default_store, load_signer,
    provider_environment, registry_client, resolve_secret, source_date_epoch,
};

/// The pipeline stage `--until` names.
pub(crate) fn stage(choice: StageArg) -> Stage {
    match choice {
        StageArg::Preflight => Stage::Preflight,
        StageArg::Build => Stage::Build,
        StageArg::Harden => Stage::Harden,
        StageArg::Patch => Stage::Patch,
        StageArg::Squash => Stage::Squash,
        StageArg::Test => Stage::Test,
        StageArg::Sbom => Stage::Sbom,
        StageArg::Scan => Stage::Scan,
        StageArg::Attest => Stage::Attest,
        StageArg::Upload => Stage::Upload,
        StageArg::Publish => Stage::Publish,
    }
}

/// The upload stage's store, its keys resolved here and never inside the pipeline.
fn store_config(plan: &Plan) -> Result<Option<StoreConfig>> {
    let Some(upload) = &plan.upload else {
        return Ok(None);
    };
    let credentials = match &upload.credentials {
        UploadCredentials::Ambient => Credentials::Ambient,
        UploadCredentials::S3 {
            access_key_id,
            secret_access_key,
        } => Credentials::S3 {
            access_key_id: resolve_secret(access_key_id)?,
            secret_access_key: resolve_secret(secret_access_key)?,
        },
        UploadCredentials::Azure {
            account,
            access_key,
        } => Credentials::Azure {
            account: account.clone(),
            access_key: resolve_secret(access_key)?,
        },
        UploadCredentials::Gcs {
            service_account_key,
        } => Credentials::Gcs {
            service_account_key: resolve_secret(service_account_key)?,
        },
    };
    Ok(Some(StoreConfig {
        url: upload.url.clone(),
        endpoint: upload.endpoint.clone(),
        region: upload.region.clone(),
        credentials,
        allow_http: upload.allow_http,
        retries: 3,
        environment: provider_environment(),
    }))
}

/// The sinks, their authorization resolved.
fn sinks(plan: &Plan) -> Result<Vec<Sink>> {
    plan.sinks
        .iter()
        .map(|sink| {
            let target = match &sink.destination {
                SinkDestination::File(path) => SinkTarget::File(path.clone()),
                SinkDestination::Stdout => SinkTarget::Stdout,
                SinkDestination::Syslog(address) => SinkTarget::Syslog(address.clone()),
                SinkDestination::Loki { url, labels } => SinkTarget::Loki {
                    url: url.clone(),
                    labels: labels.clone(),
                },
                SinkDestination::Webhook { url, authorization } => SinkTarget::Webhook {
                    url: url.clone(),
                    authorization: authorization.as_deref().map(resolve_secret).transpose()?,
                },
            };
            Ok(Sink {
                target,
                required: sink.required,
            })
        })
        .collect()
}

/// A Dockerfile build's store, registry access for its bases, and its secrets.
fn build_context<'a>(
    plan: &Plan,
    client: Option<&'a sealcraft_registry::Client>,
) -> Result<Option<BuildContext<'a>>> {
    let BuildSource::Dockerfile(build) = &plan.source else {
        return Ok(None);
    };
    let mut secrets = std::collections::BTreeMap::new();
    for (id, reference) in &build.secrets {
        let value = resolve_secret(reference)
            .with_context(|| format!("reading the build secret {id:?}"))?;
        secrets.insert(id.clone(), value);
    }
    Ok(Some(BuildContext {
        store: match &build.cache_dir {
            Some(directory) => directory.clone(),
            None => default_store()?,
        },
        runtime_program: std::path::PathBuf::from(build.runtime.name()),
        registry: client,
        secrets,
    }))
}

/// The registry client for a Dockerfile build's bases (the publish section's TLS settings apply).
fn base_client(plan: &Plan) -> Result<Option<sealcraft_registry::Client>> {
    let BuildSource::Dockerfile(build) = &plan.source else {
        return Ok(None);
    };
    let mut registries = Vec::new();
    for architecture in &plan.architectures {
        for registry in crate::commands::build::base_registries(
            &build.dockerfile,
            &build.path,
            build.target.as_deref(),
            &build.args,
            architecture,
            &build.bases,
        )? {
            if !registries.contains(&registry) {
                registries.push(registry);
            }
        }
    }
    let publish = plan.publish.as_ref();
    base_registry_client(
        &registries,
        publish.and_then(|publish| publish.ca_bundle.as_deref()),
        publish.map_or(&[][..], |publish| &publish.allow_http[..]),
        None,
        None,
    )
}

pub(crate) fn run(args: &RunArgs, printer: &Printer) -> Result<ExitStatus> {
    let plan = Plan::load(
        &args.config,
        &PlanInputs {
            source_date_epoch: source_date_epoch()?,
        },
    )?;
    let reporter = StageReporter::new(printer);
    // Secrets for the publish stage are resolved here, never inside the pipeline.
    let client = match plan
        .publish
        .as_ref()
        .map(|publish| (publish, &publish.target))
    {
        Some((publish, PublishTarget::Registry { registry, .. })) => {
            Some(registry_client(&RegistryAccess {
                registry,
                ca_bundle: publish.ca_bundle.as_deref(),
                allow_http: &publish.allow_http,
                username: publish.username.as_deref(),
                password_from: publish.password.as_deref(),
            })?)
        }
        _ => None,
    };
    let load_key = || {
        let publish = plan.publish.as_ref().ok_or("no [publish] section")?;
        load_signer(&publish.key, publish.key_password.as_deref())
            .map_err(|error| format!("{error:#}").into())
    };
    let publish = plan.publish.as_ref().map(|_| PublishContext {
        client: client.as_ref(),
        key: &load_key,
        builder: builder_context(&plan.config_path),
    });
    let bases = base_client(&plan)?;
    let options = RunOptions {
        until: args.until.map(stage),
        publish,
        upload: store_config(&plan)?,
        build: build_context(&plan, bases.as_ref())?,
        patch: patch_context(&plan, printer)?,
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "-".to_owned(), |name| name.trim().to_owned());
    let shipper = Shipper::new(sinks(&plan)?, hostname);
    let shipping = ShippingReporter::new(&shipper, &reporter);
    let outcome = run_pipeline(&plan, &options, &shipping);
    let failures = shipper.failures();
    for failure in &failures {
        printer.warning(&format!(
            "log sink {}{} lost an event: {}",
            failure.sink,
            if failure.required { " (required)" } else { "" },
            failure.message
        ));
    }
    let summary = match outcome {
        Ok(summary) => summary,
        Err(error) if error.is_gate_failure() => return Ok(printer.rejected(&error)),
        Err(error) => return Err(error.into()),
    };
    if let Some(failure) = failures.iter().find(|failure| failure.required) {
        anyhow::bail!(
            "the required log sink {} could not be delivered to: {}",
            failure.sink,
            failure.message
        );
    }
    let human: Vec<String> = summary
        .runs
        .iter()
        .zip(&summary.run_dirs)
        .map(|(record, dir)| {
            format!(
                "{} {} -> {}",
                record.image,
                record.digest.as_deref().unwrap_or("(no image)"),
                dir.display()
            )
        })
        .collect();
    printer.result(&summary, &human);
    Ok(ExitStatus::Success)
}

/// The machine's apt configuration and the download cache, when the plan patches.
fn patch_context(plan: &Plan, printer: &Printer) -> Result<Option<PatchContext<'static>>> {
    if plan.patch.is_none() {
        return Ok(None);
    }
    Ok(Some(PatchContext {
        host_sources: crate::commands::patch::host_sources(printer),
        host_keys: &crate::settings::HostKeys,
        fetcher: sealcraft_apt::Fetcher::new(crate::settings::default_cache("apt")?, 3),
        now: std::time::SystemTime::now(),
    }))
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn until_names_every_stage_in_order() {
        let named: Vec<&str> = StageArg::value_variants()
            .iter()
            .map(|choice| stage(*choice).name())
            .collect();
        let stages: Vec<&str> = Stage::ALL.iter().map(|stage| stage.name()).collect();
        assert_eq!(named, stages);
        for choice in StageArg::value_variants() {
            let value = choice.to_possible_value().unwrap();
            assert_eq!(value.get_name(), stage(*choice).name());
        }
    }
}
