//! The sockls binary: parse the command line, run, turn the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sockls::Cli::parse();
    common::error::finish(sockls::TOOL, sockls::run(&cli))
}
