//! `[patch]`: what the patch stage updates and where packages come from.

use std::path::PathBuf;

use sealcraft_apt::Source;

use super::Checker;
use super::raw::{RawPatch, RawScan};
use crate::error::Result;

/// What the patch stage updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchUpdate {
    /// The fixable OS-package findings of a scan with this database.
    Fixes {
        /// The advisory database (`patch.db`, else `scan.db`).
        db: PathBuf,
    },
    /// Every package with a newer version in the suites.
    All,
}

/// The `[patch]` section.
#[derive(Debug, Clone)]
pub struct PatchPlan {
    /// What to update.
    pub update: PatchUpdate,
    /// Sources to use instead of the image's or the machine's.
    pub sources: Vec<Source>,
    /// Packages refused when they have maintainer scripts.
    pub refuse_scripts: Vec<String>,
    /// Refuse Release files past their Valid-Until.
    pub check_valid_until: bool,
}

/// Validates `[patch]`: the update mode, its database, and the source lines
/// (`signed-by` takes absolute keyring paths or fingerprints, as apt's does).
pub(super) fn validate(
    raw: &RawPatch,
    scan: Option<&RawScan>,
    check: &Checker<'_>,
) -> Result<Option<PatchPlan>> {
    if !raw.enabled {
        return Ok(None);
    }
    let mode = raw.update.as_ref().map_or("fixes", |mode| mode.get_ref());
    let update = match mode {
        "fixes" => {
            let (db, span) = match (&raw.db, scan) {
                (Some(db), _) => (db.get_ref(), db.span()),
                (None, Some(scan)) => (scan.db.get_ref(), scan.db.span()),
                (None, None) => {
                    return Err(check.error(
                        raw.update.as_ref().map(|mode| mode.span()),
                        "patch.db",
                        "patching the fixes a scan finds needs an advisory database: set patch.db or [scan] db, or update = \"all\"",
                    ));
                }
            };
            let db = check.resolve(db);
            if !db.is_dir() {
                return Err(check.error(
                    Some(span),
                    "patch.db",
                    format!(
                        "{} is not a directory; create a database with `sealcraft db import`",
                        db.display()
                    ),
                ));
            }
            PatchUpdate::Fixes { db }
        }
        "all" => PatchUpdate::All,
        other => {
            return Err(check.error(
                raw.update.as_ref().map(|mode| mode.span()),
                "patch.update",
                format!("{other:?} is neither \"fixes\" nor \"all\""),
            ));
        }
    };
    let mut sources = Vec::new();
    for line in &raw.sources {
        let parsed = sealcraft_apt::sources::parse_list(line.get_ref(), "patch.sources").map_err(
            |error| {
                check.error_caused_by(
                    Some(line.span()),
                    "patch.sources",
                    "not an apt source line (deb [signed-by=KEYRING] URI SUITE COMPONENT…)",
                    error,
                )
            },
        )?;
        if parsed.is_empty() {
            return Err(check.error(
                Some(line.span()),
                "patch.sources",
                "the line names no deb source",
            ));
        }
        sources.extend(parsed);
    }
    Ok(Some(PatchPlan {
        update,
        sources,
        refuse_scripts: raw.refuse_scripts.clone(),
        check_valid_until: raw.check_valid_until,
    }))
}
