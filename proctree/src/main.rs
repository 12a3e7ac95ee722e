//! The proctree binary: parse the command line, run, turn the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = proctree::Cli::parse();
    common::error::finish(proctree::TOOL, proctree::run(&cli))
}
