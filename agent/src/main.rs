//! `spillway`: ships newline-delimited records from a file or stdin to an
//! output in batches, at least once, across crashes and outages.
//!
//! See `spillway ship --help` and `agent/README.md`.

mod cli;
mod entries;
mod error;
mod input;
mod inspect;
mod lines;
mod memory;
mod output;
mod record;
mod settings;
mod ship;
mod sink;
mod state;
mod stats;
mod ui;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::EXIT_BAD_INPUT;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match &cli.command {
        Command::Ship(args) => ship::run(args),
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            ui::note(e.to_string());
            ExitCode::from(e.exit_status())
        }
    }
}

/// `--help` and `--version` print as clap lays them out; a usage error is
/// one line naming what is wrong, and exit status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_BAD_INPUT)
        }
        _ => {
            // clap's message runs up to its first blank line (a list of
            // missing flags included); tips and usage come after it.
            let text = e.render().to_string();
            let first = text
                .split("\n\n")
                .next()
                .unwrap_or("invalid arguments")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            ui::note(format!("{first} (see spillway --help)"));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
