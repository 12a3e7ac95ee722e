//! The portscan binary: parse the command line, run, turn the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = portscan::Cli::parse();
    common::error::finish(portscan::TOOL, portscan::run(&cli))
}
