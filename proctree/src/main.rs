//! The proctree binary: the shared entry over proctree's library.

use std::process::ExitCode;

fn main() -> ExitCode {
    common::contract::entry::main(
        proctree::TOOL,
        proctree::Cli::parse_args,
        proctree::Config::from_cli,
        proctree::run,
    )
}
