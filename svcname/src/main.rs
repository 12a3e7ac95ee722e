//! The svcname binary: the shared entry over svcname's library.

use std::process::ExitCode;

fn main() -> ExitCode {
    common::contract::entry::main(
        svcname::TOOL,
        svcname::Cli::parse_args,
        svcname::Config::from_cli,
        svcname::run,
    )
}
