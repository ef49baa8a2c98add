//! The Dockerfile frontend: text to stages of instructions.
//!
//! Parsing handles the `escape` directive (and accepts `syntax` and
//! `check`), line continuations, comment lines (also inside
//! continuations), heredocs for RUN, COPY and ADD, JSON (exec) and shell
//! forms, and instruction flags. Values stay raw: ARG and ENV substitution
//! depends on the state at the moment an instruction runs, so the executor
//! expands them with [`crate::words`]. Anything unsupported is refused here,
//! with the line, before any work starts.

use std::collections::BTreeSet;

use crate::words::{self, Vars};

/// A parse error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The line the instruction starts on.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The escape character (`\` unless a directive says otherwise).
    pub escape: char,
    /// ARGs declared before the first FROM (usable in FROM lines).
    pub global_args: Vec<ArgDecl>,
    /// The build stages, in order.
    pub stages: Vec<Stage>,
}

/// One build stage: a FROM and what follows it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position in the file (0 is the first FROM).
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// The FROM line.
    pub line: usize,
    /// The base, raw (global ARGs are substituted when it is resolved).
    pub image: String,
    /// `--platform`, raw.
    pub platform: Option<String>,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The name a user would recognise: the `AS` name or the index.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// One instruction with its line and source text.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// The line it starts on.
    pub line: usize,
    /// The logical line as written (continuations joined), for messages.
    pub source: String,
    /// What it does.
    pub command: Command,
}

/// An `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, raw.
    pub default: Option<String>,
}

/// Exec form (a JSON array) or shell form (a string for the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `["executable", "arg"]`.
    Exec(Vec<String>),
    /// `command line`, run by the SHELL.
    Shell(String),
}

/// The network a RUN step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network (the build's default).
    #[default]
    Default,
    /// Only a loopback interface.
    None,
}

/// A RUN instruction.
#[derive(Debug, Clone)]
pub struct Run {
    /// `--mount` values, raw (expanded when the step runs).
    pub mounts: Vec<String>,
    /// `--network`.
    pub network: Network,
    /// The command.
    pub command: Form,
}

/// Where a COPY or ADD source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A path or glob in the context (or in `--from`'s root).
    Path(String),
    /// A heredoc: the file name and its content.
    Inline {
        /// The file name (the heredoc word).
        name: String,
        /// The content; `expand` says whether variables are substituted in it.
        content: String,
        /// Unquoted heredoc words substitute variables.
        expand: bool,
    },
}

/// A COPY or ADD instruction.
#[derive(Debug, Clone)]
pub struct Copy {
    /// `--from`, raw.
    pub from: Option<String>,
    /// `--chown`, raw.
    pub chown: Option<String>,
    /// `--chmod`, raw.
    pub chmod: Option<String>,
    /// The sources, raw.
    pub sources: Vec<CopySource>,
    /// The destination, raw.
    pub destination: String,
}

/// A HEALTHCHECK with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test command.
    pub test: Form,
    /// `--interval` in nanoseconds.
    pub interval: Option<u64>,
    /// `--timeout` in nanoseconds.
    pub timeout: Option<u64>,
    /// `--start-period` in nanoseconds.
    pub start_period: Option<u64>,
    /// `--start-interval` in nanoseconds.
    pub start_interval: Option<u64>,
    /// `--retries`.
    pub retries: Option<u64>,
}

/// What an instruction does.
#[derive(Debug, Clone)]
pub enum Command {
    /// RUN.
    Run(Run),
    /// COPY.
    Copy(Copy),
    /// ADD (local files; local tar archives are extracted).
    Add(Copy),
    /// ENV: raw `key=value` words.
    Env(Vec<(String, String)>),
    /// ARG.
    Arg(Vec<ArgDecl>),
    /// LABEL: raw `key=value` words.
    Label(Vec<(String, String)>),
    /// USER, raw.
    User(String),
    /// WORKDIR, raw.
    Workdir(String),
    /// ENTRYPOINT.
    Entrypoint(Form),
    /// CMD.
    Cmd(Form),
    /// EXPOSE, raw words.
    Expose(Vec<String>),
    /// VOLUME, raw words (or the JSON list).
    Volume(Vec<String>),
    /// STOPSIGNAL, raw.
    StopSignal(String),
    /// HEALTHCHECK; `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    /// SHELL (exec form only).
    Shell(Vec<String>),
    /// MAINTAINER (deprecated; sets the config's author).
    Maintainer(String),
}

impl Command {
    /// The instruction keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Run(_) => "RUN",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Env(_) => "ENV",
            Self::Arg(_) => "ARG",
            Self::Label(_) => "LABEL",
            Self::User(_) => "USER",
            Self::Workdir(_) => "WORKDIR",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Cmd(_) => "CMD",
            Self::Expose(_) => "EXPOSE",
            Self::Volume(_) => "VOLUME",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
            Self::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// A logical line: continuations joined, comments removed, heredoc bodies attached.
struct LogicalLine {
    line: usize,
    text: String,
    heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone)]
struct Heredoc {
    word: String,
    content: String,
    quoted: bool,
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
        let error = |message: String| ParseError {
            line: logical_line.line,
            message,
        };
        let (keyword, rest) = split_keyword(&logical_line.text);
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let stage = parse_from(rest, escape, dockerfile.stages.len(), logical_line.line)
                .map_err(error)?;
            if let Some(name) = &stage.name
                && !names.insert(name.clone())
            {
                return Err(error(format!("duplicate stage name {name:?}")));
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
                    return Err(error(format!(
                        "{} before the first FROM: only ARG may come before FROM",
                        other.keyword()
                    )));
                }
            },
        }
    }
    if dockerfile.stages.is_empty() {
        return Err(ParseError {
            line: lines.len().max(1),
            message: "no FROM instruction: a Dockerfile needs at least one build stage".into(),
        });
    }
    Ok(dockerfile)
}

/// Parser directives at the top of the file: `# escape=`, `# syntax=`, `# check=`.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    let mut seen = BTreeSet::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            return Ok((escape, index));
        };
        let Some((name, value)) = comment.split_once('=') else {
            return Ok((escape, index));
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            return Ok((escape, index));
        }
        let value = value.trim();
        if !seen.insert(name.clone()) {
            return Err(ParseError {
                line: index + 1,
                message: format!("the {name} directive may only be given once"),
            });
        }
        match name.as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError {
                            line: index + 1,
                            message: format!(
                                "invalid escape character {other:?}: it must be ` or \\"
                            ),
                        });
                    }
                }
            }
            // The frontend is sealcraft's own; syntax and check need no action.
            "syntax" | "check" => {}
            // Unknown directives are comments, as in BuildKit.
            _ => return Ok((escape, index)),
        }
    }
    Ok((escape, lines.len()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Joins continuations, drops comment and empty lines, and collects heredoc bodies.
fn logical_lines(
    lines: &[&str],
    start: usize,
    escape: char,
) -> Result<Vec<LogicalLine>, ParseError> {
    let mut result = Vec::new();
    let mut index = start;
    while index < lines.len() {
        let line = lines[index];
        if line.trim().is_empty() || is_comment(line) {
            index += 1;
            continue;
        }
        let first = index;
        let mut text = String::new();
        loop {
            let current = lines[index];
            index += 1;
            let trimmed = current.trim_end();
            match trimmed.strip_suffix(escape) {
                Some(body) => {
                    text.push_str(body);
                    // Comment and empty lines inside a continuation are skipped.
                    while index < lines.len()
                        && (lines[index].trim().is_empty() || is_comment(lines[index]))
                    {
                        index += 1;
                    }
                    if index >= lines.len() {
                        break;
                    }
                }
                None => {
                    text.push_str(current);
                    break;
                }
            }
        }
        let (keyword, rest) = split_keyword(&text);
        let mut heredocs = Vec::new();
        if matches!(
            keyword.to_ascii_uppercase().as_str(),
            "RUN" | "COPY" | "ADD"
        ) {
            for (word, strip_tabs, quoted) in heredoc_words(rest) {
                let mut content = String::new();
                loop {
                    let Some(body_line) = lines.get(index) else {
                        return Err(ParseError {
                            line: first + 1,
                            message: format!("heredoc <<{word} is never terminated"),
                        });
                    };
                    index += 1;
                    let body_line = if strip_tabs {
                        body_line.trim_start_matches('\t')
                    } else {
                        body_line
                    };
                    if body_line == word {
                        break;
                    }
                    content.push_str(body_line);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    word,
                    content,
                    quoted,
                });
            }
        }
        result.push(LogicalLine {
            line: first + 1,
            text: text.trim().to_owned(),
            heredocs,
        });
    }
    Ok(result)
}

/// Heredoc markers `<<WORD`, `<<-WORD`, `<<"WORD"`, `<<'WORD'` in a line.
fn heredoc_words(text: &str) -> Vec<(String, bool, bool)> {
    let mut found = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut position = 0;
    while position + 2 < bytes.len() + 1 {
        if bytes.get(position) == Some(&'<') && bytes.get(position + 1) == Some(&'<') {
            let mut cursor = position + 2;
            let strip_tabs = bytes.get(cursor) == Some(&'-');
            if strip_tabs {
                cursor += 1;
            }
            let quote = match bytes.get(cursor) {
                Some(&q @ ('"' | '\'')) => {
                    cursor += 1;
                    Some(q)
                }
                _ => None,
            };
            let begin = cursor;
            while cursor < bytes.len()
                && (bytes[cursor].is_ascii_alphanumeric() || bytes[cursor] == '_')
            {
                cursor += 1;
            }
            let word: String = bytes[begin..cursor].iter().collect();
            let closed = match quote {
                Some(q) => bytes.get(cursor) == Some(&q),
                None => true,
            };
            if !word.is_empty()
                && closed
                && word.chars().next().is_some_and(|c| !c.is_ascii_digit())
            {
                found.push((word, strip_tabs, quote.is_some()));
                position = cursor + usize::from(quote.is_some());
                continue;
            }
        }
        position += 1;
    }
    found
}

fn split_keyword(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim_start()),
        None => (text, ""),
    }
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

fn flag_value(name: &str, value: Option<String>) -> Result<String, String> {
    match value {
        Some(value) if !value.is_empty() => Ok(unquote_flag(&value)),
        _ => Err(format!("--{name} needs a value (--{name}=…)")),
    }
}

fn parse_from(rest: &str, escape: char, index: usize, line: usize) -> Result<Stage, String> {
    let (flags, rest) = take_flags(rest);
    let mut platform = None;
    for (name, value) in flags {
        match name.as_str() {
            "platform" => platform = Some(flag_value(&name, value)?),
            other => return Err(format!("FROM does not take --{other}")),
        }
    }
    let words = words::split_raw(rest, escape).map_err(|error| error.to_string())?;
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
                return Err(format!(
                    "invalid stage name {name:?}: it must start with a letter and contain only letters, digits, '-', '_' and '.'"
                ));
            }
            (image.clone(), Some(name))
        }
        [] => return Err("FROM needs an image (or scratch)".into()),
        _ => return Err("FROM takes an image and an optional `AS name`".into()),
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
) -> Result<Command, String> {
    let no_flags = |rest: &str| -> Result<(), String> {
        let (flags, _) = take_flags(rest);
        match flags.first() {
            Some((name, _)) => Err(format!("{keyword} does not take --{name}")),
            None => Ok(()),
        }
    };
    let needs_arguments = |rest: &str| -> Result<(), String> {
        if rest.trim().is_empty() {
            Err(format!("{keyword} needs arguments"))
        } else {
            Ok(())
        }
    };
    let raw_words = |rest: &str| words::split_raw(rest, escape).map_err(|error| error.to_string());
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
                                return Err(format!(
                                    "unknown --network={other}: expected default, host or none"
                                ));
                            }
                        }
                    }
                    "security" => {
                        let value = flag_value(&name, value)?;
                        if value != "sandbox" {
                            return Err(format!(
                                "--security={value} is not supported: RUN steps always run sandboxed"
                            ));
                        }
                    }
                    other => return Err(format!("RUN does not take --{other}")),
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
                        return Err(
                            "ADD --checksum applies to remote URLs, which sealcraft does not fetch"
                                .into(),
                        );
                    }
                    other => return Err(format!("{keyword} does not take --{other}")),
                }
            }
            let mut list = match json_array(arguments) {
                Some(list) => list,
                None => raw_words(arguments)?,
            };
            if list.len() < 2 {
                return Err(format!(
                    "{keyword} needs at least one source and a destination"
                ));
            }
            copy.destination = list.pop().unwrap_or_default();
            let mut heredocs = logical.heredocs.iter();
            for source in list {
                let marker = source.strip_prefix("<<");
                match marker {
                    Some(_) => {
                        let heredoc = heredocs
                            .next()
                            .ok_or_else(|| format!("heredoc {source} has no body"))?;
                        copy.sources.push(CopySource::Inline {
                            name: heredoc.word.clone(),
                            content: heredoc.content.clone(),
                            expand: !heredoc.quoted,
                        });
                    }
                    None => {
                        if source.contains("://") {
                            return Err(format!(
                                "{keyword} from a URL ({source}) is not supported: builds take their inputs from the context, so fetch it in a RUN step that checks its digest"
                            ));
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
                    return Err(format!("invalid ARG name {name:?}"));
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
            _ => Err("SHELL takes a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]".into()),
        },
        "HEALTHCHECK" => parse_healthcheck(rest).map(Command::Healthcheck),
        "ONBUILD" => Err(
            "ONBUILD is not supported: triggers run in someone else's build, which a reproducible build cannot account for"
                .into(),
        ),
        "" => Err("empty instruction".into()),
        other => Err(format!("unknown instruction {other}")),
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
fn key_values(keyword: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = words::split_raw(rest, escape).map_err(|error| error.to_string())?;
    let first_has_equals = words.first().is_some_and(|word| word.contains('='));
    if !first_has_equals {
        let (key, value) = split_keyword(rest);
        if value.is_empty() {
            return Err(format!("{keyword} {key} needs a value ({key}=value)"));
        }
        return Ok(vec![(key.to_owned(), value.to_owned())]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!(
                "{keyword} arguments must all be key=value ({word:?} is not)"
            )),
        })
        .collect()
}

fn parse_healthcheck(rest: &str) -> Result<Option<Healthcheck>, String> {
    let (flags, rest) = take_flags(rest);
    let (keyword, command) = split_keyword(rest);
    if keyword.eq_ignore_ascii_case("NONE") {
        if !flags.is_empty() || !command.is_empty() {
            return Err("HEALTHCHECK NONE takes no other arguments".into());
        }
        return Ok(None);
    }
    if !keyword.eq_ignore_ascii_case("CMD") || command.is_empty() {
        return Err("HEALTHCHECK takes CMD command… or NONE".into());
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
        let duration = || parse_duration(&value).map_err(|reason| format!("--{name}: {reason}"));
        match name.as_str() {
            "interval" => check.interval = Some(duration()?),
            "timeout" => check.timeout = Some(duration()?),
            "start-period" => check.start_period = Some(duration()?),
            "start-interval" => check.start_interval = Some(duration()?),
            "retries" => {
                check.retries = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--retries: {value:?} is not a number"))?,
                )
            }
            other => return Err(format!("HEALTHCHECK does not take --{other}")),
        }
    }
    Ok(Some(check))
}

/// A duration like `30s`, `1m30s` or `500ms`, in nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 30s, 1m30s, 500ms)");
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
                error.message.contains(needle),
                "{text:?}: {error} lacks {needle:?}"
            );
        }
    }
}
