//! Test: the spec files and built-in suites of `[test]` against the squashed
//! image, before anything is signed or published. A failure is recorded
//! (the report in the run directory, the image tagged `…-failed`, a bundle
//! kept for debugging) and then stops the run with exit 1.

use std::path::PathBuf;

use sealcraft_imagetest::{Report, SecurityOptions, TestOptions};
use sealcraft_runtime::RuntimeSettings;
use serde_json::json;

use super::{Context, Done, StageImage};
use crate::error::{Error, Result};
use crate::plan::TestPlan;
use crate::run::Artifact;

/// The tests' verdict, enforced after the stage is recorded as completed.
pub(crate) struct Verdict {
    failed: usize,
    total: usize,
    kept: Option<String>,
}

impl Verdict {
    /// Fails the run when a test failed.
    pub(crate) fn enforce(&self) -> Result<()> {
        if self.failed == 0 {
            return Ok(());
        }
        Err(Error::GateFailed {
            stage: "test",
            reason: format!(
                "{} of {} image tests failed{}; nothing was signed or published",
                self.failed,
                self.total,
                self.kept
                    .as_ref()
                    .map(|tag| format!(" (the image is kept as {tag})"))
                    .unwrap_or_default()
            ),
        })
    }
}

pub(crate) fn run(
    context: &mut Context<'_>,
    section: &TestPlan,
    input: &StageImage,
) -> Result<Done<Verdict>> {
    let work = context.run_dir.join("test-work");
    let options = TestOptions {
        runtime: RuntimeSettings {
            kind: section.runtime,
            program: PathBuf::from(section.runtime.name()),
        },
        timeout: section.timeout,
        suites: section.suites.clone(),
        security: SecurityOptions {
            language_package_managers: section.language_package_managers,
            allow_setuid: section.allow_setuid.clone(),
            ..SecurityOptions::default()
        },
        ..TestOptions::new(work.clone())
    };
    let name = context.plan.image_name(context.architecture);
    let mut report: Report = sealcraft_imagetest::run(
        &context.layout,
        &input.image,
        &name,
        &section.files,
        &options,
        &mut |_| {},
    )?;
    let kept = if report.passed() {
        let _ = std::fs::remove_dir_all(&work);
        None
    } else {
        let tag = context.stage_tag("failed");
        context.layout.tag(&tag, &input.image.descriptor)?;
        if let Some(kept) = report.kept.as_mut() {
            kept.tag = tag.clone();
        } else {
            let _ = std::fs::remove_dir_all(&work);
        }
        Some(tag)
    };
    let short = context.short_name();
    let written = context.write_json(&format!("test-{short}.json"), &report)?;
    let junit_path = context.run_dir.join(format!("test-{short}.junit.xml"));
    let junit = report.junit(&name);
    sealcraft_files::write_atomically(&junit_path, junit.as_bytes())?;
    let mut inputs = vec![input.artifact()];
    for path in &section.config_paths {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        inputs.push(Artifact {
            name: path.display().to_string(),
            digest: sealcraft_oci::digest::sha256_of(&bytes).to_string(),
            size: Some(bytes.len() as u64),
        });
    }
    let fields = json!({
        "passed": report.pass,
        "failed": report.fail,
        "total": report.total,
        "failures": report
            .results
            .iter()
            .filter(|result| !result.pass)
            .map(|result| result.name.clone())
            .collect::<Vec<_>>(),
        "kept": kept,
    });
    Ok(Done {
        inputs,
        outputs: vec![written],
        value: Verdict {
            failed: report.fail,
            total: report.total,
            kept,
        },
        fields,
    })
}
