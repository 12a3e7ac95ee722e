//! The portscan binary: the shared entry over portscan's library.

use std::process::ExitCode;

fn main() -> ExitCode {
    common::contract::entry::main(
        portscan::TOOL,
        portscan::Cli::parse_args,
        portscan::Config::from_cli,
        portscan::run,
    )
}
