//! The svcname binary: the shared entry over svcname's library.

use std::io::{self, BufWriter};
use std::process::ExitCode;

fn main() -> ExitCode {
    common::entry::main(svcname::TOOL, svcname::parse_args, |cli| {
        let config = svcname::Config::from_cli(cli)?;
        let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        svcname::run(&config, out)
    })
}
