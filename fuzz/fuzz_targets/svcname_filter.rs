//! svcname's filter, the whole of it, on any input: lines of text (ss, netstat, nmap,
//! sockls), NDJSON and CSV, in any mixture, with options picked by the first byte. Nothing
//! panics, and docs/FORMAT.md's promise holds: one line out for each line in (a last line
//! without a newline stays without one), and a line that is not NDJSON nor ends in a
//! carriage return comes out with its bytes first, the addition after them. Problems with
//! lines are reported on stderr as in a real run: the Makefile runs this target with
//! stderr closed (`-close_fd_mask=2`) and replays a crash without it.
#![no_main]

use std::sync::OnceLock;

use clap::Parser;
use libfuzzer_sys::fuzz_target;

use common::services::ServiceDb;
use svcname::{Cli, Config};

/// The options a first byte picks, bit by bit.
const FLAGS: [&str; 6] = ["--json", "--csv", "-r", "-d", "--risk", "--proto=udp"];

/// The configuration of each first byte, and the built-in tables, made once.
fn setup(first: u8) -> (&'static Config, &'static ServiceDb) {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    static DB: OnceLock<ServiceDb> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        (0..64u8)
            .map(|bits| {
                let mut args = vec!["svcname", "--builtin-only"];
                args.extend(
                    FLAGS
                        .iter()
                        .enumerate()
                        .filter(|(bit, flag)| {
                            bits & (1 << bit) != 0 && (**flag != "--csv" || bits & 1 == 0)
                        })
                        .map(|(_, flag)| *flag),
                );
                Config::from_cli(Cli::try_parse_from(args).expect("valid options"))
                    .expect("a valid configuration")
            })
            .collect()
    });
    let config = &configs[usize::from(first & 63)];
    let db = DB.get_or_init(|| ServiceDb::load(&config.data).expect("the built-in tables load"));
    (config, db)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let (config, db) = setup(first);
    let (out, _status) = svcname::annotate_bytes(config, db, input).expect("writes to memory");
    let lines_in: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let lines_out: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines_in.len(),
        lines_out.len(),
        "in {:?}\nout {:?}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(&out)
    );
    for (line_in, line_out) in lines_in.iter().zip(&lines_out) {
        if !line_in.contains(&b'{') && !line_in.contains(&b'\r') {
            assert!(
                line_out.starts_with(line_in),
                "{:?} became {:?}",
                String::from_utf8_lossy(line_in),
                String::from_utf8_lossy(line_out)
            );
        }
    }
});
