//! The sockls binary: the shared entry over sockls's library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    common::entry::main(sockls::TOOL, sockls::Cli::try_parse, |cli| {
        sockls::Config::from_cli(&cli).and_then(|config| sockls::run(&config))
    })
}
