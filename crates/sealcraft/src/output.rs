//! Everything the binary writes: data on stdout, humans on stderr.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the one module that owns the process's output"
)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sealcraft_pipeline::events::{Event, Reporter};
use serde::Serialize;

/// Decides what goes where.
pub(crate) struct Printer {
    json: bool,
    quiet: bool,
}

impl Printer {
    pub(crate) fn new(json: bool, quiet: bool) -> Self {
        Self { json, quiet }
    }

    /// A result: JSON on stdout with `--json`, otherwise the human lines on stderr.
    pub(crate) fn result<T: Serialize>(&self, value: &T, human: &[String]) {
        if self.json {
            let mut stdout = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut stdout, value);
            let _ = writeln!(stdout);
        } else {
            for line in human {
                eprintln!("{line}");
            }
        }
    }

    /// Whether progress is to be left out.
    pub(crate) fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Data on stdout whatever the mode (a signature, for instance).
    pub(crate) fn data(&self, text: &str) {
        println!("{text}");
    }

    /// A warning on stderr.
    pub(crate) fn warning(&self, line: &str) {
        eprintln!("warning: {line}");
    }

    /// An error with its causes, on stderr; a cause that repeats the one
    /// before it is shown once.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        let messages = sealcraft_findings::causes(error.as_ref());
        let mut messages = messages.iter();
        if let Some(first) = messages.next() {
            eprintln!("error: {first}");
        }
        for cause in messages {
            eprintln!("  caused by: {cause}");
        }
    }

    /// A check that said no: the reason on stderr, and the status that exits 1.
    pub(crate) fn rejected(&self, reason: &dyn std::fmt::Display) -> crate::ExitStatus {
        eprintln!("error: {reason}");
        crate::ExitStatus::Rejected
    }

    /// A spinner for a long step (hidden when quiet, with --json, or off a terminal).
    pub(crate) fn spinner(&self, message: &str) -> ProgressBar {
        if self.quiet || self.json || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// One line of progress on stderr.
pub(crate) fn progress_line(line: &str) {
    eprintln!("{line}");
}

/// Shows pipeline events as progress lines on stderr.
pub(crate) struct StageReporter {
    bar: Mutex<Option<ProgressBar>>,
    printer_quiet: bool,
    interactive: bool,
}

impl StageReporter {
    pub(crate) fn new(printer: &Printer) -> Self {
        Self {
            bar: Mutex::new(None),
            printer_quiet: printer.quiet || printer.json,
            interactive: std::io::stderr().is_terminal(),
        }
    }
}

impl Reporter for StageReporter {
    fn event(&self, event: &Event) {
        if self.printer_quiet {
            return;
        }
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event.event.as_str() {
            "started" if event.stage != "run" && self.interactive => {
                let spinner = ProgressBar::new_spinner();
                spinner.set_message(format!("{} …", event.stage));
                spinner.enable_steady_tick(Duration::from_millis(120));
                *bar = Some(spinner);
            }
            "completed" | "failed" if event.stage != "run" => {
                if let Some(spinner) = bar.take() {
                    spinner.finish_and_clear();
                }
                let duration = event
                    .fields
                    .get("duration_ms")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let detail = event
                    .fields
                    .iter()
                    .filter(|(key, _)| key.as_str() != "duration_ms")
                    .map(|(key, value)| {
                        format!(
                            "{key}={}",
                            value
                                .as_str()
                                .map_or_else(|| value.to_string(), str::to_owned)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                eprintln!(
                    "{:<10} {:<9} {:>6} ms  {detail}",
                    event.stage, event.event, duration
                );
            }
            _ => {}
        }
    }
}

/// Whether a person can be asked: stdin and stderr are terminals.
pub(crate) fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks for a password on the terminal without echoing it (`prompt` on
/// stderr, the answer from stdin up to the end of the line).
pub(crate) fn prompt_password(prompt: &str) -> std::io::Result<sealcraft_secrets::Secret> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let original = tcgetattr(&stdin)?;
    let mut silent = original.clone();
    silent.local_modes.remove(LocalModes::ECHO);
    silent.local_modes.insert(LocalModes::ECHONL);
    // Echo goes off before the prompt shows, so no answer typed at once is echoed.
    tcsetattr(&stdin, OptionalActions::Now, &silent)?;
    eprint!("{prompt}");
    if let Err(error) = std::io::stderr().flush() {
        tcsetattr(&stdin, OptionalActions::Now, &original)?;
        return Err(error);
    }
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    // The terminal is restored whatever the read did.
    tcsetattr(&stdin, OptionalActions::Now, &original)?;
    read?;
    let length = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(length);
    Ok(sealcraft_secrets::Secret::new(line))
}
