//! Compiles IANA's service registry (common/data/iana-services.tsv) into static tables, so
//! that a single lookup costs a binary search in read-only data and nothing is parsed at
//! start-up (`svcname ssh` must answer as fast as `getent services ssh`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

const PROTOS: [&str; 4] = ["tcp", "udp", "sctp", "dccp"];

fn main() {
    let source = "data/iana-services.tsv";
    println!("cargo::rerun-if-changed={source}");
    let data = fs::read_to_string(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let data: &'static str = data.leak();

    let mut rows = Vec::new();
    for (index, line) in data.lines().enumerate() {
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

    // Strings live in one literal and rows hold offsets into it: a table of 11,000 rows of
    // &'static str would cost the dynamic loader 23,000 relocations at every start-up.
    let mut text = String::new();
    let mut offsets: HashMap<&str, usize> = HashMap::new();
    let mut place = |s: &'static str, text: &mut String| -> usize {
        *offsets.entry(s).or_insert_with(|| {
            text.push_str(s);
            text.len() - s.len()
        })
    };
    let mut out = String::new();
    writeln!(out, "pub(super) static IANA: [IanaRow; {}] = [", rows.len()).unwrap();
    for (port, proto, name, description) in &rows {
        let name_start = place(name, &mut text);
        let description_start = place(description, &mut text);
        writeln!(
            out,
            "    IanaRow {{ port: {port}, proto: {proto}, name: ({name_start}, {}), description: ({description_start}, {}) }},",
            name.len(),
            description.len()
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    // The index by name holds each name itself, in name order, in a text of its own: a
    // search by name then reads two compact tables instead of hopping through the rows and
    // the text, which cost a single `svcname ssh` half a dozen page faults.
    let mut names = String::new();
    writeln!(
        out,
        "pub(super) static IANA_BY_NAME: [NameEntry; {}] = [",
        rows.len()
    )
    .unwrap();
    for &row in &by_name {
        let name = rows[row].2;
        let length = u8::try_from(name.len()).expect("names are short");
        writeln!(
            out,
            "    NameEntry {{ start: {}, length: {length}, row: {row} }},",
            names.len()
        )
        .unwrap();
        names.push_str(name);
    }
    writeln!(out, "];").unwrap();
    writeln!(out, "pub(super) static NAMES: &str = {names:?};").unwrap();
    writeln!(out, "pub(super) static TEXT: &str = {text:?};").unwrap();

    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("iana.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
