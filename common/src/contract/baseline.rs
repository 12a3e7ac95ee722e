//! Baselines (`--baseline FILE`): an earlier run's NDJSON records compared with this run's,
//! so that a cron job prints, and its exit status says, only what changed.
//!
//! Records are matched by what they are about from one run to the next ([`Baselined`]:
//! a scanned port's address, protocol and number; a socket's local end and its owner's
//! command), never by an inode, pid or time that a restart changes. Several records with
//! the same identity (the workers of one server on one port) are matched in order, and the
//! ones left over on either side are added or removed.
//!
//! A baseline that `--update-baseline` writes starts with a header record,
//! `{"baseline":"portscan","records":2}`: the tool whose records follow and how many, so
//! that a file cut at a line end is told from a smaller baseline. A plain `--json` run
//! has no header and is read as it is, with nothing to check its length by.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::contract::error::{Error, Result};
use crate::contract::output::{Record, TextRow, fields, prefixed};

/// A record that can be compared with the same thing's record in an earlier run.
pub trait Baselined: Record + DeserializeOwned {
    /// What the record is about, the same in every run: the key records are matched by.
    fn identity(&self) -> String;

    /// The fields whose change is reported, as they are named in JSON. Those that
    /// [`compares`](Self::compares) leaves out for this pair are skipped.
    const COMPARED: &'static [&'static str];

    /// Whether `field` is compared between `self` and `earlier` (e.g. -sV's fields only
    /// when both runs had them).
    fn compares(&self, _earlier: &Self, _field: &str) -> bool {
        true
    }

    /// What the records of this kind are called in an error (`port`, `socket`).
    const NAME: &'static str;

    /// The tool that prints them, as a baseline's header names it (`portscan`).
    const TOOL: &'static str;
}

/// The first line of a baseline that `--update-baseline` wrote: whose records follow,
/// and how many.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The tool whose records follow (`portscan`, `sockls`).
    pub baseline: String,
    /// How many records follow the header.
    pub records: u64,
}

/// Whether `line` is a baseline's header rather than a record: an object with a
/// `baseline` field, which no record has. Readers of records (`-sV --from`) skip it.
pub fn is_header(line: &[u8]) -> bool {
    serde_json::from_slice::<Map<String, Value>>(line)
        .is_ok_and(|object| object.contains_key("baseline"))
}

/// How a thing differs from the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not in the baseline.
    Added,
    /// In the baseline, not in this run.
    Removed,
    /// In both, with other values.
    Changed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }
}

/// A change: the record as it is now (as it was, for `removed`), and for `changed` the
/// earlier values of the fields that differ.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord<R> {
    pub change: Change,
    pub record: R,
    pub old: Option<Map<String, Value>>,
}

/// JSON: `change` first, the record's own fields, then `old` for a change.
impl<R: Serialize> Serialize for ChangeRecord<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let fields = fields::<S>(&self.record)?;
        let mut map = serializer.serialize_map(Some(fields.len() + 2))?;
        map.serialize_entry("change", self.change.as_str())?;
        for (key, value) in &fields {
            map.serialize_entry(key, value)?;
        }
        if let Some(old) = &self.old {
            map.serialize_entry("old", old)?;
        }
        map.end()
    }
}

impl<R: Record> Record for ChangeRecord<R> {
    const TEXT_HEADER: &'static [&'static str] = R::TEXT_HEADER;

    /// `change`, `was`, then the record's own columns.
    fn text_header(&self) -> &'static [&'static str] {
        prefixed(&["change", "was"], self.record.text_header())
    }

    /// `changed state=filtered,reason=no-response 127.0.0.1 22/tcp open syn-ack`: the
    /// change, the earlier values (`-` for none), then the record's own line.
    fn write_text(&self, row: &mut TextRow) {
        row.field(self.change.as_str());
        match &self.old {
            Some(old) => {
                let was: Vec<String> = old
                    .iter()
                    .map(|(key, value)| match value {
                        Value::String(text) => format!("{key}={text}"),
                        other => format!("{key}={other}"),
                    })
                    .collect();
                row.bytes(was.join(",").as_bytes());
            }
            None => {
                row.bytes(b"");
            }
        }
        self.record.write_text(row);
    }

    fn text_detail(&self, line: &mut String) {
        self.record.text_detail(line);
    }

    fn csv(&self) -> impl Serialize + '_ {
        CsvChange(self)
    }
}

/// CSV: `change` and `was` (as in text) before the record's own columns.
struct CsvChange<'a, R>(&'a ChangeRecord<R>);

impl<R: Record> Serialize for CsvChange<'_, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut row = TextRow::default();
        self.0.write_text(&mut row);
        let was = row.fields().nth(1).unwrap_or_default().to_owned();
        // A map: the CSV formatter takes its header from the keys.
        let cells = fields::<S>(self.0.record.csv())?;
        let mut row = serializer.serialize_map(Some(cells.len() + 2))?;
        row.serialize_entry("change", self.0.change.as_str())?;
        row.serialize_entry("was", &was)?;
        for (key, value) in &cells {
            row.serialize_entry(key, value)?;
        }
        row.end()
    }
}

/// Reads a baseline: every line an NDJSON record of `R`, as `--json` prints them, after
/// the [`Header`] if there is one. A file that is not (a line of something else, a last
/// line cut short, fewer or more records than its header says, nothing at all) is refused
/// with status 2 ([`Error::Unusable`]), since comparing with it would report things as removed. `Ok(None)`:
/// there is no such file.
pub fn read<R: Baselined>(path: &Path) -> Result<Option<Vec<R>>> {
    let name = path.display().to_string();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::input(name, error)),
    };
    read_from(&name, BufReader::new(file)).map(Some)
}

/// Reads a baseline's records from `reader`, named `name` in messages, as [`read`] does.
pub fn read_from<R: Baselined>(name: &str, mut reader: impl BufRead) -> Result<Vec<R>> {
    let mut records = Vec::new();
    let mut header: Option<Header> = None;
    let mut seen_any = false;
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|error| Error::input(name, error))?;
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            return Err(Error::unusable(format!(
                "{name}: line {number}: cut short (no newline at the end): not a whole baseline"
            )));
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let first = !seen_any;
        seen_any = true;
        if first && is_header(&line) {
            header = Some(read_header::<R>(name, number, &line)?);
            continue;
        }
        let record = serde_json::from_slice(&line).map_err(|why| {
            Error::unusable(format!(
                "{name}: line {number}: not a {} record of --json: {why}",
                R::NAME
            ))
        })?;
        records.push(record);
    }
    if !seen_any {
        // A run with nothing to record still writes its header: an empty file is more
        // likely one whose writing never happened than an empty baseline.
        return Err(Error::unusable(format!("{name}: empty; not a baseline")));
    }
    if let Some(header) = header {
        let found = records.len() as u64;
        if found < header.records {
            return Err(Error::unusable(format!(
                "{name}: truncated: {found} of {} records",
                header.records
            )));
        }
        if found > header.records {
            return Err(Error::unusable(format!(
                "{name}: {found} records where its header says {}: not a whole baseline",
                header.records
            )));
        }
    }
    Ok(records)
}

/// The header on line `number`, which must be one of `R`'s tool.
fn read_header<R: Baselined>(name: &str, number: usize, line: &[u8]) -> Result<Header> {
    let header: Header = serde_json::from_slice(line).map_err(|why| {
        Error::unusable(format!(
            "{name}: line {number}: not a baseline header: {why}"
        ))
    })?;
    if header.baseline != R::TOOL {
        return Err(Error::unusable(format!(
            "{name}: a baseline of {}, not of {}",
            header.baseline,
            R::TOOL
        )));
    }
    Ok(header)
}

/// Rewrites the baseline with `records`, as NDJSON after a [`Header`] that counts them,
/// atomically: into a file beside it, synced, then renamed over it, so that a crash
/// mid-write leaves the old file whole.
pub fn write<'a, R: Baselined + 'a>(
    path: &Path,
    records: impl ExactSizeIterator<Item = &'a R>,
) -> Result<()> {
    let name = path.display().to_string();
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::usage(format!("{name}: a baseline is a file, not a directory")))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = directory.join(temporary_name);
    let written = (|| -> io::Result<()> {
        let mut out = io::BufWriter::new(File::create(&temporary)?);
        let header = Header {
            baseline: R::TOOL.to_owned(),
            records: records.len() as u64,
        };
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        for record in records {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")?;
        }
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        // The rename itself is durable once the directory is.
        File::open(directory)?.sync_all()
    })();
    written.map_err(|error| {
        let _ = fs::remove_file(&temporary);
        Error::io(format!("writing the baseline {name}"), error)
    })
}

/// What changed from `earlier` to `now`, in the order of `now` (then the removed, in the
/// baseline's order). A record of `now` that is not in `earlier` counts as added only if
/// `shown` says this run prints it (a port scan knows every port's state, its baseline
/// only those it printed).
pub fn compare<R: Baselined + Clone>(
    earlier: Vec<R>,
    now: &[R],
    shown: impl Fn(&R) -> bool,
) -> Vec<ChangeRecord<R>> {
    let mut by_identity: HashMap<String, std::collections::VecDeque<R>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for record in earlier {
        let identity = record.identity();
        let same = by_identity.entry(identity.clone()).or_default();
        if same.is_empty() {
            order.push(identity);
        }
        same.push_back(record);
    }
    let mut changes = Vec::new();
    for record in now {
        let before = by_identity
            .get_mut(&record.identity())
            .and_then(std::collections::VecDeque::pop_front);
        let Some(before) = before else {
            if shown(record) {
                changes.push(ChangeRecord {
                    change: Change::Added,
                    record: record.clone(),
                    old: None,
                });
            }
            continue;
        };
        let old = differences(&before, record);
        if !old.is_empty() {
            changes.push(ChangeRecord {
                change: Change::Changed,
                record: record.clone(),
                old: Some(old),
            });
        }
    }
    for identity in order {
        for record in by_identity.remove(&identity).unwrap_or_default() {
            changes.push(ChangeRecord {
                change: Change::Removed,
                record,
                old: None,
            });
        }
    }
    changes
}

/// The earlier values of the compared fields that differ.
fn differences<R: Baselined>(before: &R, now: &R) -> Map<String, Value> {
    let (Ok(Value::Object(was)), Ok(Value::Object(is))) =
        (serde_json::to_value(before), serde_json::to_value(now))
    else {
        return Map::new();
    };
    let mut old = Map::new();
    for &field in R::COMPARED {
        if !now.compares(before, field) {
            continue;
        }
        let earlier = was.get(field).unwrap_or(&Value::Null);
        if earlier != is.get(field).unwrap_or(&Value::Null) {
            old.insert(field.to_owned(), earlier.clone());
        }
    }
    old
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
    use crate::contract::record::{PortRecord, PortState, Reason};

    fn port(number: u16, state: PortState) -> PortRecord {
        PortRecord {
            host: "localhost".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: number,
            state,
            reason: match state {
                PortState::Open => Reason::SynAck,
                _ => Reason::ConnRefused,
            },
            time: "2026-12-05T08:00:00.000Z".into(),
            ..PortRecord::default()
        }
    }

    fn printed(format: Format, changes: &[ChangeRecord<PortRecord>]) -> String {
        let mut out = Vec::new();
        let options = TextOptions {
            header: true,
            align: false,
        };
        let mut writer = RecordWriter::new(&mut out, format, FlushPolicy::Block, options);
        for change in changes {
            writer.write(change).unwrap();
        }
        writer.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn changes_are_found_by_identity_and_compared_fields() {
        let earlier = vec![port(22, PortState::Open), port(80, PortState::Open)];
        let mut now = vec![
            port(22, PortState::Open),
            port(80, PortState::Closed),
            port(443, PortState::Open),
            port(8080, PortState::Closed),
        ];
        // A later time and round trip are no change.
        now[0].time = "2026-12-06T08:00:00.000Z".into();
        now[0].rtt_ms = Some(0.2);
        let shown = |record: &PortRecord| record.state == PortState::Open;
        let changes = compare(earlier.clone(), &now, shown);
        let summary: Vec<(Change, u16)> =
            changes.iter().map(|c| (c.change, c.record.port)).collect();
        assert_eq!(summary, [(Change::Changed, 80), (Change::Added, 443)]);
        assert_eq!(
            changes[0].old.as_ref().unwrap().get("state"),
            Some(&Value::from("open"))
        );
        // What the run no longer has is removed.
        let changes = compare(earlier, &now[..1], shown);
        let summary: Vec<(Change, u16)> =
            changes.iter().map(|c| (c.change, c.record.port)).collect();
        assert_eq!(summary, [(Change::Removed, 80)]);
    }

    #[test]
    fn service_fields_are_compared_only_when_both_runs_had_them() {
        let mut earlier = port(22, PortState::Open);
        let mut now = port(22, PortState::Open);
        now.method = Some(crate::contract::record::Method::Probed);
        now.product = Some("OpenSSH".into());
        assert!(compare(vec![earlier.clone()], &[now.clone()], |_| true).is_empty());
        earlier.method = Some(crate::contract::record::Method::Probed);
        earlier.product = Some("Dropbear sshd".into());
        let changes = compare(vec![earlier], &[now], |_| true);
        assert_eq!(
            changes[0].old.as_ref().unwrap().get("product"),
            Some(&Value::from("Dropbear sshd"))
        );
    }

    #[test]
    fn change_records_print_in_every_format() {
        let mut old = Map::new();
        old.insert("state".into(), Value::from("filtered"));
        let changes = [
            ChangeRecord {
                change: Change::Changed,
                record: port(22, PortState::Open),
                old: Some(old),
            },
            ChangeRecord {
                change: Change::Added,
                record: port(80, PortState::Open),
                old: None,
            },
        ];
        assert_eq!(
            printed(Format::Text, &changes),
            "change was host port/proto state reason\n\
             changed state=filtered localhost 22/tcp open syn-ack\n\
             added - localhost 80/tcp open syn-ack\n"
        );
        let json = printed(Format::Json, &changes);
        let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["change"], "changed");
        assert_eq!(first["port"], 22);
        assert_eq!(first["old"]["state"], "filtered");
        assert!(
            json.lines()
                .next()
                .unwrap()
                .starts_with("{\"change\":\"changed\",\"host\"")
        );
        let csv = printed(Format::Csv, &changes);
        let mut lines = csv.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("change,was,host,address,port,"),
            "{csv}"
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("changed,state=filtered,localhost,127.0.0.1,22,")
        );
    }

    #[test]
    fn a_baseline_is_written_whole_and_read_back_and_a_bad_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("baseline-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scan.json");
        assert!(read::<PortRecord>(&path).unwrap().is_none(), "no file yet");
        let records = [port(22, PortState::Open), port(80, PortState::Open)];
        write(&path, records.iter()).unwrap();
        assert_eq!(read::<PortRecord>(&path).unwrap().unwrap(), records);
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"baseline\":\"portscan\",\"records\":2}\n"));
        fs::write(&path, &text[..text.len() - 10]).unwrap();
        let error = read::<PortRecord>(&path).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("line 3: cut short"), "{error}");

        fs::write(&path, "127.0.0.1 22/tcp open syn-ack\n").unwrap();
        let error = read::<PortRecord>(&path).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error
                .to_string()
                .contains("line 1: not a port record of --json"),
            "{error}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    fn refusal(name: &str, text: &str) -> String {
        let error = read_from::<PortRecord>(name, text.as_bytes()).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
        error.to_string()
    }

    #[test]
    fn the_header_counts_the_records_and_names_the_tool() {
        let records = [port(22, PortState::Open), port(80, PortState::Open)];
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let header = "{\"baseline\":\"portscan\",\"records\":2}\n";
        let whole = format!("{header}{}\n{}\n", lines[0], lines[1]);
        assert_eq!(
            read_from::<PortRecord>("b", whole.as_bytes()).unwrap(),
            records
        );
        // Headerless, as --json prints: read as it is, whatever its length.
        let plain = format!("{}\n", lines[0]);
        assert_eq!(
            read_from::<PortRecord>("b", plain.as_bytes()).unwrap(),
            records[..1]
        );
        // Cut at a line end: the count tells.
        let cut = format!("{header}{}\n", lines[0]);
        assert_eq!(refusal("b", &cut), "b: truncated: 1 of 2 records");
        assert_eq!(refusal("b", header), "b: truncated: 0 of 2 records");
        let more = format!("{header}{}\n{}\n{}\n", lines[0], lines[1], lines[0]);
        assert!(refusal("b", &more).starts_with("b: 3 records where its header says 2"));
        // Nothing at all is no baseline; a header of none is an empty one.
        assert_eq!(refusal("b", ""), "b: empty; not a baseline");
        assert_eq!(refusal("b", "\n\n"), "b: empty; not a baseline");
        let none = "{\"baseline\":\"portscan\",\"records\":0}\n";
        assert!(
            read_from::<PortRecord>("b", none.as_bytes())
                .unwrap()
                .is_empty()
        );
        // Another tool's, or a header that is not one.
        let sockets = "{\"baseline\":\"sockls\",\"records\":0}\n";
        assert_eq!(
            refusal("b", sockets),
            "b: a baseline of sockls, not of portscan"
        );
        let odd = "{\"baseline\":\"portscan\",\"records\":-1}\n";
        assert!(refusal("b", odd).starts_with("b: line 1: not a baseline header: "));
        // Only the first line may be a header.
        let late = format!("{}\n{header}", lines[0]);
        assert!(refusal("b", &late).starts_with("b: line 2: not a port record of --json"));
        assert!(is_header(header.as_bytes()));
        assert!(!is_header(lines[0].as_bytes()));
    }
}
