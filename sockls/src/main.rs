//! The sockls binary: parse the command line, run, turn the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sockls::Cli::parse();
    let outcome = sockls::Config::from_cli(&cli).and_then(|config| sockls::run(&config));
    common::error::finish(sockls::TOOL, outcome)
}
