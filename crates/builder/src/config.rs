//! Instructions that change only the config (ARG, ENV, LABEL, USER,
//! ENTRYPOINT, CMD, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL,
//! MAINTAINER), each adding a history entry; layer instructions are handed
//! to their steps.

use std::collections::BTreeSet;
use std::path::Path;

use sealcraft_dockerfile::{Command, Form, Instruction, words};
use sealcraft_oci::image::rfc3339;
use sealcraft_oci::manifest::HistoryEntry;
use serde_json::json;

use crate::cache_key::cache_key;
use crate::rootfs::NewDir;
use crate::spec::StepStatus;
use crate::stage::Builder;
use crate::working::Working;
use crate::{Error, Result};

/// Build arguments every Dockerfile may use without declaring them; they reach RUN steps only.
pub(crate) const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl Builder<'_> {
    pub(crate) fn expand(
        &self,
        working: &Working,
        raw: &str,
        line: usize,
        keyword: &'static str,
    ) -> Result<String> {
        words::expand_word(raw, &working.vars(), self.spec.dockerfile.escape)
            .map_err(|error| self.word_error(line, keyword, error))
    }

    pub(crate) fn expand_list(
        &self,
        working: &Working,
        raw: &[String],
        line: usize,
        keyword: &'static str,
    ) -> Result<Vec<String>> {
        let vars = working.vars();
        let mut out = Vec::new();
        for word in raw {
            out.extend(
                words::expand_words(word, &vars, self.spec.dockerfile.escape)
                    .map_err(|error| self.word_error(line, keyword, error))?,
            );
        }
        Ok(out)
    }

    pub(crate) fn config_step(&self, working: &mut Working, created_by: String) {
        working.history.push(HistoryEntry {
            created: Some(rfc3339(self.spec.source_date_epoch)),
            created_by: Some(created_by),
            comment: Some("sealcraft build".into()),
            author: None,
            empty_layer: true,
        });
    }

    pub(crate) fn instruction(
        &mut self,
        working: &mut Working,
        label: &str,
        stage_index: usize,
        instruction: &Instruction,
    ) -> Result<()> {
        let line = instruction.line;
        let keyword = instruction.command.keyword();
        if !matches!(
            instruction.command,
            Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_)
        ) {
            self.report(label, line, &instruction.source, StepStatus::Started);
        }
        match &instruction.command {
            Command::Arg(declarations) => {
                for declaration in declarations {
                    let value = match self.spec.build_args.get(&declaration.name) {
                        Some(value) => {
                            self.used_args.insert(declaration.name.clone());
                            Some(value.clone())
                        }
                        None => match &declaration.default {
                            Some(default) => Some(self.expand(working, default, line, keyword)?),
                            None => self.frontend.meta_args.get(&declaration.name).cloned(),
                        },
                    };
                    match value {
                        Some(value) => working.args.insert(declaration.name.clone(), value),
                        None => working.args.remove(&declaration.name),
                    };
                }
            }
            Command::Env(pairs) => {
                let expanded = self.expand_pairs(working, pairs, line, keyword)?;
                if let Some((key, _)) = expanded
                    .iter()
                    .find(|(key, _)| key.is_empty() || key.contains('='))
                {
                    return Err(self.at(line, Error::BadVariable { name: key.clone() }));
                }
                working.config.edit_runtime_config(|runtime| {
                    let env = runtime.env.get_or_insert_default();
                    for (key, value) in &expanded {
                        env.retain(|existing| existing.split('=').next() != Some(key.as_str()));
                        env.push(format!("{key}={value}"));
                    }
                });
                self.config_step(working, format!("ENV {}", shown_pairs(&expanded)));
            }
            Command::Label(pairs) => {
                let expanded = self.expand_pairs(working, pairs, line, keyword)?;
                working.config.edit_runtime_config(|runtime| {
                    runtime
                        .labels
                        .get_or_insert_default()
                        .extend(expanded.iter().cloned());
                });
                self.config_step(working, format!("LABEL {}", shown_pairs(&expanded)));
            }
            Command::User(raw) => {
                let user = self.expand(working, raw, line, keyword)?;
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.user = Some(user.clone()));
                working.user_line = Some(line);
                self.config_step(working, format!("USER {user}"));
            }
            Command::Workdir(raw) => {
                let path = self.expand(working, raw, line, keyword)?;
                let joined = working.in_workdir(&path);
                let cleaned = format!("/{}", sealcraft_glob::clean(&joined).unwrap_or_default());
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.working_dir = Some(cleaned.clone()));
                let key = cache_key(&working.chain(), &["WORKDIR", &cleaned]);
                let created_by = format!("WORKDIR {cleaned}");
                self.layer_step(
                    working,
                    label,
                    instruction,
                    created_by,
                    key,
                    &mut |_builder, root| {
                        root.create_dir_all(Path::new(&cleaned), NewDir::default())
                            .map_err(|source| Error::Workdir {
                                path: cleaned.clone(),
                                source,
                            })?;
                        Ok(Vec::new())
                    },
                )?;
            }
            Command::Entrypoint(form) => {
                let list = self.command_list(working, form);
                // An ENTRYPOINT drops an inherited CMD, not one set in this stage.
                let keep_cmd = working.cmd_set;
                working.config.edit_runtime_config(|runtime| {
                    runtime.entrypoint = Some(list.clone());
                    if !keep_cmd {
                        runtime.cmd = None;
                    }
                });
                self.config_step(working, format!("ENTRYPOINT {}", json!(list)));
            }
            Command::Cmd(form) => {
                let list = self.command_list(working, form);
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.cmd = Some(list.clone()));
                working.cmd_set = true;
                self.config_step(working, format!("CMD {}", json!(list)));
            }
            Command::Expose(raw) => {
                let words = self.expand_list(working, raw, line, keyword)?;
                let mut added = Vec::new();
                for word in &words {
                    added.extend(expose_ports(word).map_err(|reason| {
                        self.at(
                            line,
                            Error::BadPort {
                                word: word.clone(),
                                reason,
                            },
                        )
                    })?);
                }
                working.config.edit_runtime_config(|runtime| {
                    runtime.exposed_ports = Some(sorted_union(runtime.exposed_ports.take(), added));
                });
                self.config_step(working, format!("EXPOSE {}", words.join(" ")));
            }
            Command::Volume(raw) => {
                let words = self.expand_list(working, raw, line, keyword)?;
                if words.is_empty() {
                    return Err(self.at(line, Error::NoVolume));
                }
                working.config.edit_runtime_config(|runtime| {
                    runtime.volumes = Some(sorted_union(runtime.volumes.take(), words.clone()));
                });
                self.config_step(working, format!("VOLUME {}", json!(words)));
            }
            Command::StopSignal(raw) => {
                let signal = self.expand(working, raw, line, keyword)?;
                let valid = signal
                    .parse::<u32>()
                    .is_ok_and(|number| (1..=64).contains(&number))
                    || (signal.starts_with("SIG")
                        && signal.len() > 3
                        && signal[3..]
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '+' || ch == '-'));
                if !valid {
                    return Err(self.at(line, Error::BadSignal { signal }));
                }
                working
                    .config
                    .edit_runtime_config(|runtime| runtime.stop_signal = Some(signal.clone()));
                self.config_step(working, format!("STOPSIGNAL {signal}"));
            }
            Command::Healthcheck(check) => {
                let value = match check {
                    None => json!({"Test": ["NONE"]}),
                    Some(check) => {
                        let test: Vec<String> = match &check.test {
                            Form::Exec(list) => std::iter::once("CMD".to_owned())
                                .chain(list.iter().cloned())
                                .collect(),
                            Form::Shell(command) => vec!["CMD-SHELL".into(), command.clone()],
                        };
                        let mut value = json!({"Test": test});
                        for (field, setting) in [
                            ("Interval", check.interval),
                            ("Timeout", check.timeout),
                            ("StartPeriod", check.start_period),
                            ("StartInterval", check.start_interval),
                            ("Retries", check.retries),
                        ] {
                            if let Some(setting) = setting {
                                value[field] = json!(setting);
                            }
                        }
                        value
                    }
                };
                working.config.set_runtime_field("Healthcheck", Some(value));
                self.config_step(working, instruction.source.clone());
            }
            Command::Shell(shell) => {
                working.shell = shell.clone();
                working
                    .config
                    .set_runtime_field("Shell", Some(json!(shell)));
                self.config_step(working, format!("SHELL {}", json!(shell)));
            }
            Command::Maintainer(raw) => {
                let author = self.expand(working, raw, line, keyword)?;
                working.config.set_author(&author);
                self.config_step(working, format!("MAINTAINER {author}"));
            }
            Command::Run(run) => self.run_step(working, label, instruction, run)?,
            Command::Copy(copy) => {
                self.copy_step(working, label, stage_index, instruction, copy, false)?
            }
            Command::Add(copy) => {
                self.copy_step(working, label, stage_index, instruction, copy, true)?
            }
        }
        if !matches!(
            instruction.command,
            Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_)
        ) {
            self.report(label, line, &instruction.source, StepStatus::Done);
        }
        Ok(())
    }

    /// ENV and LABEL pairs, substituted with the variables from before the
    /// instruction (all pairs of one instruction see the same ones).
    pub(crate) fn expand_pairs(
        &self,
        working: &Working,
        pairs: &[(String, String)],
        line: usize,
        keyword: &'static str,
    ) -> Result<Vec<(String, String)>> {
        let vars = working.vars();
        let expand = |raw: &str| {
            words::expand_word(raw, &vars, self.spec.dockerfile.escape)
                .map_err(|error| self.word_error(line, keyword, error))
        };
        pairs
            .iter()
            .map(|(key, value)| Ok((expand(key)?, expand(value)?)))
            .collect()
    }

    pub(crate) fn command_list(&self, working: &Working, form: &Form) -> Vec<String> {
        match form {
            Form::Exec(list) => list.clone(),
            Form::Shell(command) => working
                .shell
                .iter()
                .cloned()
                .chain(std::iter::once(command.clone()))
                .collect(),
        }
    }
}

/// `existing` and `added` as one sorted list without repeats (EXPOSE, VOLUME).
fn sorted_union(existing: Option<Vec<String>>, added: Vec<String>) -> Vec<String> {
    let union: BTreeSet<String> = existing
        .unwrap_or_default()
        .into_iter()
        .chain(added)
        .collect();
    union.into_iter().collect()
}

/// `k=v k2=v2` as a history entry shows it.
fn shown_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// EXPOSE's `port[/proto]` and `low-high[/proto]`, as ExposedPorts keys;
/// the error says what is wrong with the word.
fn expose_ports(word: &str) -> std::result::Result<Vec<String>, &'static str> {
    let (ports, protocol) = match word.split_once('/') {
        Some((ports, protocol)) => (ports, protocol.to_ascii_lowercase()),
        None => (word, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err("the protocol must be tcp, udp or sctp");
    }
    let parse = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or("not a port number")
    };
    let (low, high) = match ports.split_once('-') {
        Some((low, high)) => (parse(low)?, parse(high)?),
        None => {
            let port = parse(ports)?;
            (port, port)
        }
    };
    if high < low || high - low > 1024 {
        return Err("not a sensible port range");
    }
    Ok((low..=high)
        .map(|port| format!("{port}/{protocol}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_accepts_ports_protocols_and_ranges() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err());
        assert!(expose_ports("80/icmp").is_err());
        assert!(expose_ports("0").is_err());
        assert!(expose_ports("9-1").is_err());
    }
}
