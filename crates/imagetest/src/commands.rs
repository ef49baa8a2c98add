//! Command tests: the entrypoint is set aside (as container-structure-test
//! does), setup, the command and teardown run one after another on the
//! same root, each with its own deadline, and the command's stdout,
//! stderr and exit code are checked.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::expand::expand;
use crate::matching::{excluded, expected};
use crate::report::TestResult;
use crate::sandbox::{Launch, Sandbox};
use crate::spec::{CommandTest, TestFile};
use crate::{Error, Result};

/// The launch every process of `file`'s command tests starts from.
pub(crate) fn base_launch(
    file: &TestFile,
    image_env: &BTreeMap<String, String>,
    host_env: &BTreeMap<String, String>,
) -> Result<Launch> {
    let mut env = image_env.clone();
    for global in &file.global_env_vars {
        let value = expand(&global.value, image_env);
        env.insert(global.key.clone(), value);
    }
    let mut launch = Launch {
        env,
        network_none: file.sealcraft.network.as_deref() != Some("host"),
        readonly_root: file.sealcraft.read_only_root,
        ..Launch::default()
    };
    if let Some(options) = &file.container_run_options {
        launch.user = options.user.clone().filter(|user| !user.is_empty());
        launch.privileged = options.privileged;
        launch.add_capabilities = options.capabilities.clone();
        launch.binds = options
            .bind_mounts
            .iter()
            .filter_map(|mount| crate::sandbox::parse_bind(mount))
            .collect();
        if let Some(env_file) = &options.env_file {
            let text = std::fs::read_to_string(env_file).map_err(|source| Error::ReadEnvFile {
                path: env_file.into(),
                source,
            })?;
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some((key, value)) = line.split_once('=')
                    && !key.trim().is_empty()
                {
                    launch.env.insert(key.trim().to_owned(), value.to_owned());
                }
            }
        }
        for name in &options.env_vars {
            // A variable the caller could not find is passed empty, never guessed.
            let value = host_env.get(name).cloned().unwrap_or_default();
            launch.env.insert(name.clone(), value);
        }
    }
    Ok(launch)
}

/// Runs one command test.
pub(crate) fn run(
    sandbox: &Sandbox,
    test: &CommandTest,
    base: &Launch,
    timeout: Duration,
) -> Result<TestResult> {
    let started = Instant::now();
    let mut launch = base.clone();
    for var in &test.env_vars {
        launch.env.insert(var.key.clone(), var.value.clone());
    }
    let argv = |words: &[String]| -> Vec<String> {
        words.iter().map(|word| expand(word, &launch.env)).collect()
    };
    let root = sandbox.root()?;
    let mut errors = Vec::new();
    for (index, setup) in test.setup.iter().enumerate() {
        let step = Launch {
            args: argv(setup),
            ..launch.clone()
        };
        let finished = sandbox.run(&root, &step, Instant::now() + timeout)?;
        if finished.timed_out {
            errors.push(format!(
                "setup command {} ({:?}) was still running after {}s and was killed",
                index + 1,
                setup,
                timeout.as_secs()
            ));
        }
    }
    let mut command = vec![test.command.clone()];
    command.extend(test.args.iter().cloned());
    let finished = if errors.is_empty() {
        let step = Launch {
            args: argv(&command),
            ..launch.clone()
        };
        Some(sandbox.run(&root, &step, Instant::now() + timeout)?)
    } else {
        None
    };
    for teardown in &test.teardown {
        let step = Launch {
            args: argv(teardown),
            ..launch.clone()
        };
        sandbox.run(&root, &step, Instant::now() + timeout)?;
    }
    let mut result = TestResult::new(
        format!("Command Test: {}", test.name),
        errors,
        Duration::ZERO,
    );
    if let Some(finished) = finished {
        if finished.timed_out {
            result.errors.push(format!(
                "{command:?} was still running after {}s and was killed",
                timeout.as_secs()
            ));
        } else {
            result
                .errors
                .extend(expected(&test.expected_error, &finished.stderr, "stderr"));
            result
                .errors
                .extend(excluded(&test.excluded_error, &finished.stderr, "stderr"));
            result
                .errors
                .extend(expected(&test.expected_output, &finished.stdout, "stdout"));
            result
                .errors
                .extend(excluded(&test.excluded_output, &finished.stdout, "stdout"));
            if finished.code != Some(test.exit_code) {
                result.errors.push(format!(
                    "{command:?} exited with {}, expected {}",
                    finished
                        .code
                        .map_or_else(|| "no code".to_owned(), |code| code.to_string()),
                    test.exit_code
                ));
            }
        }
        result.stdout = finished.stdout;
        result.stderr = finished.stderr;
    }
    result.pass = result.errors.is_empty();
    result.duration = started.elapsed();
    Ok(result)
}
