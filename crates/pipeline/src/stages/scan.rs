//! Scan: the inventory against the advisory database, a Trivy-format
//! report, and the gate; findings at `scan.fail_on` stop the run before
//! anything is signed or published.

use std::collections::BTreeMap;

use sealcraft_inventory::Inventory;
use sealcraft_vuln::report::{gate, summary, trivy_json};
use serde_json::json;

use super::{Context, Done, StageImage};
use crate::error::{Error, Result};
use crate::plan::ScanPlan;

/// The gate's verdict, enforced after the stage is recorded as completed.
pub(crate) struct Gate {
    failing: usize,
}

impl Gate {
    /// Fails the run when findings are at the gate's levels.
    pub(crate) fn enforce(&self) -> Result<()> {
        if self.failing == 0 {
            return Ok(());
        }
        Err(Error::GateFailed {
            stage: "scan",
            reason: format!(
                "{} findings at the levels in scan.fail_on; nothing was published",
                self.failing
            ),
        })
    }
}

pub(crate) fn run(
    context: &mut Context<'_>,
    section: &ScanPlan,
    image: &StageImage,
    inventory: &Inventory,
) -> Result<Done<Gate>> {
    let (database, record_warnings) = sealcraft_vuln::open_database(&section.db, inventory)?;
    let (findings, match_warnings) = sealcraft_vuln::osv::scan(inventory, &database);
    let name = context.plan.image_name(context.architecture);
    let created = sealcraft_oci::image::rfc3339(context.plan.source_date_epoch);
    let report = trivy_json(&findings, inventory, &name, &created);
    let output = context.write_json(&format!("scan-{}.json", context.short_name()), &report)?;
    let failing = gate(&findings, &section.fail_on, section.ignore_unfixed).len();
    let counts: BTreeMap<&str, usize> = summary(&findings)
        .into_iter()
        .map(|(severity, count)| (severity.name(), count))
        .collect();
    let fields = json!({
        "findings": findings.len(),
        "severities": counts,
        "gate_failures": failing,
        "warnings": record_warnings.len() + match_warnings.len(),
    });
    Ok(Done {
        value: Gate { failing },
        inputs: vec![image.artifact()],
        outputs: vec![output],
        fields,
    })
}
