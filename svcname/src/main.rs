//! The svcname binary: parse the command line, run, turn the outcome into an exit status.

use std::io::{self, BufWriter};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = svcname::parse_args();
    let outcome = svcname::Config::from_cli(cli).and_then(|config| {
        let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        svcname::run(&config, out)
    });
    common::error::finish(svcname::TOOL, outcome)
}
