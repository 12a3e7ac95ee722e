//! The proctree binary: parse the command line, run, turn the outcome into an exit status.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = proctree::Cli::parse();
    let outcome = proctree::Config::from_cli(cli).and_then(|config| {
        let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        proctree::run(&config, out)
    });
    common::error::finish(proctree::TOOL, outcome)
}
