use anyhow::{Context, Result};
use sealcraft_cli::{DbImportArgs, DbInfoArgs};
use sealcraft_vuln::store::{Store, import as import_records};

use crate::ExitStatus;
use crate::output::Printer;

pub(crate) fn import(args: &DbImportArgs, printer: &Printer) -> Result<ExitStatus> {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let spinner = printer.spinner(&format!("importing {}", args.source.display()));
    let report = import_records(&args.source, &args.db, &now).with_context(|| {
        format!(
            "importing {} into {}",
            args.source.display(),
            args.db.display()
        )
    });
    spinner.finish_and_clear();
    let report = report?;
    let mut human = vec![format!(
        "imported {} records into {} ({})",
        report.metadata.records,
        args.db.display(),
        report
            .metadata
            .ecosystems
            .iter()
            .map(|(ecosystem, count)| format!("{ecosystem} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    for warning in &report.warnings {
        human.push(format!(
            "warning[{}]: {}: {}",
            warning.code, warning.subject, warning.message
        ));
    }
    printer.result(&report, &human);
    Ok(ExitStatus::Success)
}

pub(crate) fn info(args: &DbInfoArgs, printer: &Printer) -> Result<ExitStatus> {
    let store = Store::open(&args.db)?;
    let metadata = &store.metadata;
    printer.result(
        metadata,
        &[
            format!("database   {}", args.db.display()),
            format!(
                "records    {} ({} refused at import)",
                metadata.records, metadata.rejected
            ),
            format!(
                "imported   {} from {}",
                metadata.imported_at, metadata.source
            ),
            format!(
                "ecosystems {}",
                metadata
                    .ecosystems
                    .iter()
                    .map(|(ecosystem, count)| format!("{ecosystem} {count}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ],
    );
    Ok(ExitStatus::Success)
}
