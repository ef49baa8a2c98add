//! Service tests: the image's entrypoint started as the image would run
//! (its user, env, working directory and volumes) in a network namespace
//! of its own, probed from inside that namespace until ready, its
//! HEALTHCHECK run in it, then stopped with its stop signal and timed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sealcraft_runtime::{Probe, ProbeAnswer, probe_in};
use serde_json::Value;

use crate::Result;
use crate::metadata::ConfigFields;
use crate::report::TestResult;
use crate::sandbox::{Launch, Sandbox};
use crate::spec::ServiceTest;

const DEFAULT_READY_SECONDS: u64 = 30;
const DEFAULT_STOP_SECONDS: u64 = 10;
const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// The process the image runs: its entrypoint, then `args` or its `Cmd`.
pub(crate) fn image_argv(fields: &ConfigFields<'_>, args: Option<&Vec<String>>) -> Vec<String> {
    let mut argv = fields.list("Entrypoint");
    match args {
        Some(args) => argv.extend(args.iter().cloned()),
        None => argv.extend(fields.list("Cmd")),
    }
    argv
}

/// The health check's argv (`CMD` or `CMD-SHELL` through the image's shell);
/// `None` when the image has none.
pub(crate) fn healthcheck_argv(fields: &ConfigFields<'_>) -> Option<Vec<String>> {
    let test: Vec<String> = fields
        .healthcheck()?
        .get("Test")?
        .as_array()?
        .iter()
        .map(|item| item.as_str().unwrap_or_default().to_owned())
        .collect();
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, [command])) if kind == "CMD-SHELL" => {
            let mut shell = fields.list("Shell");
            if shell.is_empty() {
                shell = vec!["/bin/sh".into(), "-c".into()];
            }
            shell.push(command.clone());
            Some(shell)
        }
        _ => None,
    }
}

fn answer_text(answer: &ProbeAnswer) -> String {
    match answer {
        ProbeAnswer::Refused(reason) => format!("no answer ({reason})"),
        ProbeAnswer::Connected => "a connection".to_owned(),
        ProbeAnswer::Status(status) => format!("HTTP {status}"),
    }
}

/// Runs one service test.
pub(crate) fn run(
    sandbox: &Sandbox,
    test: &ServiceTest,
    fields: &ConfigFields<'_>,
    image_env: &BTreeMap<String, String>,
) -> Result<TestResult> {
    let started_at = Instant::now();
    let name = format!("Service Test: {}", test.name);
    let mut env = image_env.clone();
    for var in &test.env_vars {
        env.insert(var.key.clone(), var.value.clone());
    }
    let args = image_argv(fields, test.args.as_ref());
    if args.is_empty() {
        return Ok(TestResult::new(
            name,
            vec!["the image has neither an entrypoint nor a cmd to start".into()],
            started_at.elapsed(),
        ));
    }
    let launch = Launch {
        args: args.clone(),
        env,
        network_none: true,
        readonly_root: test.read_only_root,
        volumes: true,
        ..Launch::default()
    };
    let root = sandbox.root()?;
    let mut container = sandbox.start(&root, &launch)?;
    let mut errors = Vec::new();
    let ready_seconds = test
        .ready
        .as_ref()
        .and_then(|ready| ready.timeout)
        .unwrap_or(DEFAULT_READY_SECONDS);
    let ready_deadline = Instant::now() + Duration::from_secs(ready_seconds);
    let pid = container
        .pid(ready_deadline)
        .map_err(crate::Error::Runtime)?;
    let mut alive = pid.is_some();
    if let (Some(pid), Some(ready)) = (pid, &test.ready) {
        // The spec check makes sure exactly one of tcp and http is given.
        let (probe, wanted) = match &ready.http {
            Some(http) => (
                Probe::Http {
                    port: http.port,
                    path: http.path.clone().unwrap_or_else(|| "/".into()),
                },
                Some(http.status.unwrap_or(200)),
            ),
            None => (
                Probe::Tcp {
                    port: ready.tcp.unwrap_or_default(),
                },
                None,
            ),
        };
        let mut last = ProbeAnswer::Refused("not probed yet".into());
        let ready_now = loop {
            if container.exited().map_err(crate::Error::Runtime)? {
                alive = false;
                break false;
            }
            last = probe_in(pid, &probe, Duration::from_secs(1));
            let good = match (&last, wanted) {
                (ProbeAnswer::Connected, None) => true,
                (ProbeAnswer::Status(status), Some(wanted)) => *status == wanted,
                _ => false,
            };
            if good {
                break true;
            }
            if Instant::now() >= ready_deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !ready_now && alive {
            errors.push(format!(
                "not ready after {ready_seconds}s: {probe:?} got {}{}",
                answer_text(&last),
                wanted.map_or(String::new(), |status| format!(", expected HTTP {status}"))
            ));
        }
    }
    if !alive {
        let finished = container
            .finish(Instant::now())
            .map_err(crate::Error::Runtime)?;
        errors.push(format!(
            "{args:?} exited with {} before it was ready",
            finished
                .code
                .map_or_else(|| "no code".to_owned(), |code| code.to_string())
        ));
        let mut result = TestResult::new(name, errors, started_at.elapsed());
        result.stdout = finished.stdout;
        result.stderr = finished.stderr;
        return Ok(result);
    }
    if test.healthcheck && errors.is_empty() {
        match healthcheck_argv(fields) {
            None => errors.push("the image has no HEALTHCHECK command to run".into()),
            Some(check) => {
                let health = fields.healthcheck();
                let timeout = health
                    .and_then(|health| health.get("Timeout"))
                    .and_then(Value::as_u64)
                    .filter(|nanos| *nanos > 0)
                    .map_or(DEFAULT_HEALTH_TIMEOUT, Duration::from_nanos);
                let retries = health
                    .and_then(|health| health.get("Retries"))
                    .and_then(Value::as_u64)
                    .filter(|retries| *retries > 0)
                    .unwrap_or(3);
                let exec = Launch {
                    args: check.clone(),
                    volumes: false,
                    ..launch.clone()
                };
                let mut outcome = None;
                for attempt in 0..retries {
                    if attempt > 0 {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    let finished =
                        sandbox.exec(&mut container, &root, &exec, Instant::now() + timeout)?;
                    let healthy = finished.code == Some(0);
                    outcome = Some(finished);
                    if healthy {
                        break;
                    }
                }
                if let Some(finished) = outcome.filter(|finished| finished.code != Some(0)) {
                    errors.push(format!(
                        "the HEALTHCHECK {check:?} failed {retries} times; last {}: {}",
                        if finished.timed_out {
                            format!("timed out after {}s", timeout.as_secs())
                        } else {
                            format!(
                                "exit {}",
                                finished
                                    .code
                                    .map_or("none".to_owned(), |code| code.to_string())
                            )
                        },
                        finished.stderr.trim()
                    ));
                }
            }
        }
    }
    let stop = test.stop.clone().unwrap_or_default();
    let signal = stop
        .signal
        .clone()
        .or_else(|| Some(fields.text("StopSignal")).filter(|signal| !signal.is_empty()))
        .unwrap_or_else(|| "SIGTERM".to_owned());
    let within = stop.within.unwrap_or(DEFAULT_STOP_SECONDS);
    container.signal(&signal).map_err(crate::Error::Runtime)?;
    let exited = container
        .wait_until(Instant::now() + Duration::from_secs(within))
        .map_err(crate::Error::Runtime)?;
    let finished = container
        .finish(Instant::now())
        .map_err(crate::Error::Runtime)?;
    if !exited {
        errors.push(format!(
            "still running {within}s after {signal}; it was killed"
        ));
    } else {
        let wanted = stop.exit_code.unwrap_or(0);
        if finished.code != Some(wanted) {
            errors.push(format!(
                "exited with {} after {signal}, expected {wanted}",
                finished
                    .code
                    .map_or_else(|| "no code".to_owned(), |code| code.to_string())
            ));
        }
    }
    let mut result = TestResult::new(name, errors, started_at.elapsed());
    result.stdout = finished.stdout;
    result.stderr = finished.stderr;
    Ok(result)
}
