use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sealcraft_cli::{RuntimeArg, SuiteArg, TestArgs, TestOutputArg};
use sealcraft_imagetest::{Report, SecurityOptions, Suite, TestFile, TestOptions};
use sealcraft_oci::image::Image;
use sealcraft_runtime::{RuntimeKind, RuntimeSettings};

use crate::ExitStatus;
use crate::output::Printer;
use crate::settings::{host_variables, open_layout_image};

fn runtime(arg: RuntimeArg) -> RuntimeSettings {
    let kind = match arg {
        RuntimeArg::Runc => RuntimeKind::Runc,
        RuntimeArg::Crun => RuntimeKind::Crun,
    };
    RuntimeSettings {
        kind,
        program: PathBuf::from(kind.name()),
    }
}

pub(crate) fn test(args: &TestArgs, json: bool, printer: &Printer) -> Result<ExitStatus> {
    if args.config.is_empty() && args.suite.is_empty() {
        bail!("nothing to test: give at least one --config spec file or a --suite");
    }
    let files = args
        .config
        .iter()
        .map(|path| TestFile::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let (layout, tag) = open_layout_image(&args.image)?;
    let image = Image::load(&layout, tag.as_deref(), args.arch.as_deref())
        .with_context(|| format!("loading {}", args.image))?;
    let names: Vec<String> = files.iter().flat_map(TestFile::host_env_names).collect();
    let (work, scratch) = match &args.work_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let scratch = tempfile::Builder::new()
                .prefix("sealcraft-test-")
                .tempdir()
                .context("creating a work directory for the tests")?;
            (scratch.path().join("work"), Some(scratch))
        }
    };
    let options = TestOptions {
        runtime: runtime(args.runtime),
        timeout: Duration::from_secs(args.timeout),
        fail_fast: args.fail_fast,
        suites: args
            .suite
            .iter()
            .map(|suite| match suite {
                SuiteArg::Security => Suite::Security,
            })
            .collect(),
        security: SecurityOptions {
            language_package_managers: args.language_package_managers,
            allow_setuid: args.allow_setuid.clone(),
            ..SecurityOptions::default()
        },
        host_env: host_variables(&names),
        ..TestOptions::new(work.clone())
    };
    let output = if json {
        TestOutputArg::Json
    } else {
        args.output
    };
    let spinner = printer.spinner(&format!("testing {}", args.image));
    let mut progress = |result: &sealcraft_imagetest::TestResult| {
        spinner.set_message(format!("testing {}: {}", args.image, result.name));
    };
    let report = sealcraft_imagetest::run(
        &layout,
        &image,
        &args.image,
        &files,
        &options,
        &mut progress,
    )
    .with_context(|| format!("testing {}", args.image));
    spinner.finish_and_clear();
    let mut report = report?;
    if !report.passed() {
        keep_failure(&layout, tag.as_deref(), &image, &mut report)?;
        if let Some(scratch) = scratch.filter(|_| {
            report
                .kept
                .as_ref()
                .is_some_and(|kept| kept.bundle.is_some())
        }) {
            // The bundle stays for debugging; its path is in the report.
            let _ = scratch.keep();
        }
    } else if args.work_dir.is_some() {
        let _ = fs::remove_dir_all(&work);
    }
    let rendered = match output {
        TestOutputArg::Text => report.text(),
        TestOutputArg::Json => report.json(),
        TestOutputArg::Junit => report.junit(&args.junit_suite_name),
    };
    if let Some(path) = &args.test_report {
        let file_text = match output {
            TestOutputArg::Junit => report.junit(&args.junit_suite_name),
            _ => report.json(),
        };
        sealcraft_files::write_atomically(path, file_text.as_bytes())
            .with_context(|| format!("writing the test report {}", path.display()))?;
    }
    printer.data(rendered.trim_end());
    if report.passed() {
        Ok(ExitStatus::Success)
    } else if report.total == 0 {
        Ok(printer.rejected(&"no tests ran"))
    } else {
        Ok(printer.rejected(&format!("{} of {} tests failed", report.fail, report.total)))
    }
}

/// Tags the failed image `<tag>-failed` in its layout, and says so in the report.
fn keep_failure(
    layout: &sealcraft_oci::layout::Layout,
    tag: Option<&str>,
    image: &Image,
    report: &mut Report,
) -> Result<()> {
    let failed = format!("{}-failed", tag.unwrap_or("image"));
    layout
        .tag(&failed, &image.descriptor)
        .with_context(|| format!("tagging the failed image {failed}"))?;
    let kept = report.kept.get_or_insert(sealcraft_imagetest::KeptFailure {
        tag: String::new(),
        bundle: None,
    });
    kept.tag = failed;
    Ok(())
}
