//! `sealcraft cache prune`: the build store's clean-up.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use sealcraft_cli::PruneArgs;

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::default_store;

/// `168h`, `90m`, `30s` (as HEALTHCHECK takes them), or whole days: `7d`.
fn parse_age(text: &str) -> Result<Duration> {
    if let Some(days) = text.strip_suffix('d')
        && let Ok(days) = days.parse::<u64>()
    {
        return Ok(Duration::from_secs(days.saturating_mul(86_400)));
    }
    match sealcraft_dockerfile::parse_duration(text) {
        Ok(nanoseconds) => Ok(Duration::from_nanos(nanoseconds)),
        Err(error) => bail!("--unused-for: {error}, or whole days such as 7d"),
    }
}

pub(crate) fn prune(args: &PruneArgs, printer: &Printer) -> Result<ExitStatus> {
    let unused_for = if args.all {
        Duration::ZERO
    } else {
        parse_age(&args.unused_for)?
    };
    if unused_for.is_zero() && !args.all {
        bail!("--unused-for 0 would remove everything; say --all if that is meant");
    }
    let store = match &args.cache_dir {
        Some(directory) => directory.clone(),
        None => default_store()?,
    };
    let report = sealcraft_builder::prune(&store, unused_for)
        .with_context(|| format!("pruning the build store {}", store.display()))?;
    printer.result(
        &report,
        &[format!(
            "removed {} step records, {} base images, {} layer directories, {} blobs and {} cache mounts ({} bytes)",
            report.steps,
            report.base_images,
            report.layer_directories,
            report.blobs,
            report.cache_mounts,
            report.bytes
        )],
    );
    Ok(ExitStatus::Success)
}
