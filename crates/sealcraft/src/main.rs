//! The sealcraft binary: parses arguments, resolves settings, runs a
//! command, renders its result and maps the outcome to an exit code
//! (0 success, 1 a gate or check said no, 2 operational error).

mod commands;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use sealcraft_cli::{CacheCommand, Cli, Command, DbCommand, ImageCommand, KeyCommand};

/// How a command ended; errors are the third outcome (exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// It did what was asked.
    Success,
    /// A check ran and said no (a gate failed, a signature did not verify).
    Rejected,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = output::Printer::new(cli.global.json, cli.global.quiet);
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args, &printer),
        Command::Image(ImageCommand::Import(args)) => commands::image::import(args, &printer),
        Command::Image(ImageCommand::Inspect(args)) => commands::image::inspect(args, &printer),
        Command::Image(ImageCommand::Gc(args)) => commands::image::gc(args, &printer),
        Command::Assemble(args) => commands::assemble::assemble(args, &printer),
        Command::Build(args) => commands::build::build(args, &printer),
        Command::Cache(CacheCommand::Prune(args)) => commands::cache::prune(args, &printer),
        Command::Harden(args) => commands::harden::harden(args, &printer),
        Command::Patch(args) => commands::patch::patch(args, &printer),
        Command::Squash(args) => commands::squash::squash(args, &printer),
        Command::Test(args) => commands::test::test(args, cli.global.json, &printer),
        Command::Key(KeyCommand::Generate(args)) => commands::key::generate(args, &printer),
        Command::SignBlob(args) => commands::blob::sign_blob(args, &printer),
        Command::VerifyBlob(args) => commands::blob::verify_blob(args, &printer),
        Command::Publish(args) => commands::publish::publish(args, &printer),
        Command::Verify(args) => commands::publish::verify(args, &printer),
        Command::Sbom(args) => commands::sbom::sbom(args, &printer),
        Command::Scan(args) => commands::scan::scan(args, &printer),
        Command::Db(DbCommand::Import(args)) => commands::db::import(args, &printer),
        Command::Db(DbCommand::Info(args)) => commands::db::info(args, &printer),
    };
    match result {
        Ok(ExitStatus::Success) => ExitCode::SUCCESS,
        Ok(ExitStatus::Rejected) => ExitCode::from(1),
        Err(error) => {
            printer.error(&error);
            ExitCode::from(2)
        }
    }
}
