//! The records read back: NDJSON lines as `--baseline` reads them (every tool) and as
//! portscan's `-sV --from` reads them, the first byte picking the kind of record. Nothing
//! panics; a record read writes out as NDJSON that reads back the same; its text line is
//! one line (a detail line after it starts with a tab), and its CSV a header and one row of
//! the header's width, as the csv crate reads them; a baseline compared with itself has no
//! changes, and every record of it is `added` against an empty one, and those changes are
//! written in each format.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

use common::contract::baseline::{self, Baselined, Change};
use common::contract::output::{FlushPolicy, Format, Record, RecordWriter, TextOptions};
use common::contract::record::{
    HostRecord, PortRecord, ProcessRecord, ServiceRecord, SocketRecord,
};

fn written<R: Record>(record: &R, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    let options = TextOptions {
        header: false,
        align: false,
    };
    let mut writer = RecordWriter::new(&mut out, format, FlushPolicy::Block, options);
    writer.write(record).expect("writes to memory");
    writer.finish().expect("writes to memory");
    out
}

/// The formats' promises for one record.
fn check_written<R: Record>(record: &R) {
    let text = written(record, Format::Text);
    let text = text
        .strip_suffix(b"\n")
        .expect("a text record ends its line");
    for detail in text.split(|&b| b == b'\n').skip(1) {
        assert!(
            detail.starts_with(b"\t"),
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
    let csv = written(record, Format::Csv);
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let width = reader.headers().expect("a CSV header").len();
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("CSV the csv crate reads");
    assert_eq!(rows.len(), 1, "{:?}", String::from_utf8_lossy(&csv));
    assert_eq!(rows[0].len(), width);
    let json = written(record, Format::Json);
    assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), 1);
}

/// Every line that is a record of `R`, each checked.
fn read_lines<R>(input: &[u8]) -> Vec<R>
where
    R: Record + DeserializeOwned + Serialize + PartialEq + Debug,
{
    let mut records = Vec::new();
    for line in input.split(|&b| b == b'\n') {
        let Ok(record) = serde_json::from_slice::<R>(line) else {
            continue;
        };
        let json = serde_json::to_vec(&record).expect("a record serialises");
        let again: R = serde_json::from_slice(&json).unwrap_or_else(|why| {
            panic!(
                "{} does not read back: {why}",
                String::from_utf8_lossy(&json)
            )
        });
        assert_eq!(again, record, "{}", String::from_utf8_lossy(&json));
        check_written(&record);
        records.push(record);
    }
    records
}

/// A baseline of `R`: read as `--baseline` reads it, compared with itself and with nothing.
fn baseline<R>(input: &[u8])
where
    R: Baselined + Clone + PartialEq + Debug,
{
    let lines = read_lines::<R>(input);
    let Ok(records) = baseline::read_from::<R>("baseline", input) else {
        return;
    };
    assert_eq!(records, lines, "every line of a baseline is a record");
    assert!(baseline::compare(records.clone(), &records, |_| true).is_empty());
    let added = baseline::compare(Vec::new(), &records, |_| true);
    assert_eq!(added.len(), records.len());
    for change in added.iter().take(4) {
        assert_eq!(change.change, Change::Added);
        check_written(change);
    }
    let removed = baseline::compare(records.clone(), &[], |_| true);
    assert!(
        removed
            .iter()
            .all(|change| change.change == Change::Removed)
    );
    assert_eq!(removed.len(), records.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    match first % 5 {
        0 => baseline::<PortRecord>(input),
        1 => baseline::<SocketRecord>(input),
        2 => drop(read_lines::<ProcessRecord>(input)),
        3 => drop(read_lines::<ServiceRecord>(input)),
        _ => drop(read_lines::<HostRecord>(input)),
    }
});
