//! What a parsed Dockerfile holds: stages of instructions, their values
//! still raw (substitution happens when an instruction runs).

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
