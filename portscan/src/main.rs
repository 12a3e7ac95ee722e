//! The portscan binary: parse the command line, run, turn the outcome into an exit status.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = portscan::Cli::parse_args();
    common::error::finish(portscan::TOOL, portscan::run(cli))
}
