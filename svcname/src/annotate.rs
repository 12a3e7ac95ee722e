//! The filter: reads lines in any of the three formats and adds what each port means,
//! passing every line on, annotated or not, in its order, one line out for each line in,
//! with the bytes it came with. Which line is which, and what is
//! added where, is described in docs/FORMAT.md, "svcname as a filter".

use std::io::Write;
use std::net::IpAddr;

use common::Status;
use common::contract::error::{Error, Result, warn};
use common::contract::input::{LineRead, LineSource, MAX_LINE};
use common::contract::output::RecordWriter;
use common::contract::record::PortRange;
use common::contract::text;
use common::services::ports::{
    PortError, Proto, ProtoNames, parse_port, parse_port_proto, port_from_number,
};
use common::services::{ServiceDb, risk};

use crate::csv_line;
use crate::json::{self, PortValue};
use crate::sniff::{LineKind, Sniffer};
use crate::{Config, TOOL};

/// Where a line came from, for messages, and what ended it in the input (`\n`, `\r\n`,
/// or nothing for a last line without one), which it leaves with.
#[derive(Debug, Clone, Copy)]
struct Place<'a> {
    pub source: &'a str,
    pub line: usize,
    pub end: &'static [u8],
}

/// The fields that hold ports: `--field`s, or `port`, `local_port` and `remote_port`.
fn port_fields(config: &Config) -> Vec<String> {
    if config.fields.is_empty() {
        vec!["port".into(), "local_port".into(), "remote_port".into()]
    } else {
        config.fields.clone()
    }
}

/// The message for a line over the limit, which is passed through unread.
fn too_long() -> String {
    format!("longer than {MAX_LINE} bytes, passed through")
}

/// What gets added for a port, beyond the service name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Additions {
    pub range: bool,
    pub description: bool,
    pub frequency: bool,
    pub risk: bool,
}

/// Annotates lines, remembering each port's answer.
pub struct Annotator<'a, W: Write> {
    db: &'a ServiceDb,
    config: &'a Config,
    out: RecordWriter<W>,
    /// Answers, rendered for the JSON and CSV formats when a port is first met in one: a
    /// million lines of a few hundred ports then cost a copy each, not a formatting. Ports
    /// without a name share theirs (a -p- sweep's 65,535 ports are mostly such).
    cache: Vec<Rendered>,
    /// Where the answers of ports without a name are in `cache`: a few (one per range
    /// with -r), compared whole.
    unnamed_cache: Vec<usize>,
    /// Where each (protocol, port)'s answer is in `cache`, plus one; 0 for none yet. Plain
    /// numbers: the table is 1 MiB of zeroed memory that the kernel maps as it is touched,
    /// and nothing reads it whole (a table of boxes was, to be dropped: 500 page faults).
    cache_index: Vec<u32>,
    /// What is added for a field without a port (null, or an empty CSV cell).
    absent: Rendered,
    port_fields: Vec<String>,
    /// For each port field, the names of the fields added for it, in order.
    added_names: Vec<Vec<String>>,
    /// What the NDJSON scanner looks for.
    keys: json::Keys,
    sniffer: Sniffer,
    /// For the CSV header in force: (port column, names added) pairs and the proto column.
    csv_plan: Option<CsvPlan>,
    status: Status,
    /// Buffers reused from one NDJSON line to the next.
    scanned: json::Scanned,
    answers: Vec<(usize, Option<(u16, Proto)>)>,
    /// What the scanner looks for in each element of a `ports` array, and its buffers.
    element_keys: json::Keys,
    element_scanned: json::Scanned,
    /// The text suffixes (` ssh`, and the additions) of the ports text lines named so far,
    /// back to back, each after its length (4 bytes, native order): rendered for that format
    /// only, and those of ports without a name (` unknown`, most of a -p- sweep's 65,535)
    /// once, so that any mix of ports costs a lookup each and little memory, and what a
    /// line reads stays in the processor's cache.
    text_suffixes: Vec<u8>,
    /// Where each (protocol, port)'s text suffix is in `text_suffixes`, plus one; 0 for none
    /// yet. Zeroed memory, which the kernel maps as it is touched.
    text_spans: Vec<u32>,
    /// Where the suffixes of ports without a name are in `text_suffixes`, plus one: a few
    /// (one per range with -r), compared byte for byte.
    unnamed: Vec<u32>,
    /// The suffix being rendered.
    scratch: String,
}

struct CsvPlan {
    ports: Vec<usize>,
    proto: Option<usize>,
    /// proctree's `ports` column (`tcp 0.0.0.0:22 udp [::]:53`), named in a `services`
    /// column.
    nested: Option<usize>,
}

/// The column that names the ports of a CSV `ports` cell, one name for each, in order.
const NESTED_SERVICES: &str = "services";

/// What is added for one port, borrowed from the tables.
#[derive(Debug, Clone, Copy)]
struct Answer<'a> {
    /// The service's name, `unknown` where no table has one.
    service: &'a str,
    range: &'static str,
    /// Only when asked for (-d): finding it costs a second lookup.
    description: Option<&'a str>,
    frequency: Option<f64>,
    risk: Option<&'static str>,
}

impl<'a> Answer<'a> {
    /// The answer for a port, and whether the port has a name.
    fn of(db: &'a ServiceDb, port: u16, proto: Proto, additions: Additions) -> (Self, bool) {
        let (name, description) = if additions.description {
            let service = db.by_port(port, proto);
            (service.map(|s| s.name), service.and_then(|s| s.description))
        } else {
            (db.name_of(port, proto), None)
        };
        let answer = Self {
            service: name.unwrap_or("unknown"),
            range: PortRange::of(port).as_str(),
            description,
            frequency: if additions.frequency {
                db.frequency(port, proto)
            } else {
                None
            },
            risk: if additions.risk {
                risk::note(port, proto)
            } else {
                None
            },
        };
        (answer, name.is_some())
    }
}

/// One port's answer, ready to append in the JSON and CSV formats.
#[derive(PartialEq)]
struct Rendered {
    /// Appended before the closing brace of an object, for each port field: `,"service":"ssh"`.
    json_suffixes: Vec<Vec<u8>>,
    /// Appended to a CSV row, for any port column: `,ssh`.
    csv_suffix: Vec<u8>,
    /// Appended before the closing brace of an element of a `ports` array: `,"service":"ssh"`.
    element_suffix: Vec<u8>,
}

impl Rendered {
    fn new(answer: Option<&Answer<'_>>, config: &Config, added_names: &[Vec<String>]) -> Self {
        let values: Vec<serde_json::Value> = json_values(answer, config.additions).collect();
        let json_suffix = |names: &[String]| {
            let mut suffix = Vec::new();
            for (name, value) in names.iter().zip(&values) {
                suffix.push(b',');
                // Writing JSON strings and values into memory cannot fail.
                let _ = serde_json::to_writer(&mut suffix, name);
                suffix.push(b':');
                let _ = serde_json::to_writer(&mut suffix, value);
            }
            suffix
        };
        let json_suffixes = added_names.iter().map(|names| json_suffix(names)).collect();
        let element_suffix = json_suffix(&added_names_for("port", config.additions));
        let csv_cells: Vec<String> = values
            .iter()
            .map(|value| match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        let mut csv_suffix = Vec::new();
        csv_line::append_cells(&mut csv_suffix, csv_cells.iter().map(String::as_bytes));
        Self {
            json_suffixes,
            csv_suffix,
            element_suffix,
        }
    }
}

impl<'a, W: Write> Annotator<'a, W> {
    pub fn new(db: &'a ServiceDb, config: &'a Config, out: RecordWriter<W>) -> Self {
        let port_fields = port_fields(config);
        let added_names: Vec<Vec<String>> = port_fields
            .iter()
            .map(|field| added_names_for(field, config.additions))
            .collect();
        let keys = json::Keys::new(
            port_fields.clone(),
            added_names.iter().flatten().cloned().collect(),
        );
        let absent = Rendered::new(None, config, &added_names);
        Self {
            absent,
            db,
            config,
            out,
            cache: Vec::new(),
            unnamed_cache: Vec::new(),
            cache_index: vec![0; Proto::ALL.len() << 16],
            port_fields,
            added_names,
            keys,
            sniffer: Sniffer::default(),
            csv_plan: None,
            status: Status::default(),
            scanned: json::Scanned::default(),
            answers: Vec::new(),
            element_keys: json::Keys::new(
                vec!["port".into()],
                added_names_for("port", config.additions),
            ),
            element_scanned: json::Scanned::default(),
            text_suffixes: Vec::new(),
            text_spans: vec![0; Proto::ALL.len() << 16],
            unnamed: Vec::new(),
            scratch: String::new(),
        }
    }

    /// Annotates every line of `source`.
    pub fn run(&mut self, source: &mut LineSource) -> Result<()> {
        loop {
            if source.would_wait() {
                // Let the consumer have what is ready before waiting (tail -f).
                self.out.flush()?;
            }
            match source.advance()? {
                LineRead::End => return Ok(()),
                LineRead::TooLong => {
                    let place = Place {
                        source: source.name(),
                        line: source.line_number(),
                        end: b"",
                    };
                    self.problem(place, too_long());
                    let raw = self.out.raw();
                    raw.write_all(source.line()).map_err(Error::output)?;
                    source.copy_rest_of_line(raw)?;
                }
                LineRead::Line => {
                    let line = source.line();
                    let kind = self.sniffer.classify(line);
                    if kind == LineKind::CsvOpen && self.csv_plan.is_some() {
                        let first = line.to_vec();
                        self.csv_record_over_lines(source, first)?;
                        continue;
                    }
                    let place = Place {
                        source: source.name(),
                        line: source.line_number(),
                        end: source.line_end(),
                    };
                    self.annotate_line(place, line, kind)?;
                }
            }
        }
    }

    /// A CSV row whose quoted field holds line ends goes on over the next lines. They are
    /// joined, each with the end it had (`\r\n` or `\n`: the field's bytes), while the
    /// quote stays open; if the result is not a row of the header's width (a stray quote in
    /// a line of text), each line is taken on its own after all.
    fn csv_record_over_lines(&mut self, source: &mut LineSource, first: Vec<u8>) -> Result<()> {
        let first_number = source.line_number();
        let mut joined = first;
        // Where each line is in `joined`, without its end, and that end.
        let mut parts = vec![(0, joined.len(), source.line_end())];
        let mut kind = LineKind::CsvOpen;
        let mut overlong = None;
        while kind == LineKind::CsvOpen && joined.len() < MAX_LINE {
            match source.advance()? {
                LineRead::End => break,
                LineRead::Line => {
                    let previous_end = parts.last().map_or(&b""[..], |part| part.2);
                    joined.extend_from_slice(previous_end);
                    let start = joined.len();
                    joined.extend_from_slice(source.line());
                    parts.push((start, joined.len(), source.line_end()));
                    kind = self.sniffer.classify(&joined);
                }
                LineRead::TooLong => {
                    overlong = Some(source.line().to_vec());
                    break;
                }
            }
        }
        if overlong.is_none() && kind == LineKind::CsvRow {
            let place = Place {
                source: source.name(),
                line: source.line_number(),
                end: parts.last().map_or(&b""[..], |part| part.2),
            };
            self.annotate_line(place, &joined, kind)?;
        } else {
            for (offset, &(start, end, line_end)) in parts.iter().enumerate() {
                let place = Place {
                    source: source.name(),
                    line: first_number + offset,
                    end: line_end,
                };
                self.line(place, &joined[start..end])?;
            }
        }
        if let Some(head) = overlong {
            let place = Place {
                source: source.name(),
                line: source.line_number(),
                end: b"",
            };
            self.problem(place, too_long());
            let raw = self.out.raw();
            raw.write_all(&head).map_err(Error::output)?;
            source.copy_rest_of_line(raw)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Status> {
        self.out.finish()?;
        Ok(self.status)
    }

    fn line(&mut self, place: Place<'_>, line: &[u8]) -> Result<()> {
        let kind = self.sniffer.classify(line);
        self.annotate_line(place, line, kind)
    }

    /// Annotates a line that the sniffer found to be of `kind`. A line of a CSV row over
    /// several lines, taken on its own, is a malformed row like any other.
    fn annotate_line(&mut self, place: Place<'_>, line: &[u8], kind: LineKind) -> Result<()> {
        match kind {
            LineKind::Blank => {
                self.csv_plan = None;
                self.pass(place, line)
            }
            LineKind::Json => self.json_line(place, line),
            LineKind::CsvHeader => self.csv_header(place, line),
            LineKind::CsvRow => self.csv_row(place, line),
            LineKind::CsvMismatch | LineKind::CsvMalformed | LineKind::CsvOpen => {
                if self.csv_plan.is_some() {
                    let width = self.sniffer.header().map_or(0, <[String]>::len);
                    let message = if kind == LineKind::CsvMismatch {
                        let found = self.sniffer.fields().len();
                        format!(
                            "a CSV row of {found} fields under a header of {width}, passed through"
                        )
                    } else {
                        "not a valid CSV row, passed through".to_owned()
                    };
                    self.problem(place, message);
                }
                self.pass(place, line)
            }
            LineKind::Text => {
                self.csv_plan = None;
                self.text_line(place, line)
            }
        }
    }

    fn json_line(&mut self, place: Place<'_>, line: &[u8]) -> Result<()> {
        let mut scanned = std::mem::take(&mut self.scanned);
        let result = json::scan(line, &self.keys, &mut scanned);
        let outcome = self.annotate_object(place, line, &scanned, result);
        self.scanned = scanned;
        outcome
    }

    fn annotate_object(
        &mut self,
        place: Place<'_>,
        line: &[u8],
        scanned: &json::Scanned,
        result: Result<(), json::ScanError>,
    ) -> Result<()> {
        if let Err(e) = result {
            self.problem(place, format_args!("not a valid JSON object: {e}"));
            return self.pass(place, line);
        }
        let proto = scanned.proto.unwrap_or(Some(self.config.default_proto));
        if scanned.ports.iter().all(Option::is_none) {
            return match scanned.nested {
                Some(span) => self.json_nested(place, line, span, proto),
                None => self.pass(place, line),
            };
        }
        let mut answers = std::mem::take(&mut self.answers);
        answers.clear();
        for (index, value) in scanned.ports.iter().enumerate() {
            let Some(value) = value else { continue };
            match port_of(value, proto) {
                Ok(answer) => answers.push((index, answer)),
                Err(why) => {
                    let field = &self.port_fields[index];
                    let message = format!("field {field}: {why}");
                    self.problem(place, message);
                    self.answers = answers;
                    return self.pass(place, line);
                }
            }
        }
        if scanned.has_output_field {
            // svcname's own output, read again, stays as it is (with the same options).
            if self.ends_with_json_suffixes(line, &answers) {
                self.answers = answers;
                return self.pass(place, line);
            }
            let outcome = self.json_rebuild(place, line, &answers);
            self.answers = answers;
            return outcome;
        }
        for &(_, answer) in &answers {
            if let Some((port, proto)) = answer {
                self.rendered(port, proto);
            }
        }
        // Written in pieces straight to the output, which is memory in a worker.
        let brace = json::closing_brace(line);
        let raw = self.out.raw();
        let mut result = raw.write_all(&line[..brace]);
        for &(index, answer) in &answers {
            let rendered = match answer {
                Some((port, proto)) => {
                    &self.cache[cached(&self.cache_index, port, proto).expect("rendered above")]
                }
                None => &self.absent,
            };
            result = result.and_then(|()| raw.write_all(&rendered.json_suffixes[index]));
        }
        result = result.and_then(|()| match (&line[brace..], place.end) {
            // The usual end, written with its newline in one small copy.
            (b"}", b"\n") => raw.write_all(b"}\n"),
            (tail, end) => raw.write_all(tail).and_then(|()| raw.write_all(end)),
        });
        self.answers = answers;
        result.map_err(Error::output)
    }

    /// An object without a port field of its own but with a `ports` array (proctree's): each
    /// element with a `port` gets its service (and the additions) before its closing brace,
    /// its protocol its own `proto` or the object's. An element that has a `service` field
    /// already is left as it is.
    fn json_nested(
        &mut self,
        place: Place<'_>,
        line: &[u8],
        span: (usize, usize),
        object_proto: Option<Proto>,
    ) -> Result<()> {
        let mut scanned = std::mem::take(&mut self.element_scanned);
        // Where each suffix goes, and the cache entry it comes from.
        let mut insertions = Vec::new();
        let mut failure = None;
        for (start, end) in json::array_elements(line, span) {
            let element = &line[start..end];
            // The line is valid JSON: an element that is not an object is no port.
            if element.first() != Some(&b'{')
                || json::scan(element, &self.element_keys, &mut scanned).is_err()
                || scanned.has_output_field
            {
                continue;
            }
            let Some(Some(value)) = scanned.ports.first() else {
                continue;
            };
            match port_of(value, scanned.proto.unwrap_or(object_proto)) {
                Ok(Some((port, proto))) => {
                    insertions.push((end - 1, self.rendered(port, proto)));
                }
                Ok(None) => {}
                Err(why) => {
                    failure = Some(why);
                    break;
                }
            }
        }
        self.element_scanned = scanned;
        if let Some(why) = failure {
            self.problem(place, format_args!("field {}: {why}", json::NESTED_PORTS));
            return self.pass(place, line);
        }
        if insertions.is_empty() {
            return self.pass(place, line);
        }
        let raw = self.out.raw();
        let mut from = 0;
        let mut result = Ok(());
        for (at, cached) in insertions {
            result = result
                .and_then(|()| raw.write_all(&line[from..at]))
                .and_then(|()| raw.write_all(&self.cache[cached].element_suffix));
            from = at;
        }
        result
            .and_then(|()| raw.write_all(&line[from..]))
            .and_then(|()| raw.write_all(place.end))
            .map_err(Error::output)
    }

    /// Whether an object ends with exactly what svcname would add to it, before its brace.
    fn ends_with_json_suffixes(
        &mut self,
        line: &[u8],
        answers: &[(usize, Option<(u16, Proto)>)],
    ) -> bool {
        let mut head = &line[..json::closing_brace(line)];
        for &(index, answer) in answers.iter().rev() {
            let rendered = match answer {
                Some((port, proto)) => {
                    let at = self.rendered(port, proto);
                    &self.cache[at]
                }
                None => &self.absent,
            };
            match head.strip_suffix(&rendered.json_suffixes[index][..]) {
                Some(rest) => head = rest,
                None => return false,
            }
        }
        true
    }

    /// The slow path, for an object that already has fields svcname adds: rebuild it, with
    /// those fields replaced where they stand.
    fn json_rebuild(
        &mut self,
        place: Place<'_>,
        line: &[u8],
        answers: &[(usize, Option<(u16, Proto)>)],
    ) -> Result<()> {
        let mut object: serde_json::Map<String, serde_json::Value> =
            match serde_json::from_slice(line) {
                Ok(object) => object,
                Err(e) => {
                    self.problem(place, format_args!("not a valid JSON object: {e}"));
                    return self.pass(place, line);
                }
            };
        for &(index, answer) in answers {
            let answer = answer
                .map(|(port, proto)| Answer::of(self.db, port, proto, self.config.additions).0);
            let values = json_values(answer.as_ref(), self.config.additions);
            for (position, (name, value)) in self.added_names[index].iter().zip(values).enumerate()
            {
                // A service named already (portscan -sV's, found by probing) is the
                // record's word on it; only what is added beside it is svcname's.
                let named = object.get(name).is_some_and(|old| !old.is_null());
                if position == 0 && named {
                    continue;
                }
                object.insert(name.clone(), value);
            }
        }
        let raw = self.out.raw();
        serde_json::to_writer(&mut *raw, &object).map_err(|e| Error::output(e.into()))?;
        raw.write_all(place.end).map_err(Error::output)
    }

    fn csv_header(&mut self, place: Place<'_>, line: &[u8]) -> Result<()> {
        self.csv_plan = self.plan_for_header();
        let Some(plan) = &self.csv_plan else {
            return self.pass(place, line);
        };
        let header = self.sniffer.header().unwrap_or_default();
        let mut out = line.to_vec();
        let names = plan
            .ports
            .iter()
            .flat_map(|&column| &self.added_names[self.field_index(&header[column])])
            .map(String::as_bytes)
            .chain(plan.nested.map(|_| NESTED_SERVICES.as_bytes()));
        csv_line::append_cells(&mut out, names);
        out.extend_from_slice(place.end);
        self.out.raw().write_all(&out).map_err(Error::output)
    }

    /// Which columns of the CSV header in force hold ports; `None` if none does.
    fn plan_for_header(&self) -> Option<CsvPlan> {
        let header = self.sniffer.header()?;
        // A port column whose service column is there already (svcname's own output,
        // read again) gets no second one.
        let ports: Vec<usize> = self
            .port_fields
            .iter()
            .zip(&self.added_names)
            .filter(|(_, names)| !header.contains(&names[0]))
            .filter_map(|(field, _)| header.iter().position(|h| h == field))
            .collect();
        let nested = header
            .iter()
            .position(|h| h == json::NESTED_PORTS)
            .filter(|_| !header.iter().any(|h| h == NESTED_SERVICES));
        if ports.is_empty() && nested.is_none() {
            return None;
        }
        let proto = header.iter().position(|h| h == "proto");
        Some(CsvPlan {
            ports,
            proto,
            nested,
        })
    }

    fn csv_row(&mut self, place: Place<'_>, line: &[u8]) -> Result<()> {
        // Taken while the row is annotated, so that the plan and the answers can be read
        // while the cache grows.
        let Some(plan) = self.csv_plan.take() else {
            return self.pass(place, line);
        };
        let outcome = self.annotate_csv_row(place, line, &plan);
        self.csv_plan = Some(plan);
        outcome
    }

    /// Appends the added columns to a row, written in pieces straight to the output.
    fn annotate_csv_row(&mut self, place: Place<'_>, line: &[u8], plan: &CsvPlan) -> Result<()> {
        let fields = self.sniffer.fields();
        let proto = match plan.proto.and_then(|column| fields.get(column)) {
            Some(name) => Proto::from_name(name, ProtoNames::WithIpv6Suffix),
            None => Some(self.config.default_proto),
        };
        let mut answers = std::mem::take(&mut self.answers);
        answers.clear();
        for &column in &plan.ports {
            let cell = self.sniffer.fields().get(column).unwrap_or_default();
            // An empty cell is a field without a value.
            let answer = if cell.is_empty() {
                Ok(None)
            } else {
                port_of_text(cell, proto)
            };
            match answer {
                Ok(answer) => {
                    if let Some((port, proto)) = answer {
                        self.rendered(port, proto);
                    }
                    answers.push((column, answer));
                }
                Err(why) => {
                    let header = self.sniffer.header().unwrap_or_default();
                    let message = format!("field {}: {why}", header[column]);
                    self.problem(place, message);
                    answers.push((column, None));
                }
            }
        }
        let raw = self.out.raw();
        let mut result = raw.write_all(line);
        for &(_, answer) in &answers {
            let rendered = match answer {
                Some((port, proto)) => {
                    &self.cache[cached(&self.cache_index, port, proto).expect("rendered above")]
                }
                None => &self.absent,
            };
            result = result.and_then(|()| raw.write_all(&rendered.csv_suffix));
        }
        if let Some(column) = plan.nested {
            let cell = self.nested_names(place, column);
            let raw = self.out.raw();
            let mut suffix = Vec::new();
            csv_line::append_cells(&mut suffix, [cell.as_bytes()]);
            result = result.and_then(|()| raw.write_all(&suffix));
        }
        let raw = self.out.raw();
        result = result.and_then(|()| raw.write_all(place.end));
        self.answers = answers;
        result.map_err(Error::output)
    }

    /// The names of the ports of a CSV `ports` cell (`tcp 0.0.0.0:22 udp [::]:53` gives
    /// `ssh domain`), each `PROTO ADDRESS:PORT` pair's; empty for an empty cell, and for a
    /// cell that is not such pairs, which is reported.
    fn nested_names(&mut self, place: Place<'_>, column: usize) -> String {
        let cell = self
            .sniffer
            .fields()
            .get(column)
            .unwrap_or_default()
            .to_vec();
        let mut names = String::new();
        let mut words = cell
            .split(u8::is_ascii_whitespace)
            .filter(|word| !word.is_empty());
        while let Some(proto_name) = words.next() {
            let port = words.next().and_then(|end| {
                let colon = end.iter().rposition(|&b| b == b':')?;
                parse_port(&end[colon + 1..]).ok()
            });
            let (Some(proto), Some(port)) = (
                Proto::from_name(proto_name, ProtoNames::WithIpv6Suffix),
                port,
            ) else {
                let header = self.sniffer.header().unwrap_or_default();
                let message = format!("field {}: not PROTO ADDRESS:PORT pairs", header[column]);
                self.problem(place, message);
                return String::new();
            };
            if !names.is_empty() {
                names.push(' ');
            }
            names.push_str(self.db.name_of(port, proto).unwrap_or("unknown"));
        }
        names
    }

    /// A text line names its port with its first `PORT/PROTO` token, or `ADDRESS:PORT`
    /// tokens, or by being only a port number; it leaves with ` SERVICE` (and the
    /// additions) after its last byte, before its end.
    fn text_line(&mut self, place: Place<'_>, line: &[u8]) -> Result<()> {
        let trimmed = line.trim_ascii();
        // The first token, and its first slash, in one pass: it holds the port of an
        // nmap-style line (`22/tcp open ssh`), or is the whole of a line that is a port.
        let mut end = trimmed.len();
        let mut slash = None;
        for (at, &byte) in trimmed.iter().enumerate() {
            if byte.is_ascii_whitespace() {
                end = at;
                break;
            }
            if byte == b'/' && slash.is_none() {
                slash = Some(at);
            }
        }
        let (number, proto_name) = match slash {
            Some(slash) => (&trimmed[..slash], &trimmed[slash + 1..end]),
            None => (&trimmed[..end], &b""[..]),
        };
        let lone_port = if slash.is_none() && end == trimmed.len() {
            parse_port(number).ok()
        } else {
            None
        };
        let found = if let Some(port) = lone_port {
            // `cut -f2 | svcname`: a port of the default protocol. Any other lone word (a
            // name, a time, `-`) is a line like any other; names are looked up only when
            // asked (operands, --queries).
            Ok(Some((port, self.config.default_proto)))
        } else if let Some(found) = slash.and_then(|_| port_token(number, proto_name)) {
            // nmap's table (`22/tcp open ssh`) names the service itself.
            if found.is_ok() && has_nmap_service_column(&trimmed[end..]) {
                return self.pass(place, line);
            }
            found
        } else if names_its_service_after_host(trimmed) {
            // portscan -sV's record names the service itself.
            return self.pass(place, line);
        } else {
            // The search goes on after a first token without a slash.
            let first_end = line.len() - line.trim_ascii_start().len() + end;
            let from = if slash.is_none() { first_end } else { 0 };
            let db = self.db;
            find_port_in_text(line, from, self.config.default_proto, |port, proto| {
                db.by_port(port, proto).is_some()
            })
        };
        match found {
            Ok(Some((port, proto))) => {
                let (start, end) = self.text_suffix(port, proto);
                let suffix = &self.text_suffixes[start..end];
                // A line svcname has annotated already (with the same options) is left as
                // it is: the filter is idempotent. nmap's grepable lines (`Host: ...
                // Ports: 22/open/tcp//ssh///`) name their services in their own fields.
                if ends_with_suffix(line, suffix) || line.starts_with(b"Host: ") {
                    return self.pass(place, line);
                }
                let raw = self.out.raw();
                raw.write_all(line)
                    .and_then(|()| raw.write_all(suffix))
                    .and_then(|()| raw.write_all(place.end))
                    .map_err(Error::output)
            }
            Ok(None) => self.pass(place, line),
            Err(why) => {
                self.problem(place, why);
                self.pass(place, line)
            }
        }
    }

    /// Where the text suffix of a port is in `text_suffixes`, rendered now if it is not yet.
    #[inline]
    fn text_suffix(&mut self, port: u16, proto: Proto) -> (usize, usize) {
        let at = match self.text_spans[slot(port, proto)] {
            0 => self.render_text(port, proto),
            at => at as usize - 1,
        };
        stored_suffix(&self.text_suffixes, at)
    }

    /// Renders the text suffix of a port met for the first time in a text line, straight
    /// from its answer (no record); that of a port without a name is shared with the
    /// others that have the same.
    fn render_text(&mut self, port: u16, proto: Proto) -> usize {
        /// Past this many different suffixes of unnamed ports (a frequency each), each is
        /// kept on its own.
        const SHARED: usize = 8;
        self.scratch.clear();
        let (answer, named) = Answer::of(self.db, port, proto, self.config.additions);
        append_text_annotation(&mut self.scratch, &answer, self.config.additions);
        let suffix = self.scratch.as_bytes();
        let arena = &self.text_suffixes;
        let shared = (!named)
            .then(|| {
                self.unnamed.iter().copied().find(|&at| {
                    let (start, end) = stored_suffix(arena, at as usize - 1);
                    arena[start..end] == *suffix
                })
            })
            .flatten();
        let at = if let Some(at) = shared {
            at
        } else {
            // At most four protocols of 65,535 ports, each a name and a few notes: far
            // below 4 GiB.
            let at = u32::try_from(self.text_suffixes.len() + 1).expect("below 4 GiB");
            let len = u32::try_from(suffix.len()).expect("below 4 GiB");
            self.text_suffixes.extend_from_slice(&len.to_ne_bytes());
            self.text_suffixes.extend_from_slice(suffix);
            if !named && self.unnamed.len() < SHARED {
                self.unnamed.push(at);
            }
            at
        };
        self.text_spans[slot(port, proto)] = at;
        at as usize - 1
    }

    /// Where the answer for a port is in `cache`, rendered now if it is not yet.
    #[expect(
        clippy::inline_always,
        reason = "measured with callgrind: a call per port field otherwise"
    )]
    #[inline(always)]
    fn rendered(&mut self, port: u16, proto: Proto) -> usize {
        match cached(&self.cache_index, port, proto) {
            Some(at) => at,
            None => self.render(port, proto, slot(port, proto)),
        }
    }

    /// Renders the answer for a port met for the first time; that of a port without a
    /// name is shared with the others that have the same.
    fn render(&mut self, port: u16, proto: Proto, slot: usize) -> usize {
        /// Past this many different answers of unnamed ports (a frequency each), each is
        /// kept on its own.
        const SHARED: usize = 8;
        let (answer, named) = Answer::of(self.db, port, proto, self.config.additions);
        let rendered = Rendered::new(Some(&answer), self.config, &self.added_names);
        let shared = (!named)
            .then(|| {
                self.unnamed_cache
                    .iter()
                    .copied()
                    .find(|&at| self.cache[at] == rendered)
            })
            .flatten();
        let at = shared.unwrap_or_else(|| {
            self.cache.push(rendered);
            let at = self.cache.len() - 1;
            if !named && self.unnamed_cache.len() < SHARED {
                self.unnamed_cache.push(at);
            }
            at
        });
        self.cache_index[slot] = u32::try_from(at + 1).expect("one per slot");
        at
    }

    fn field_index(&self, field: &str) -> usize {
        self.port_fields
            .iter()
            .position(|f| f == field)
            .expect("only port fields are annotated")
    }

    /// Passes a line on as it came, its end included.
    fn pass(&mut self, place: Place<'_>, line: &[u8]) -> Result<()> {
        let raw = self.out.raw();
        raw.write_all(line).map_err(Error::output)?;
        raw.write_all(place.end).map_err(Error::output)
    }

    fn problem(&mut self, place: Place<'_>, why: impl std::fmt::Display) {
        warn(TOOL, format_args!("{}:{}: {why}", place.source, place.line));
        self.status.had_errors = true;
    }
}

/// Where the suffix stored at `at` in the arena of text suffixes is: after its length.
#[inline]
fn stored_suffix(arena: &[u8], at: usize) -> (usize, usize) {
    let len = u32::from_ne_bytes(arena[at..at + 4].try_into().expect("a length"));
    (at + 4, at + 4 + len as usize)
}

/// Where a port's answer is kept in the cache.
fn slot(port: u16, proto: Proto) -> usize {
    (proto.index() << 16) | usize::from(port)
}

/// Where a port's answer is in the cache, if it has been rendered: `cache_index` holds
/// each slot's position plus one, 0 for none yet.
#[inline]
fn cached(cache_index: &[u32], port: u16, proto: Proto) -> Option<usize> {
    (cache_index[slot(port, proto)] as usize).checked_sub(1)
}

/// The names added for one port field: `port` gives `service`, `local_port` gives
/// `local_service`, any other field `F` gives `F_service`; likewise for the additions.
fn added_names_for(field: &str, additions: Additions) -> Vec<String> {
    let prefix = if field == "port" {
        String::new()
    } else if let Some(stem) = field.strip_suffix("port") {
        stem.to_owned()
    } else {
        format!("{field}_")
    };
    let mut names = vec![format!("{prefix}service")];
    for (wanted, name) in [
        (additions.range, "range"),
        (additions.description, "description"),
        (additions.frequency, "frequency"),
        (additions.risk, "risk"),
    ] {
        if wanted {
            names.push(format!("{prefix}{name}"));
        }
    }
    names
}

/// The added values for one port, in the order of [`added_names`]; all null without a port.
fn json_values(
    answer: Option<&Answer<'_>>,
    additions: Additions,
) -> impl Iterator<Item = serde_json::Value> {
    use serde_json::Value;
    let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.to_owned()));
    let mut values = vec![text(answer.map(|a| a.service))];
    if additions.range {
        values.push(text(answer.map(|a| a.range)));
    }
    if additions.description {
        values.push(text(answer.and_then(|a| a.description)));
    }
    if additions.frequency {
        values.push(
            answer
                .and_then(|a| a.frequency)
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
        );
    }
    if additions.risk {
        values.push(text(answer.and_then(|a| a.risk)));
    }
    values.into_iter()
}

/// Appends the annotation of a text line for a port: the service name, then the range and
/// frequency as tokens, then the description and risk as free text, each as asked.
fn append_text_annotation(tail: &mut String, answer: &Answer<'_>, additions: Additions) {
    tail.push(' ');
    // A name needs escaping seldom; the escaper decodes UTF-8 char by char.
    if answer
        .service
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        tail.push_str(answer.service);
    } else {
        text::escape_token(answer.service.as_bytes(), tail);
    }
    if additions.range {
        tail.push(' ');
        tail.push_str(answer.range);
    }
    if additions.frequency {
        tail.push(' ');
        match answer.frequency {
            Some(f) => tail.push_str(&f.to_string()),
            None => tail.push_str(text::ABSENT),
        }
    }
    let free = match (answer.description, answer.risk) {
        (Some(description), Some(risk)) => format!("{description} [risk: {risk}]"),
        (Some(description), None) => description.to_owned(),
        (None, Some(risk)) => format!("[risk: {risk}]"),
        (None, None) => return,
    };
    tail.push(' ');
    text::escape_free_text(free.as_bytes(), tail);
}

/// The (port, protocol) a field's value names; `Ok(None)` for no port (null, or 0, which
/// sockls prints for the remote end of a listener, or a protocol without ports).
#[inline]
fn port_of(value: &PortValue, proto: Option<Proto>) -> Result<Option<(u16, Proto)>, String> {
    // The usual value, a number in range, is answered inline.
    if let PortValue::Number(number) = *value
        && let Ok(port) = port_from_number(number)
    {
        return Ok(proto.map(|proto| (port, proto)));
    }
    port_of_others(value, proto)
}

/// [`port_of`] for every other value.
fn port_of_others(value: &PortValue, proto: Option<Proto>) -> Result<Option<(u16, Proto)>, String> {
    let (port, explicit_proto) = match value {
        PortValue::Null | PortValue::Number(0) => return Ok(None),
        PortValue::Number(number) => (port_from_number(*number)?, None),
        PortValue::Text(text) => return port_of_text(text.as_bytes(), proto),
        PortValue::Invalid => return Err("not a port number".into()),
    };
    Ok(explicit_proto.or(proto).map(|proto| (port, proto)))
}

/// [`port_of`] for text, a JSON string or a CSV cell: `22`, `53/udp`, or `0` or `*` for no
/// port.
fn port_of_text(text: &[u8], proto: Option<Proto>) -> Result<Option<(u16, Proto)>, String> {
    if text == b"0" || text == b"*" {
        return Ok(None);
    }
    let (port, explicit_proto) = parse_port_proto(text, ProtoNames::WithIpv6Suffix)?;
    Ok(explicit_proto.or(proto).map(|proto| (port, proto)))
}

/// Finds the port a text line is about: the first `PORT/PROTO` token (nmap, portscan), or
/// else the first `ADDRESS:PORT` token (ss, netstat, sockls), whose protocol is the line's
/// `tcp`/`udp`/`tcp6`/`udp6` token or the default. When the next token is one too, the two
/// are a connection's ends, and [`service_end`] picks one, asking `named` whether a port
/// has a name.
fn find_port_in_text(
    line: &[u8],
    from: usize,
    default_proto: Proto,
    named: impl Fn(u16, Proto) -> bool,
) -> Result<Option<(u16, Proto)>, String> {
    // Bytes, not str: a line that is not UTF-8 can still name a port, and validating each
    // line would cost more than the search. The first slash of each token is looked at,
    // in order, so only tokens with a slash are ever taken apart; `from` skips a start
    // known to hold none.
    let mut from = from;
    while let Some(at) = line[from..].iter().position(|&b| b == b'/') {
        let slash = from + at;
        let start = line[..slash]
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map_or(0, |space| space + 1);
        let end = line[slash..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .map_or(line.len(), |space| slash + space);
        if let Some(found) = port_token(&line[start..slash], &line[slash + 1..end]) {
            return found;
        }
        from = end;
    }
    let tokens = || {
        line.split(u8::is_ascii_whitespace)
            .filter(|token| !token.is_empty())
    };
    let address_port = |token: &[u8]| {
        let colon = token.iter().rposition(|&b| b == b':')?;
        let port = port_number(&token[colon + 1..])?;
        std::str::from_utf8(&token[..colon])
            .is_ok_and(is_address)
            .then_some(port)
    };
    let mut rest = tokens();
    let Some(first) = rest.by_ref().find_map(address_port) else {
        return Ok(None);
    };
    // `ss -t` and `netstat -t --numeric-hosts` name the ports they know (`127.0.0.1:https`):
    // such a line names its service already, and the numbered end is not it.
    if tokens().any(is_address_and_name) {
        return Ok(None);
    }
    let first = first?;
    let line_proto = tokens()
        .find_map(|token| Proto::from_name(token, ProtoNames::WithIpv6Suffix))
        .unwrap_or(default_proto);
    // A connection's ends stand side by side; a port further on is another socket's
    // (proctree's `ports: tcp ADDRESS:PORT udp ADDRESS:PORT`), and a second end with a port
    // out of range is no end: the first is named alone.
    let port = match rest.next().and_then(address_port) {
        Some(Ok(second)) => service_end(first, second, |port| named(port, line_proto)),
        _ => first,
    };
    Ok(Some((port, line_proto)))
}

/// Of a connection's two ports, the one whose service the line is about: the named one if
/// only one has a name (an outgoing connection's peer `:443`, not its local `:44744`; an
/// incoming one's local `:22`, not the peer's `:50214`), else the lower number, the side
/// that a server listens on more often than not (Wireshark guesses so too).
fn service_end(first: u16, second: u16, named: impl Fn(u16) -> bool) -> u16 {
    match (named(first), named(second)) {
        (true, false) => first,
        (false, true) => second,
        _ => first.min(second),
    }
}

/// The answer of a `PORT/PROTO` token, split at its first slash: `None` when it is not one
/// (not digits, or not a protocol), an error when its number is not a port.
#[inline]
fn port_token(port: &[u8], proto: &[u8]) -> Option<Result<Option<(u16, Proto)>, String>> {
    let proto = Proto::from_name(proto, ProtoNames::WithIpv6Suffix)?;
    port_number(port).map(|port| port.map(|port| Some((port, proto))))
}

/// The port a token's digits name: `None` when they are not digits at all (the token is
/// something else, a time or a word), else [`parse_port`]'s verdict, as a message.
#[expect(
    clippy::inline_always,
    reason = "measured with callgrind: a call per text line otherwise"
)]
#[inline(always)]
fn port_number(digits: &[u8]) -> Option<Result<u16, String>> {
    match parse_port(digits) {
        Ok(port) => Some(Ok(port)),
        Err(PortError::Empty | PortError::NotANumber(_)) => None,
        Err(why) => Some(Err(why.to_string())),
    }
}

/// Whether a line ends with a suffix, its last byte compared first: most lines differ
/// there, and a call to compare a few bytes costs more than the rest of the check.
#[inline]
fn ends_with_suffix(line: &[u8], suffix: &[u8]) -> bool {
    line.last() == suffix.last() && line.ends_with(suffix)
}

/// The states of nmap's port table (`PORT STATE SERVICE`), which lists the service after
/// the state.
const NMAP_STATES: [&[u8]; 6] = [
    b"open",
    b"closed",
    b"filtered",
    b"unfiltered",
    b"open|filtered",
    b"closed|filtered",
];

/// Whether what follows a line's leading `PORT/PROTO` token names its service already:
/// nmap's `STATE SERVICE` (`22/tcp open ssh`, `8000/tcp closed http-alt`, and anything
/// after), or svcname's own record, `SERVICE RANGE` (`22/tcp ssh well-known ...`).
fn has_nmap_service_column(rest: &[u8]) -> bool {
    let mut tokens = rest
        .split(u8::is_ascii_whitespace)
        .filter(|token| !token.is_empty());
    let (Some(second), Some(third)) = (tokens.next(), tokens.next()) else {
        return false;
    };
    NMAP_STATES.contains(&second)
        || [b"well-known" as &[u8], b"registered", b"dynamic"].contains(&third)
}

/// portscan's text record with -sV's columns, `HOST PORT/PROTO STATE REASON SERVICE ...`
/// (with `--hostname-field`, the machine first): a service named already, by probing or by
/// the table. A record without them (`HOST PORT/PROTO STATE REASON`) is named.
fn names_its_service_after_host(line: &[u8]) -> bool {
    // The first seven tokens, without an allocation: this runs for most text lines.
    let mut tokens: [&[u8]; 7] = [&[]; 7];
    let mut count = 0;
    for token in line
        .split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
    {
        tokens[count] = token;
        count += 1;
        if count == tokens.len() {
            break;
        }
    }
    let is_port = |token: &[u8]| {
        token.iter().position(|&b| b == b'/').is_some_and(|slash| {
            port_token(&token[..slash], &token[slash + 1..]).is_some_and(|found| found.is_ok())
        })
    };
    (1..=2)
        .any(|at| count >= at + 4 && is_port(tokens[at]) && NMAP_STATES.contains(&tokens[at + 1]))
}

/// `ADDRESS:NAME`, a socket's end with its port's service name, as ss and netstat print it
/// without `-n` (`0.0.0.0:ssh`, `[::]:https`, `*:domain`); `*` is a listener's peer, no name.
fn is_address_and_name(token: &[u8]) -> bool {
    let Some(colon) = token.iter().rposition(|&b| b == b':') else {
        return false;
    };
    let name = &token[colon + 1..];
    name.first().is_some_and(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
        && std::str::from_utf8(&token[..colon]).is_ok_and(is_address)
}

/// An address as ss and netstat print it: `0.0.0.0`, `[::1]`, `::`, `*`, `127.0.0.53%lo`.
fn is_address(text: &str) -> bool {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let text = text.split_once('%').map_or(text, |(address, _)| address);
    text == "*" || text.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_in_text_lines() {
        let cases: &[(&str, Option<(u16, Proto)>)] = &[
            ("127.0.0.1 22/tcp open syn-ack", Some((22, Proto::Tcp))),
            ("53/udp   open  domain", Some((53, Proto::Udp))),
            (
                "tcp   LISTEN 0 128 0.0.0.0:22 0.0.0.0:*",
                Some((22, Proto::Tcp)),
            ),
            (
                "udp   UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*",
                Some((53, Proto::Udp)),
            ),
            (
                "tcp6       0      0 :::80   :::*   LISTEN",
                Some((80, Proto::Tcp)),
            ),
            ("LISTEN 0 4096 [::1]:631 [::]:*", Some((631, Proto::Tcp))),
            // Every protocol name, dccp's too, gives the line's protocol.
            (
                "dccp LISTEN 0 5 0.0.0.0:5004 0.0.0.0:*",
                Some((5004, Proto::Dccp)),
            ),
            ("SCTP6 LISTEN [::]:2905", Some((2905, Proto::Sctp))),
            ("22/tcp6 open", Some((22, Proto::Tcp))),
            ("started at 17:35:12 by cron", None),
            ("nothing to see here", None),
            ("a cl/1 token", None),
            // A connection's two ends: the named port, else the lower.
            (
                "ESTAB 0 0 127.0.0.1:44744 127.0.0.1:443",
                Some((443, Proto::Tcp)),
            ),
            (
                "tcp 0 0 10.0.0.5:22 10.0.0.9:50214 ESTABLISHED",
                Some((22, Proto::Tcp)),
            ),
            ("ESTAB 0 0 [::1]:7000 [::1]:6000", Some((6000, Proto::Tcp))),
            (
                "ESTAB 0 0 [::1]:40000 [::1]:41000",
                Some((40000, Proto::Tcp)),
            ),
            // A second end out of range is none.
            (
                "ESTAB 0 0 [::1]:44744 [::1]:99999",
                Some((44744, Proto::Tcp)),
            ),
            // A line that names a port already (`ss -t`, `netstat --numeric-hosts`).
            ("ESTAB 0 0 127.0.0.1:44744 127.0.0.1:https", None),
            ("tcp 0 0 0.0.0.0:ssh 0.0.0.0:* LISTEN", None),
            ("tcp 0 0 127.0.0.1:40000 [::1]:x-11 LISTEN", None),
            // Ports that are not side by side are two sockets': the first is named.
            (
                "812 sshd ports: tcp 0.0.0.0:40000 udp 0.0.0.0:22",
                Some((40000, Proto::Tcp)),
            ),
        ];
        // The test's service data: 22 and 443 have names.
        let named = |port, _| port == 22 || port == 443;
        for (line, expected) in cases {
            assert_eq!(
                find_port_in_text(line.as_bytes(), 0, Proto::Tcp, named),
                Ok(*expected),
                "{line}"
            );
        }
        assert!(find_port_in_text(b"x 70000/tcp open", 0, Proto::Tcp, named).is_err());
        assert!(find_port_in_text(b"x 1.2.3.4:70000 1.2.3.4:22", 0, Proto::Tcp, named).is_err());
        // A start known to hold no slash is skipped.
        assert_eq!(
            find_port_in_text(b"10.0.0.1 a/b 53/udp open", 9, Proto::Tcp, named),
            Ok(Some((53, Proto::Udp)))
        );
    }

    #[test]
    fn lines_that_name_their_service() {
        for (rest, named) in [
            (" open  ssh", true),
            ("   closed http-alt  syn-ack ttl 64", true),
            (" open|filtered unknown", true),
            (" open", false),
            (" open syn-ack", true),
            (" ssh well-known The Secure Shell", true),
            (" unknown dynamic 0.001 -", true),
            (" ssh", false),
            ("", false),
            (" shut ssh", false),
        ] {
            assert_eq!(has_nmap_service_column(rest.as_bytes()), named, "{rest}");
        }
        for (token, named) in [
            ("0.0.0.0:ssh", true),
            ("[::]:https", true),
            ("*:domain", true),
            ("127.0.0.53%lo:domain", true),
            ("0.0.0.0:*", false),
            ("0.0.0.0:22", false),
            ("localhost:ssh", false),
            ("at 17:35:12", false),
            ("ssh", false),
        ] {
            assert_eq!(is_address_and_name(token.as_bytes()), named, "{token}");
        }
    }

    #[test]
    fn the_end_that_names_a_service() {
        let named = |port| port < 1024;
        assert_eq!(service_end(44744, 443, named), 443);
        assert_eq!(service_end(443, 44744, named), 443);
        assert_eq!(service_end(8080, 40000, |_| false), 8080);
        assert_eq!(service_end(40000, 8080, |_| true), 8080);
        assert_eq!(service_end(5353, 5353, named), 5353);
    }

    #[test]
    fn names_of_added_fields() {
        let all = Additions {
            range: true,
            description: true,
            frequency: true,
            risk: true,
        };
        assert_eq!(added_names_for("port", Additions::default()), ["service"]);
        assert_eq!(
            added_names_for("local_port", Additions::default()),
            ["local_service"]
        );
        assert_eq!(
            added_names_for("dst", Additions::default()),
            ["dst_service"]
        );
        assert_eq!(
            added_names_for("port", all),
            ["service", "range", "description", "frequency", "risk"]
        );
    }

    #[test]
    fn port_values() {
        assert_eq!(
            port_of(&PortValue::Number(22), Some(Proto::Tcp)),
            Ok(Some((22, Proto::Tcp)))
        );
        assert_eq!(port_of(&PortValue::Number(0), Some(Proto::Tcp)), Ok(None));
        assert_eq!(port_of(&PortValue::Number(22), None), Ok(None));
        assert_eq!(
            port_of(&PortValue::Text("53/udp".into()), Some(Proto::Tcp)),
            Ok(Some((53, Proto::Udp)))
        );
        // A port field reads protocol names as a proto field does, netstat's included.
        assert_eq!(
            port_of(&PortValue::Text("53/udp6".into()), Some(Proto::Tcp)),
            Ok(Some((53, Proto::Udp)))
        );
        assert_eq!(
            port_of(&PortValue::Text("53/icmp".into()), Some(Proto::Tcp)),
            Err("'icmp' is not a protocol (tcp, udp, sctp, dccp)".into())
        );
        assert_eq!(
            port_of(&PortValue::Number(70_000), Some(Proto::Tcp)),
            Err("port 70000 is out of range 1-65535".into())
        );
        assert!(port_of(&PortValue::Invalid, Some(Proto::Tcp)).is_err());
    }
}
