use anyhow::{Result, anyhow};
use sealcraft_cli::RunArgs;
use sealcraft_pipeline::plan::{Plan, PlanInputs};
use sealcraft_pipeline::run::{RunOptions, Stage, run as run_pipeline};

use crate::output::{Printer, StageReporter};
use crate::settings::source_date_epoch;

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
    let summary = run_pipeline(&plan, &RunOptions { until }, &reporter)?;
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
