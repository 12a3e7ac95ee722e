//! The sockls binary: the shared entry over sockls's library.

use std::process::ExitCode;

fn main() -> ExitCode {
    common::contract::entry::main(
        sockls::TOOL,
        sockls::Cli::parse_args,
        sockls::Config::from_cli,
        sockls::run,
    )
}
