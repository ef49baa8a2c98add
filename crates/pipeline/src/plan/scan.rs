//! `[scan]`: the advisory database and the gate.

use std::path::PathBuf;

use sealcraft_vuln::severity::Severity;

use super::Checker;
use super::raw::RawScan;
use crate::error::Result;

/// The `[scan]` section.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// The advisory database (made by `sealcraft db import`) or a directory of OSV records.
    pub db: PathBuf,
    /// Severities that fail the run.
    pub fail_on: Vec<sealcraft_vuln::severity::Severity>,
    /// Findings without a fix do not fail the run.
    pub ignore_unfixed: bool,
}

/// Validates `[scan]`: the database exists, the levels are known.
pub(super) fn validate(scan: &RawScan, check: &Checker<'_>) -> Result<ScanPlan> {
    let db = check.resolve(scan.db.get_ref());
    if !db.is_dir() {
        return Err(check.error(
            Some(scan.db.span()),
            "scan.db",
            format!(
                "{} is not a directory; create a database with `sealcraft db import`",
                db.display()
            ),
        ));
    }
    let fail_on = match &scan.fail_on {
        None => vec![Severity::High, Severity::Critical],
        Some(levels) => levels
            .get_ref()
            .iter()
            .map(|level| {
                Severity::parse(level).ok_or_else(|| {
                    check.error(
                        Some(levels.span()),
                        "scan.fail_on",
                        format!("{level:?} is not UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL"),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    Ok(ScanPlan {
        db,
        fail_on,
        ignore_unfixed: scan.ignore_unfixed,
    })
}
