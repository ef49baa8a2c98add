//! `[test]`: the image tests of the test stage.

use std::path::PathBuf;
use std::time::Duration;

use sealcraft_imagetest::{Suite, TestFile};
use sealcraft_runtime::RuntimeKind;

use super::Checker;
use super::raw::RawTest;
use crate::error::Result;

/// The `[test]` section.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// The spec files, parsed when the plan loads.
    pub files: Vec<TestFile>,
    /// Built-in suites (default: security).
    pub suites: Vec<Suite>,
    /// How long one command may run.
    pub timeout: Duration,
    /// runc or crun.
    pub runtime: RuntimeKind,
    /// Setuid or setgid paths the security suite allows.
    pub allow_setuid: Vec<String>,
    /// pip and npm count as package managers.
    pub language_package_managers: bool,
    /// Where the spec files are (for the run's inputs).
    pub config_paths: Vec<PathBuf>,
}

/// Validates `[test]`: every spec file parses now, so a broken one stops
/// the run before anything is built.
pub(super) fn validate(raw: &RawTest, check: &Checker<'_>) -> Result<Option<TestPlan>> {
    if !raw.enabled {
        return Ok(None);
    }
    let mut files = Vec::new();
    let mut config_paths = Vec::new();
    for config in &raw.configs {
        let path = check.resolve(config.get_ref());
        let file = TestFile::load(&path).map_err(|error| {
            check.error_caused_by(
                Some(config.span()),
                "test.configs",
                format!("the test spec {} cannot be used", path.display()),
                error,
            )
        })?;
        files.push(file);
        config_paths.push(path);
    }
    let suites = match &raw.suites {
        None => vec![Suite::Security],
        Some(names) => names
            .get_ref()
            .iter()
            .map(|name| {
                Suite::from_name(name).ok_or_else(|| {
                    check.error(
                        Some(names.span()),
                        "test.suites",
                        format!("unknown suite {name:?}; the built-in suite is \"security\""),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let timeout = match &raw.timeout {
        Some(seconds) if *seconds.get_ref() == 0 => {
            return Err(check.error(
                Some(seconds.span()),
                "test.timeout",
                "the timeout is in seconds and must be at least 1",
            ));
        }
        Some(seconds) => Duration::from_secs(*seconds.get_ref()),
        None => Duration::from_secs(30),
    };
    let runtime = match &raw.runtime {
        None => RuntimeKind::Runc,
        Some(name) => RuntimeKind::from_name(name.get_ref()).ok_or_else(|| {
            check.error(
                Some(name.span()),
                "test.runtime",
                format!("unknown runtime {:?}; use runc or crun", name.get_ref()),
            )
        })?,
    };
    if files.is_empty() && suites.is_empty() {
        return Err(check.error(
            None,
            "test",
            "[test] names no spec files and no suites: nothing would be tested",
        ));
    }
    Ok(Some(TestPlan {
        files,
        suites,
        timeout,
        runtime,
        allow_setuid: raw.allow_setuid.clone(),
        language_package_managers: raw.language_package_managers,
        config_paths,
    }))
}
