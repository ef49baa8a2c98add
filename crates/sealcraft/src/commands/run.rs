use anyhow::{Result, anyhow};
use sealcraft_cli::RunArgs;
use sealcraft_pipeline::plan::{Plan, PlanInputs, PublishTarget};
use sealcraft_pipeline::run::{PublishContext, RunOptions, Stage, run as run_pipeline};

use crate::output::{Printer, StageReporter};
use crate::settings::{RegistryAccess, load_private_key, registry_client, source_date_epoch};

pub(crate) fn run(args: &RunArgs, printer: &Printer) -> Result<()> {
    let until = match &args.until {
        None => None,
        Some(name) => Some(Stage::from_name(name).ok_or_else(|| {
            anyhow!(
                "unknown stage {name:?}; stages are {}",
                Stage::ALL
                    .iter()
                    .map(|stage| stage.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
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
        load_private_key(&publish.key, publish.key_password.as_deref())
            .map_err(|error| format!("{error:#}").into())
    };
    let publish = plan.publish.as_ref().map(|_| PublishContext {
        client: client.as_ref(),
        key: &load_key,
    });
    let summary = run_pipeline(&plan, &RunOptions { until, publish }, &reporter)?;
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
    Ok(())
}
