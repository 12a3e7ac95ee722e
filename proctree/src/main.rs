//! The proctree binary: the shared entry over proctree's library.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    common::entry::main(proctree::TOOL, proctree::Cli::try_parse, |cli| {
        let config = proctree::Config::from_cli(cli)?;
        let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        proctree::run(&config, out)
    })
}
