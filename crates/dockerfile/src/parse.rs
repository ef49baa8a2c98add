//! Dockerfile text to stages of instructions.
//!
//! Parsing handles the `escape` directive (and accepts `syntax` and
//! `check`), line continuations, comment lines (also inside
//! continuations), heredocs for RUN, COPY and ADD, JSON (exec) and shell
//! forms, and instruction flags. Values stay raw: ARG and ENV substitution
//! depends on the state at the moment an instruction runs, so the executor
//! expands them with [`crate::words`]. Anything unsupported is refused here,
//! with the line, before any work starts.

use std::collections::BTreeSet;

use crate::instructions::{
    ArgDecl, Command, Copy, CopySource, Dockerfile, Form, Healthcheck, Instruction, Network, Run,
    Stage,
};
use crate::lines::{Heredoc, LogicalLine, directives, logical_lines, split_keyword};
use crate::mounts::MountError;
use crate::words::{self, Vars, WordError};

/// A parse error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    /// The line the instruction starts on.
    pub line: usize,
    /// What is wrong (in the message, so not repeated as a cause).
    pub problem: Problem,
}

/// What is wrong with an instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The text breaks the Dockerfile grammar; the message says how.
    #[error("{0}")]
    Syntax(String),
    /// Words could not be split.
    #[error(transparent)]
    Word(#[from] WordError),
    /// A `RUN --mount` value is invalid.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A HEALTHCHECK duration is invalid.
    #[error("--{flag}: {reason}")]
    Duration {
        /// The flag.
        flag: String,
        /// Why (shown in this message, so not also as a cause).
        reason: DurationError,
    },
}

/// A text that is not a Go-style duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration (e.g. 30s, 1m30s, 500ms)")]
pub struct DurationError {
    /// The text.
    pub text: String,
}

pub(crate) fn syntax(message: impl Into<String>) -> Problem {
    Problem::Syntax(message.into())
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, first_line) = directives(&lines)?;
    let logical = logical_lines(&lines, first_line, escape)?;
    let mut dockerfile = Dockerfile {
        escape,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    let mut names = BTreeSet::new();
    for logical_line in logical {
        let error = |problem: Problem| ParseError {
            line: logical_line.line,
            problem,
        };
        let (keyword, rest) = split_keyword(&logical_line.text);
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let stage = parse_from(rest, escape, dockerfile.stages.len(), logical_line.line)
                .map_err(error)?;
            if let Some(name) = &stage.name
                && !names.insert(name.clone())
            {
                return Err(error(syntax(format!("duplicate stage name {name:?}"))));
            }
            dockerfile.stages.push(stage);
            continue;
        }
        let command = parse_instruction(&keyword, rest, escape, &logical_line).map_err(error)?;
        match dockerfile.stages.last_mut() {
            Some(stage) => stage.instructions.push(Instruction {
                line: logical_line.line,
                source: logical_line.text.clone(),
                command,
            }),
            None => match command {
                Command::Arg(declarations) => dockerfile.global_args.extend(declarations),
                other => {
                    return Err(error(syntax(format!(
                        "{} before the first FROM: only ARG may come before FROM",
                        other.keyword()
                    ))));
                }
            },
        }
    }
    if dockerfile.stages.is_empty() {
        return Err(ParseError {
            line: lines.len().max(1),
            problem: syntax("no FROM instruction: a Dockerfile needs at least one build stage"),
        });
    }
    Ok(dockerfile)
}

/// Leading `--name[=value]` flags, and the rest of the line after them.
fn take_flags(rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut remaining = rest.trim_start();
    while let Some(after) = remaining.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let flag = &after[..end];
        if flag.is_empty() {
            break;
        }
        match flag.split_once('=') {
            Some((name, value)) => flags.push((name.to_ascii_lowercase(), Some(value.to_owned()))),
            None => flags.push((flag.to_ascii_lowercase(), None)),
        }
        remaining = after[end..].trim_start();
    }
    (flags, remaining)
}

fn unquote_flag(value: &str) -> String {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

fn flag_value(name: &str, value: Option<String>) -> Result<String, Problem> {
    match value {
        Some(value) if !value.is_empty() => Ok(unquote_flag(&value)),
        _ => Err(syntax(format!("--{name} needs a value (--{name}=…)"))),
    }
}

fn parse_from(rest: &str, escape: char, index: usize, line: usize) -> Result<Stage, Problem> {
    let (flags, rest) = take_flags(rest);
    let mut platform = None;
    for (name, value) in flags {
        match name.as_str() {
            "platform" => platform = Some(flag_value(&name, value)?),
            other => return Err(syntax(format!("FROM does not take --{other}"))),
        }
    }
    let words = words::split_raw(rest, escape).map_err(Problem::from)?;
    let (image, name) = match words.as_slice() {
        [image] => (image.clone(), None),
        [image, keyword, name] if keyword.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let valid = name
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
            if !valid {
                return Err(syntax(format!(
                    "invalid stage name {name:?}: it must start with a letter and contain only letters, digits, '-', '_' and '.'"
                )));
            }
            (image.clone(), Some(name))
        }
        [] => return Err(syntax("FROM needs an image (or scratch)")),
        _ => return Err(syntax("FROM takes an image and an optional `AS name`")),
    };
    Ok(Stage {
        index,
        name,
        line,
        image,
        platform,
        instructions: Vec::new(),
    })
}

/// A JSON array of strings, if `rest` is one.
fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

fn form(rest: &str) -> Form {
    match json_array(rest) {
        Some(list) => Form::Exec(list),
        None => Form::Shell(rest.to_owned()),
    }
}

fn parse_instruction(
    keyword: &str,
    rest: &str,
    escape: char,
    logical: &LogicalLine,
) -> Result<Command, Problem> {
    let no_flags = |rest: &str| -> Result<(), Problem> {
        let (flags, _) = take_flags(rest);
        match flags.first() {
            Some((name, _)) => Err(syntax(format!("{keyword} does not take --{name}"))),
            None => Ok(()),
        }
    };
    let needs_arguments = |rest: &str| -> Result<(), Problem> {
        if rest.trim().is_empty() {
            Err(syntax(format!("{keyword} needs arguments")))
        } else {
            Ok(())
        }
    };
    let raw_words = |rest: &str| words::split_raw(rest, escape).map_err(Problem::from);
    match keyword {
        "RUN" => {
            let (flags, command) = take_flags(rest);
            let mut mounts = Vec::new();
            let mut network = Network::Default;
            for (name, value) in flags {
                match name.as_str() {
                    "mount" => {
                        let value = flag_value(&name, value)?;
                        crate::mounts::parse(&value, &Vars::new(), escape)?;
                        mounts.push(value);
                    }
                    "network" => {
                        network = match flag_value(&name, value)?.as_str() {
                            "default" | "host" => Network::Default,
                            "none" => Network::None,
                            other => {
                                return Err(syntax(format!(
                                    "unknown --network={other}: expected default, host or none"
                                )));
                            }
                        }
                    }
                    "security" => {
                        let value = flag_value(&name, value)?;
                        if value != "sandbox" {
                            return Err(syntax(format!(
                                "--security={value} is not supported: RUN steps always run sandboxed"
                            )));
                        }
                    }
                    other => return Err(syntax(format!("RUN does not take --{other}"))),
                }
            }
            needs_arguments(command)?;
            let command = run_command(command, &logical.heredocs);
            Ok(Command::Run(Run {
                mounts,
                network,
                command,
            }))
        }
        "COPY" | "ADD" => {
            let (flags, arguments) = take_flags(rest);
            let mut copy = Copy {
                from: None,
                chown: None,
                chmod: None,
                sources: Vec::new(),
                destination: String::new(),
            };
            for (name, value) in flags {
                match name.as_str() {
                    "from" if keyword == "COPY" => copy.from = Some(flag_value(&name, value)?),
                    "chown" => copy.chown = Some(flag_value(&name, value)?),
                    "chmod" => copy.chmod = Some(flag_value(&name, value)?),
                    // A linked copy gives the same filesystem; the layer is built the same way.
                    "link" => {}
                    "checksum" if keyword == "ADD" => {
                        return Err(syntax(
                            "ADD --checksum applies to remote URLs, which sealcraft does not fetch",
                        ));
                    }
                    other => return Err(syntax(format!("{keyword} does not take --{other}"))),
                }
            }
            let mut list = match json_array(arguments) {
                Some(list) => list,
                None => raw_words(arguments)?,
            };
            if list.len() < 2 {
                return Err(syntax(format!(
                    "{keyword} needs at least one source and a destination"
                )));
            }
            copy.destination = list.pop().unwrap_or_default();
            let mut heredocs = logical.heredocs.iter();
            for source in list {
                let marker = source.strip_prefix("<<");
                match marker {
                    Some(_) => {
                        let heredoc = heredocs
                            .next()
                            .ok_or_else(|| syntax(format!("heredoc {source} has no body")))?;
                        copy.sources.push(CopySource::Inline {
                            name: heredoc.word.clone(),
                            content: heredoc.content.clone(),
                            expand: !heredoc.quoted,
                        });
                    }
                    None => {
                        if source.contains("://") {
                            return Err(syntax(format!(
                                "{keyword} from a URL ({source}) is not supported: builds take their inputs from the context, so fetch it in a RUN step that checks its digest"
                            )));
                        }
                        copy.sources.push(CopySource::Path(source));
                    }
                }
            }
            Ok(if keyword == "COPY" {
                Command::Copy(copy)
            } else {
                Command::Add(copy)
            })
        }
        "ENV" | "LABEL" => {
            no_flags(rest)?;
            needs_arguments(rest)?;
            let pairs = key_values(keyword, rest, escape)?;
            Ok(if keyword == "ENV" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            })
        }
        "ARG" => {
            needs_arguments(rest)?;
            let mut declarations = Vec::new();
            for word in raw_words(rest)? {
                let (name, default) = match word.split_once('=') {
                    Some((name, default)) => (name.to_owned(), Some(default.to_owned())),
                    None => (word.clone(), None),
                };
                if !valid_variable_name(&name) {
                    return Err(syntax(format!("invalid ARG name {name:?}")));
                }
                declarations.push(ArgDecl { name, default });
            }
            Ok(Command::Arg(declarations))
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags(rest)?;
            needs_arguments(rest)?;
            let value = rest.trim().to_owned();
            Ok(match keyword {
                "USER" => Command::User(value),
                "WORKDIR" => Command::Workdir(value),
                "STOPSIGNAL" => Command::StopSignal(value),
                _ => Command::Maintainer(value),
            })
        }
        "ENTRYPOINT" | "CMD" => {
            no_flags(rest)?;
            needs_arguments(rest)?;
            let form = form(rest);
            Ok(if keyword == "CMD" {
                Command::Cmd(form)
            } else {
                Command::Entrypoint(form)
            })
        }
        "EXPOSE" => {
            no_flags(rest)?;
            needs_arguments(rest)?;
            Ok(Command::Expose(raw_words(rest)?))
        }
        "VOLUME" => {
            no_flags(rest)?;
            needs_arguments(rest)?;
            Ok(Command::Volume(match json_array(rest) {
                Some(list) => list,
                None => raw_words(rest)?,
            }))
        }
        "SHELL" => match json_array(rest) {
            Some(list) if !list.is_empty() => Ok(Command::Shell(list)),
            _ => Err(syntax(
                "SHELL takes a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]",
            )),
        },
        "HEALTHCHECK" => parse_healthcheck(rest).map(Command::Healthcheck),
        "ONBUILD" => Err(syntax(
            "ONBUILD is not supported: triggers run in someone else's build, which a reproducible build cannot account for",
        )),
        "" => Err(syntax("empty instruction")),
        other => Err(syntax(format!("unknown instruction {other}"))),
    }
}

/// RUN's command; a heredoc that is the whole command becomes the script.
fn run_command(command: &str, heredocs: &[Heredoc]) -> Form {
    if heredocs.is_empty() {
        return form(command);
    }
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.len() == 1 && heredocs.len() == 1 && words[0].starts_with("<<") {
        return Form::Shell(heredocs[0].content.clone());
    }
    // Otherwise the shell reads the heredocs itself: hand it the lines as written.
    let mut script = command.to_owned();
    for heredoc in heredocs {
        script.push('\n');
        script.push_str(&heredoc.content);
        script.push_str(&heredoc.word);
    }
    Form::Shell(script)
}

fn valid_variable_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && name
            .chars()
            .all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

/// `k=v k2="v 2"`, or the legacy `ENV key value with spaces`.
fn key_values(keyword: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, Problem> {
    let words = words::split_raw(rest, escape).map_err(Problem::from)?;
    let first_has_equals = words.first().is_some_and(|word| word.contains('='));
    if !first_has_equals {
        let (key, value) = split_keyword(rest);
        if value.is_empty() {
            return Err(syntax(format!(
                "{keyword} {key} needs a value ({key}=value)"
            )));
        }
        return Ok(vec![(key.to_owned(), value.to_owned())]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(syntax(format!(
                "{keyword} arguments must all be key=value ({word:?} is not)"
            ))),
        })
        .collect()
}

fn parse_healthcheck(rest: &str) -> Result<Option<Healthcheck>, Problem> {
    let (flags, rest) = take_flags(rest);
    let (keyword, command) = split_keyword(rest);
    if keyword.eq_ignore_ascii_case("NONE") {
        if !flags.is_empty() || !command.is_empty() {
            return Err(syntax("HEALTHCHECK NONE takes no other arguments"));
        }
        return Ok(None);
    }
    if !keyword.eq_ignore_ascii_case("CMD") || command.is_empty() {
        return Err(syntax("HEALTHCHECK takes CMD command… or NONE"));
    }
    let mut check = Healthcheck {
        test: form(command),
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    };
    for (name, value) in flags {
        let value = flag_value(&name, value)?;
        let duration = || {
            parse_duration(&value).map_err(|reason| Problem::Duration {
                flag: name.clone(),
                reason,
            })
        };
        match name.as_str() {
            "interval" => check.interval = Some(duration()?),
            "timeout" => check.timeout = Some(duration()?),
            "start-period" => check.start_period = Some(duration()?),
            "start-interval" => check.start_interval = Some(duration()?),
            "retries" => {
                check.retries = Some(
                    value
                        .parse()
                        .map_err(|_| syntax(format!("--retries: {value:?} is not a number")))?,
                )
            }
            other => return Err(syntax(format!("HEALTHCHECK does not take --{other}"))),
        }
    }
    Ok(Some(check))
}

/// A duration like `30s`, `1m30s` or `500ms`, in nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let bad = || DurationError {
        text: text.to_owned(),
    };
    if text == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|ch: char| !ch.is_ascii_digit() && ch != '.')
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|ch: char| ch.is_ascii_digit() || ch == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        total = total.saturating_add((number * scale) as u64);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Dockerfile {
        parse(text).unwrap_or_else(|error| panic!("{error}"))
    }

    fn error_of(text: &str) -> ParseError {
        parse(text).expect_err("the Dockerfile should be refused")
    }

    #[test]
    fn continuations_comments_and_forms() {
        let file = parse_ok(concat!(
            "# syntax=docker/dockerfile:1\n",
            "ARG BASE=debian\n",
            "FROM ${BASE} AS Builder\n",
            "# a comment\n",
            "RUN apt-get update \\  \n",
            "# a comment inside the continuation\n",
            "\n",
            "    && apt-get install -y gcc\n",
            "CMD [\"/bin/app\", \"--serve\"]\n",
            "ENTRYPOINT /bin/app --flag\n",
            "ENV A=1 B=\"two words\"\n",
            "ENV LEGACY value with spaces\n",
        ));
        assert_eq!(file.escape, '\\');
        assert_eq!(
            file.global_args,
            [ArgDecl {
                name: "BASE".into(),
                default: Some("debian".into())
            }]
        );
        let stage = &file.stages[0];
        assert_eq!(stage.name.as_deref(), Some("builder"));
        assert_eq!(stage.image, "${BASE}");
        assert_eq!(stage.line, 3);
        let Command::Run(run) = &stage.instructions[0].command else {
            panic!("RUN expected");
        };
        assert_eq!(stage.instructions[0].line, 5);
        assert_eq!(
            run.command,
            Form::Shell("apt-get update     && apt-get install -y gcc".into())
        );
        assert!(matches!(
            &stage.instructions[1].command,
            Command::Cmd(Form::Exec(list)) if list == &["/bin/app", "--serve"]
        ));
        assert!(matches!(
            &stage.instructions[2].command,
            Command::Entrypoint(Form::Shell(text)) if text == "/bin/app --flag"
        ));
        assert!(matches!(
            &stage.instructions[3].command,
            Command::Env(pairs) if pairs == &[("A".into(), "1".into()), ("B".into(), "\"two words\"".into())]
        ));
        assert!(matches!(
            &stage.instructions[4].command,
            Command::Env(pairs) if pairs == &[("LEGACY".into(), "value with spaces".into())]
        ));
    }

    #[test]
    fn the_escape_directive_changes_continuations() {
        let file = parse_ok("# escape=`\nFROM scratch\nCOPY C:\\src `\n  C:\\dst\n");
        assert_eq!(file.escape, '`');
        let Command::Copy(copy) = &file.stages[0].instructions[0].command else {
            panic!("COPY expected");
        };
        assert_eq!(copy.sources, [CopySource::Path("C:\\src".into())]);
        assert_eq!(copy.destination, "C:\\dst");
        // After the first instruction, a directive is only a comment.
        let file = parse_ok("FROM scratch\n# escape=`\nCOPY a \\\n b\n");
        assert_eq!(file.escape, '\\');
    }

    #[test]
    fn copy_flags_and_json_sources() {
        let file = parse_ok(
            "FROM scratch AS one\nFROM one\nCOPY --from=one --chown=app:app --chmod=0755 [\"a b\", \"c\", \"/dst/\"]\n",
        );
        let Command::Copy(copy) = &file.stages[1].instructions[0].command else {
            panic!("COPY expected");
        };
        assert_eq!(copy.from.as_deref(), Some("one"));
        assert_eq!(copy.chown.as_deref(), Some("app:app"));
        assert_eq!(copy.chmod.as_deref(), Some("0755"));
        assert_eq!(
            copy.sources,
            [CopySource::Path("a b".into()), CopySource::Path("c".into())]
        );
        assert_eq!(copy.destination, "/dst/");
    }

    #[test]
    fn heredocs_become_scripts_and_inline_files() {
        let file = parse_ok(
            "FROM scratch\nRUN <<EOF\nset -e\necho hi\nEOF\nRUN cat > /x <<-'END'\n\tliteral $HOME\n\tEND\nCOPY <<conf /etc/app.conf\nkey=$VALUE\nconf\n",
        );
        let stage = &file.stages[0];
        assert!(matches!(
            &stage.instructions[0].command,
            Command::Run(Run { command: Form::Shell(script), .. }) if script == "set -e\necho hi\n"
        ));
        assert!(matches!(
            &stage.instructions[1].command,
            Command::Run(Run { command: Form::Shell(script), .. })
                if script == "cat > /x <<-'END'\nliteral $HOME\nEND"
        ));
        let Command::Copy(copy) = &stage.instructions[2].command else {
            panic!("COPY expected");
        };
        assert_eq!(
            copy.sources,
            [CopySource::Inline {
                name: "conf".into(),
                content: "key=$VALUE\n".into(),
                expand: true
            }]
        );
        assert_eq!(stage.instructions[2].line, 9);
    }

    #[test]
    fn healthcheck_and_run_flags() {
        let file = parse_ok(
            "FROM scratch\nHEALTHCHECK --interval=1m30s --retries=3 CMD [\"/bin/check\"]\nHEALTHCHECK NONE\nRUN --network=none --mount=type=secret,id=token true\n",
        );
        let stage = &file.stages[0];
        assert_eq!(
            match &stage.instructions[0].command {
                Command::Healthcheck(Some(check)) => check.interval,
                _ => None,
            },
            Some(90_000_000_000)
        );
        assert!(matches!(
            stage.instructions[1].command,
            Command::Healthcheck(None)
        ));
        let Command::Run(run) = &stage.instructions[2].command else {
            panic!("RUN expected");
        };
        assert_eq!(run.network, Network::None);
        assert_eq!(run.mounts, ["type=secret,id=token"]);
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert!(parse_duration("5 seconds").is_err());
    }

    #[test]
    fn unsupported_and_malformed_input_names_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "FROM scratch\nONBUILD RUN x\n",
                2,
                "ONBUILD is not supported",
            ),
            (
                "FROM scratch\nFROBNICATE\n",
                2,
                "unknown instruction FROBNICATE",
            ),
            ("RUN true\nFROM scratch\n", 1, "before the first FROM"),
            ("# just a comment\n", 1, "no FROM"),
            ("FROM scratch\nCOPY onlyone\n", 2, "at least one source"),
            ("FROM scratch\nADD https://example.com/x /x\n", 2, "URL"),
            ("FROM scratch\nRUN --mount=type=ssh true\n", 2, "ssh"),
            ("FROM scratch\nRUN --privileged true\n", 2, "--privileged"),
            ("FROM scratch\nSHELL /bin/bash -c\n", 2, "JSON array"),
            ("FROM a AS x\nFROM b AS X\n", 2, "duplicate stage name"),
            ("FROM a AS 1x\n", 1, "invalid stage name"),
            ("FROM scratch\nRUN <<EOF\necho\n", 2, "never terminated"),
            ("FROM scratch\nENV A=1 B\n", 2, "key=value"),
            ("FROM scratch\nCOPY --parents a /b\n", 2, "--parents"),
            ("# escape=x\nFROM scratch\n", 1, "invalid escape"),
            (
                "FROM scratch\nHEALTHCHECK --interval=soon CMD true\n",
                2,
                "duration",
            ),
        ];
        for (text, line, needle) in cases {
            let error = error_of(text);
            assert_eq!(error.line, *line, "{text:?}: {error}");
            assert!(
                error.problem.to_string().contains(needle),
                "{text:?}: {error} lacks {needle:?}"
            );
        }
    }
}
