//! Compiles IANA's service registry (common/data/iana-services.tsv) into static tables, so
//! that a single lookup costs a binary search in read-only data and nothing is parsed at
//! start-up (issue #2: `svcname ssh` must answer as fast as `getent services ssh`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

const PROTOS: [&str; 4] = ["tcp", "udp", "sctp", "dccp"];

fn main() {
    let source = "data/iana-services.tsv";
    println!("cargo::rerun-if-changed={source}");
    let text = fs::read_to_string(source).unwrap_or_else(|e| panic!("{source}: {e}"));

    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [port, proto, name, description] = fields[..] else {
            panic!("{source}:{}: expected 4 tab-separated fields", index + 1);
        };
        let port: u16 = port
            .parse()
            .unwrap_or_else(|e| panic!("{source}:{}: port: {e}", index + 1));
        let proto = PROTOS
            .iter()
            .position(|p| *p == proto)
            .unwrap_or_else(|| panic!("{source}:{}: protocol {proto}", index + 1));
        rows.push((port, proto, name, description));
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1));

    let mut by_name: Vec<usize> = (0..rows.len()).collect();
    by_name.sort_by(|&a, &b| {
        let (ra, rb) = (&rows[a], &rows[b]);
        (ra.2.to_ascii_lowercase(), ra.0, ra.1).cmp(&(rb.2.to_ascii_lowercase(), rb.0, rb.1))
    });

    let mut out = String::new();
    writeln!(out, "pub(crate) static IANA: [IanaRow; {}] = [", rows.len()).unwrap();
    for (port, proto, name, description) in &rows {
        writeln!(out, "    IanaRow {{ port: {port}, proto: {proto}, name: {name:?}, description: {description:?} }},")
            .unwrap();
    }
    writeln!(out, "];").unwrap();
    writeln!(
        out,
        "pub(crate) static IANA_BY_NAME: [u16; {}] = {by_name:?};",
        rows.len()
    )
    .unwrap();

    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("iana.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
