//! The sealcraft binary: parses arguments, resolves settings, runs a
//! command, renders its result and maps the outcome to an exit code
//! (0 success, 1 a gate said no, 2 operational error).

mod commands;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use sealcraft_cli::{Cli, Command, ImageCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = output::Printer::new(cli.global.json, cli.global.quiet);
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args, &printer),
        Command::Image(ImageCommand::Import(args)) => commands::image::import(args, &printer),
        Command::Image(ImageCommand::Inspect(args)) => commands::image::inspect(args, &printer),
        Command::Image(ImageCommand::Gc(args)) => commands::image::gc(args, &printer),
        Command::Assemble(args) => commands::assemble::assemble(args, &printer),
        Command::Squash(args) => commands::squash::squash(args, &printer),
    };
    match result {
        // Exit code 1 is reserved for gates (tests, vulnerabilities, policy)
        // saying no; no command here has a gate yet.
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&error);
            ExitCode::from(2)
        }
    }
}
