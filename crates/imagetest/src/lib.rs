//! Image tests without a daemon: container-structure-test spec files
//! (schema 2.0.0 and 1.0.0), sealcraft's service tests, and the built-in
//! `security` suite, reported as text, JSON or JUnit XML.
//!
//! - [`spec`]: the spec files, parsed strictly (an unknown key is an error
//!   with its line).
//! - File, content, metadata and license tests read the image through the
//!   merged view (`oci::view`): only the paths a test names are looked at.
//! - Command and service tests run in runc or crun (`runtime`): the image
//!   unpacked once, each container on an overlay of its own, own pid, ipc,
//!   uts, mount and (unless asked) network namespaces, each process with a
//!   deadline.
//! - [`security`]: package managers, the user, secrets in the env, a
//!   read-only root, `DT_NEEDED` resolution, setuid and world-writable files.
//! - [`report`]: the results and their renderings.
//!
//! The crate never prints and never reads the environment: host variables
//! a spec passes in arrive through [`TestOptions::host_env`].

#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sealcraft_inventory::{AccountError, Accounts};
use sealcraft_oci::image::Image;
use sealcraft_oci::layer::LayerLimits;
use sealcraft_oci::layout::Layout;
use sealcraft_oci::view::MergedView;
use sealcraft_runtime::RuntimeSettings;

mod commands;
mod duration;
mod expand;
mod files;
mod license;
mod matching;
mod metadata;
mod mode;
pub mod report;
mod sandbox;
pub mod security;
mod services;
pub mod spec;

pub use report::{KeptFailure, Report, TestResult};
pub use security::{SecurityCode, SecurityOptions};
pub use spec::TestFile;

use metadata::ConfigFields;
use sandbox::{Launch, Sandbox};

/// What can stop a test run (a test that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec file could not be read.
    #[error("reading the test spec {}", path.display())]
    ReadSpec {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A spec file is not valid YAML or JSON of the schema.
    #[error("{}{}: {message}", path.display(), line.map(|line| format!(":{line}:{}", column.unwrap_or(1))).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line of the problem.
        line: Option<usize>,
        /// Its column.
        column: Option<usize>,
        /// The parser's message (the key and what was expected).
        message: String,
    },
    /// The spec has no `schemaVersion`.
    #[error("{}: schemaVersion is missing (2.0.0 or 1.0.0)", path.display())]
    MissingSchema {
        /// The file.
        path: PathBuf,
    },
    /// The spec's `schemaVersion` is not one this reads.
    #[error("{}: schemaVersion {version:?} is not supported (2.0.0 or 1.0.0)", path.display())]
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// What it said.
        version: String,
    },
    /// A test of the spec is not valid.
    #[error("{}: test {test:?}: {problem}", path.display())]
    InvalidSpec {
        /// The file.
        path: PathBuf,
        /// The test (or section).
        test: String,
        /// What is wrong.
        problem: String,
    },
    /// An env file a spec names could not be read.
    #[error("reading the env file {}", path.display())]
    ReadEnvFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The image could not be read.
    #[error("reading the image")]
    Image(#[source] sealcraft_oci::Error),
    /// A file of the image could not be read.
    #[error("reading {path} in the image")]
    Read {
        /// The path in the image.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The image could not be unpacked for commands.
    #[error("unpacking {image} for command tests")]
    Unpack {
        /// Its digest.
        image: String,
        /// The cause.
        #[source]
        source: sealcraft_oci::Error,
    },
    /// A test user does not resolve through the image's accounts.
    #[error("the user {user:?} of the tests")]
    User {
        /// The user as written.
        user: String,
        /// The cause.
        #[source]
        source: AccountError,
    },
    /// The work directory could not be prepared.
    #[error("{action} {}", path.display())]
    Work {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The runtime failed (not the process in it).
    #[error("running a test container")]
    Runtime(#[source] sealcraft_runtime::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A built-in suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// The security checks.
    Security,
}

impl Suite {
    /// The suite named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        (name == "security").then_some(Self::Security)
    }
}

/// How to run the tests.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// The runtime for command and service tests.
    pub runtime: RuntimeSettings,
    /// A directory of the caller's for the unpacked image and bundles
    /// (emptied first; kept with a failure's bundle).
    pub work: PathBuf,
    /// How long one command may run.
    pub timeout: Duration,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Built-in suites to run after the spec files.
    pub suites: Vec<Suite>,
    /// The security suite's settings.
    pub security: SecurityOptions,
    /// Values of the host variables the specs pass in (`containerRunOptions.envVars`).
    pub host_env: BTreeMap<String, String>,
    /// Limits on the layers read.
    pub limits: LayerLimits,
    /// Keep a bundle of the image when a test fails.
    pub keep_failed: bool,
}

impl TestOptions {
    /// Options with the defaults: runc, a 30 s timeout, no suites.
    pub fn new(work: PathBuf) -> Self {
        Self {
            runtime: RuntimeSettings::default(),
            work,
            timeout: Duration::from_secs(30),
            fail_fast: false,
            suites: Vec::new(),
            security: SecurityOptions::default(),
            host_env: BTreeMap::new(),
            limits: LayerLimits::default(),
            keep_failed: true,
        }
    }
}

/// Whether any test of `files` (or a suite) needs to run the image.
fn needs_runtime(files: &[TestFile], suites: &[Suite]) -> bool {
    !suites.is_empty()
        || files
            .iter()
            .any(|file| !file.command_tests.is_empty() || !file.sealcraft.service_tests.is_empty())
}

/// A test that could not run because its user does not resolve: a failure, not an outage.
fn account_failure(name: String, error: Error) -> Result<TestResult> {
    match error {
        Error::User { user, source } => Ok(TestResult::new(
            name,
            vec![format!(
                "the user {user:?} does not resolve in the image: {source}"
            )],
            Duration::ZERO,
        )),
        other => Err(other),
    }
}

struct Runner<'a> {
    results: Vec<TestResult>,
    fail_fast: bool,
    progress: &'a mut dyn FnMut(&TestResult),
    stopped: bool,
}

impl Runner<'_> {
    fn add(&mut self, result: TestResult, file: Option<&TestFile>) {
        let mut result = result;
        result.file = file.map(|file| file.path.clone());
        (self.progress)(&result);
        if !result.pass && self.fail_fast {
            self.stopped = true;
        }
        self.results.push(result);
    }
}

fn planned(files: &[TestFile], suites: &[Suite]) -> usize {
    let per_file: usize = files
        .iter()
        .map(|file| {
            file.file_existence_tests.len()
                + file.file_content_tests.len()
                + usize::from(file.metadata_test.is_some())
                + file.license_tests.len()
                + file.command_tests.len()
                + file.sealcraft.service_tests.len()
        })
        .sum();
    per_file + suites.len() * <SecurityCode as sealcraft_findings::Code>::ALL.len()
}

/// Runs every test of `files` and the `options.suites` against `image`
/// (named `name` in the report), passing each result to `progress` as it lands.
pub fn run(
    layout: &Layout,
    image: &Image,
    name: &str,
    files: &[TestFile],
    options: &TestOptions,
    progress: &mut dyn FnMut(&TestResult),
) -> Result<Report> {
    let started = Instant::now();
    let view = MergedView::from_image(layout, &image.manifest, &image.config, &options.limits)
        .map_err(Error::Image)?;
    let read_text = |path: &str| {
        view.read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    let accounts = Accounts::parse(&read_text("etc/passwd"), &read_text("etc/group"));
    let fields = ConfigFields::new(image.config.runtime_config_json());
    let image_env = fields.env();
    let sandbox = if needs_runtime(files, &options.suites) {
        Some(Sandbox::prepare(
            layout,
            image,
            &options.runtime,
            &options.work,
            accounts.clone(),
        )?)
    } else {
        None
    };
    let mut runner = Runner {
        results: Vec::new(),
        fail_fast: options.fail_fast,
        progress,
        stopped: false,
    };
    'files: for file in files {
        let mut static_env = image_env.clone();
        for global in &file.global_env_vars {
            static_env.insert(global.key.clone(), global.value.clone());
        }
        for test in &file.file_existence_tests {
            if runner.stopped {
                break 'files;
            }
            runner.add(files::existence(&view, test, &static_env), Some(file));
        }
        for test in &file.file_content_tests {
            if runner.stopped {
                break 'files;
            }
            runner.add(files::content(&view, test), Some(file));
        }
        if let Some(test) = &file.metadata_test
            && !runner.stopped
        {
            runner.add(metadata::check(test, &fields), Some(file));
        }
        for test in &file.license_tests {
            if runner.stopped {
                break 'files;
            }
            runner.add(license::check(&view, test), Some(file));
        }
        if let Some(sandbox) = &sandbox {
            let base = commands::base_launch(file, &image_env, &options.host_env)?;
            for test in &file.command_tests {
                if runner.stopped {
                    break 'files;
                }
                let result =
                    commands::run(sandbox, test, &base, options.timeout).or_else(|error| {
                        account_failure(format!("Command Test: {}", test.name), error)
                    })?;
                runner.add(result, Some(file));
            }
            for test in &file.sealcraft.service_tests {
                if runner.stopped {
                    break 'files;
                }
                let result =
                    services::run(sandbox, test, &fields, &image_env).or_else(|error| {
                        account_failure(format!("Service Test: {}", test.name), error)
                    })?;
                runner.add(result, Some(file));
            }
        }
    }
    if let Some(sandbox) = &sandbox {
        for suite in &options.suites {
            if runner.stopped {
                break;
            }
            match suite {
                Suite::Security => {
                    let results = security::run(
                        &view,
                        &accounts,
                        &fields,
                        sandbox,
                        &options.security,
                        options.timeout,
                    )
                    .or_else(|error| {
                        account_failure("Security Test: runs as non-root".into(), error)
                            .map(|result| vec![result])
                    })?;
                    for result in results {
                        if runner.stopped {
                            break;
                        }
                        runner.add(result, None);
                    }
                }
            }
        }
    }
    let ran = runner.results.len();
    let mut report = Report::new(
        name.to_owned(),
        image.descriptor.digest.to_string(),
        runner.results,
        started.elapsed(),
    );
    report.skipped = planned(files, &options.suites).saturating_sub(ran);
    if !report.passed()
        && options.keep_failed
        && let Some(sandbox) = &sandbox
    {
        let launch = Launch {
            args: services::image_argv(&fields, None),
            env: image_env,
            network_none: true,
            ..Launch::default()
        };
        report.kept = Some(KeptFailure {
            tag: String::new(),
            bundle: sandbox.keep_bundle(&launch).ok(),
        });
    }
    Ok(report)
}
