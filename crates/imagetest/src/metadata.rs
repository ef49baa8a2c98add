//! The metadata test: every field of the image config a spec names,
//! CST's fields plus stop signal, health check, shell and ONBUILD.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::report::TestResult;
use crate::spec::{KeyValue, MetadataTest};

/// The runtime config's fields as the checks read them.
pub(crate) struct ConfigFields<'a> {
    config: Option<&'a serde_json::Map<String, Value>>,
}

impl<'a> ConfigFields<'a> {
    /// The `config` object of an image config document (absent: every field empty).
    pub(crate) fn new(runtime: Option<&'a Value>) -> Self {
        Self {
            config: runtime.and_then(Value::as_object),
        }
    }

    fn field(&self, key: &str) -> Option<&'a Value> {
        self.config
            .and_then(|config| config.get(key))
            .filter(|value| !value.is_null())
    }

    /// A list of strings (`Entrypoint`, `Cmd`, `Shell`, `OnBuild`); absent is empty.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.field(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A string field (`User`, `WorkingDir`, `StopSignal`); absent is empty.
    pub(crate) fn text(&self, key: &str) -> String {
        self.field(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The keys of a set-like map (`ExposedPorts`, `Volumes`).
    pub(crate) fn keys(&self, key: &str) -> Vec<String> {
        self.field(key)
            .and_then(Value::as_object)
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `Env` as a map (split at the first `=`; later entries win).
    pub(crate) fn env(&self) -> BTreeMap<String, String> {
        self.list("Env")
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (entry.clone(), String::new()),
            })
            .collect()
    }

    /// `Labels`.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        self.field("Labels")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(key, value)| {
                        (key.clone(), value.as_str().unwrap_or_default().to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `Healthcheck`.
    pub(crate) fn healthcheck(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.field("Healthcheck").and_then(Value::as_object)
    }
}

fn pairs(
    wanted: &[KeyValue],
    actual: &BTreeMap<String, String>,
    what: &str,
    errors: &mut Vec<String>,
) {
    for pair in wanted {
        let Some(value) = actual.get(&pair.key) else {
            errors.push(format!(
                "{what} {} is not set in the image config",
                pair.key
            ));
            continue;
        };
        let matched = if pair.is_regex {
            regex::Regex::new(&pair.value).is_ok_and(|regex| regex.is_match(value))
        } else {
            *value == pair.value
        };
        if !matched {
            errors.push(format!(
                "{what} {} is {value:?}, expected {}{:?}",
                pair.key,
                if pair.is_regex { "a match of " } else { "" },
                pair.value
            ));
        }
    }
}

fn list(wanted: Option<&Vec<String>>, actual: Vec<String>, what: &str, errors: &mut Vec<String>) {
    if let Some(wanted) = wanted
        && *wanted != actual
    {
        errors.push(format!("{what} is {actual:?}, expected {wanted:?}"));
    }
}

fn text(wanted: Option<&String>, actual: String, what: &str, errors: &mut Vec<String>) {
    if let Some(wanted) = wanted
        && *wanted != actual
    {
        errors.push(format!("{what} is {actual:?}, expected {wanted:?}"));
    }
}

fn strip_protocol(port: &str) -> &str {
    port.split_once('/').map_or(port, |(number, _)| number)
}

/// Runs the metadata test against the config.
pub(crate) fn check(test: &MetadataTest, fields: &ConfigFields<'_>) -> TestResult {
    let started = Instant::now();
    let mut errors = Vec::new();
    let env = fields.env();
    pairs(&test.env_vars, &env, "env var", &mut errors);
    for unbound in &test.unbound_env_vars {
        if env.contains_key(&unbound.key) {
            errors.push(format!("env var {} is set but should not be", unbound.key));
        }
    }
    pairs(&test.labels, &fields.labels(), "label", &mut errors);
    let ports: Vec<String> = fields
        .keys("ExposedPorts")
        .iter()
        .map(|port| strip_protocol(port).to_owned())
        .collect();
    for port in &test.exposed_ports {
        if !ports.contains(port) {
            errors.push(format!("port {port} is not exposed (exposed: {ports:?})"));
        }
    }
    for port in &test.unexposed_ports {
        if ports.contains(port) {
            errors.push(format!("port {port} is exposed but should not be"));
        }
    }
    let volumes = fields.keys("Volumes");
    for volume in &test.volumes {
        if !volumes.contains(volume) {
            errors.push(format!(
                "volume {volume} is not declared (declared: {volumes:?})"
            ));
        }
    }
    for volume in &test.unmounted_volumes {
        if volumes.contains(volume) {
            errors.push(format!("volume {volume} is declared but should not be"));
        }
    }
    list(
        test.entrypoint.as_ref(),
        fields.list("Entrypoint"),
        "the entrypoint",
        &mut errors,
    );
    list(
        test.cmd.as_ref(),
        fields.list("Cmd"),
        "the cmd",
        &mut errors,
    );
    list(
        test.shell.as_ref(),
        fields.list("Shell"),
        "the shell",
        &mut errors,
    );
    list(
        test.on_build.as_ref(),
        fields.list("OnBuild"),
        "onBuild",
        &mut errors,
    );
    // Empty workdir and user are not checked, as CST does it.
    text(
        test.workdir.as_ref().filter(|workdir| !workdir.is_empty()),
        fields.text("WorkingDir"),
        "the workdir",
        &mut errors,
    );
    text(
        test.user.as_ref().filter(|user| !user.is_empty()),
        fields.text("User"),
        "the user",
        &mut errors,
    );
    text(
        test.stop_signal.as_ref(),
        fields.text("StopSignal"),
        "the stop signal",
        &mut errors,
    );
    if let Some(wanted) = &test.healthcheck {
        match fields.healthcheck() {
            None => errors.push("the image has no healthcheck".to_owned()),
            Some(actual) => {
                let test_list: Vec<String> = actual
                    .get("Test")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .map(|item| item.as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                list(
                    wanted.test.as_ref(),
                    test_list,
                    "the healthcheck test",
                    &mut errors,
                );
                for (key, spec) in [
                    ("Interval", &wanted.interval),
                    ("Timeout", &wanted.timeout),
                    ("StartPeriod", &wanted.start_period),
                ] {
                    let Some(spec) = spec else { continue };
                    let expected = crate::duration::parse(spec).map(|duration| duration.as_nanos());
                    // Docker writes nanoseconds and leaves an unset one out (0: the default).
                    let found = actual
                        .get(key)
                        .and_then(Value::as_u64)
                        .map_or(0, u128::from);
                    if expected != Some(found) {
                        errors.push(format!(
                            "the healthcheck {key} is {found} ns, expected {spec}"
                        ));
                    }
                }
                if let Some(retries) = wanted.retries {
                    let found = actual.get("Retries").and_then(Value::as_u64);
                    if found != Some(retries) {
                        errors.push(format!(
                            "the healthcheck retries are {found:?}, expected {retries}"
                        ));
                    }
                }
            }
        }
    }
    TestResult::new("Metadata Test", errors, started.elapsed())
}
