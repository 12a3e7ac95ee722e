//! svcname: port numbers to service names and back, alone or as a filter in a pipeline.
//! The data and its loaders live in `common::services`; this crate is their command-line
//! face: the lookups, and the filter that annotates other tools' output.

mod annotate;
mod cli;
mod csv_line;
mod json;
mod lookup;
mod sniff;

use std::io::{BufWriter, Write};
use std::rc::Rc;

use nix::sys::signalfd::SignalFd;

use common::Status;
use common::contract::error::{Error, Result, warn};
use common::contract::input::{LineRead, LineSource, MAX_LINE};
use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::watch::interrupts;
use common::services::ports::{Proto, ProtoNames};
use common::services::{self, Extras, ServiceDb};

pub use annotate::Additions;
pub use cli::{Cli, MANUAL, command};
use lookup::Query;

/// The name messages start with.
pub const TOOL: &str = "svcname";

/// A validated command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub queries: Vec<String>,
    pub inputs: Vec<String>,
    /// `--queries`: the inputs' lines are queries, not lines to annotate.
    pub read_queries: bool,
    /// `--proto`, if given.
    pub proto: Option<Proto>,
    /// The protocol of a bare port: `--proto`, or tcp.
    pub default_proto: Proto,
    pub fields: Vec<String>,
    pub additions: Additions,
    pub data: services::Options,
    pub format: Format,
    pub header: bool,
    /// `--hostname-field`: every record names the machine.
    pub hostname_field: bool,
}

impl Config {
    pub fn from_cli(mut cli: Cli) -> Result<Self> {
        // A lone `-` is stdin, as everywhere in Unix; all ports is `1-65535`.
        if cli.queries.iter().any(|query| query == "-") {
            if cli.queries.iter().any(|query| query != "-") {
                return Err(Error::usage(
                    "'-' (stdin) and queries cannot be given together",
                ));
            }
            cli.queries.clear();
            cli.inputs.push("-".into());
        }
        if !cli.queries.is_empty() && !cli.inputs.is_empty() {
            return Err(Error::usage("give queries or --input files, not both"));
        }
        if cli.read_queries && !cli.queries.is_empty() {
            return Err(Error::usage(
                "--queries reads queries from stdin or --input files, not operands",
            ));
        }
        for field in &cli.fields {
            if field.is_empty() || field == "proto" {
                return Err(Error::usage(format!(
                    "--field '{field}' cannot hold a port"
                )));
            }
        }
        let format = cli.output.format();
        let proto = match (cli.tcp, cli.udp) {
            (true, _) => Some(Proto::Tcp),
            (_, true) => Some(Proto::Udp),
            _ => cli.proto,
        };
        Ok(Self {
            default_proto: proto.unwrap_or(Proto::Tcp),
            proto,
            inputs: if cli.inputs.is_empty() && cli.queries.is_empty() {
                vec!["-".into()]
            } else {
                cli.inputs
            },
            queries: cli.queries,
            read_queries: cli.read_queries,
            fields: cli.fields,
            additions: Additions {
                range: cli.range,
                description: cli.description,
                frequency: cli.frequency,
                risk: cli.risk,
            },
            data: services::Options {
                user_files: cli.services.into_iter().map(Into::into).collect(),
                builtin_only: cli.builtin_only,
                names: cli.names.into(),
            },
            format,
            header: cli.output.header,
            hostname_field: cli.output.hostname_field,
        })
    }
}

/// Answers the queries (operands, or the inputs' words with --queries), or annotates the
/// input lines, writing to `out`: block-buffered, but flushed before waiting for more input,
/// and per answer to queries on a terminal.
pub fn run(config: &Config, out: impl Write) -> Result<Status> {
    let out = BufWriter::with_capacity(64 * 1024, out);
    let db = ServiceDb::load(&config.data)?;
    let mut status = Status::default();
    report_warnings(&db, &mut status);
    let text_options = TextOptions {
        header: config.header,
        align: false,
    };
    let outcome = if config.queries.is_empty() {
        // Reading input, SIGINT and SIGTERM stop the run between two lines, with what was
        // read handled and out (docs/FORMAT.md, "Signals and standard input"); a lookup
        // is over at once.
        let signals = Rc::new(interrupts()?);
        if config.read_queries {
            let writer =
                RecordWriter::new(out, config.format, FlushPolicy::for_stdout(), text_options)
                    .with_hostname(config.hostname_field);
            look_up_input(config, &db, writer, &signals)
        } else {
            let writer = RecordWriter::new(out, config.format, FlushPolicy::Block, text_options)
                .with_hostname(config.hostname_field);
            annotate(config, &db, writer, &signals)
        }
    } else {
        let writer = RecordWriter::new(out, config.format, FlushPolicy::for_stdout(), text_options)
            .with_hostname(config.hostname_field);
        look_up(config, &db, writer)
    };
    report_warnings(&db, &mut status);
    let run_status = outcome?;
    status.had_errors |= run_status.had_errors;
    Ok(status)
}

/// The NDJSON scanner's verdict on one line, for the fuzz target in fuzz/: whether the line
/// is one JSON object (the error otherwise), and its `port` field when that is a whole
/// number that fits in a u64. Not part of the tool's interface.
#[doc(hidden)]
pub fn scan_json_port(line: &[u8]) -> std::result::Result<Option<u64>, String> {
    let mut scanned = json::Scanned::default();
    let keys = json::Keys::new(vec!["port".to_owned()], Vec::new());
    json::scan(line, &keys, &mut scanned).map_err(|e| e.to_string())?;
    Ok(match scanned.ports.first() {
        Some(Some(json::PortValue::Number(port))) => Some(*port),
        _ => None,
    })
}

/// The filter run over `input` as if it were stdin, with `config` and the data `db`: what
/// it writes, and its status. For the fuzz target in fuzz/ (`svcname_filter`); not part of
/// the tool's interface. Problems with lines are reported on stderr, as in a real run.
#[doc(hidden)]
pub fn annotate_bytes(config: &Config, db: &ServiceDb, input: &[u8]) -> Result<(Vec<u8>, Status)> {
    let mut out = Vec::new();
    let text_options = TextOptions {
        header: config.header,
        align: false,
    };
    let writer = RecordWriter::new(&mut out, config.format, FlushPolicy::Block, text_options);
    let mut annotator = annotate::Annotator::new(db, config, writer);
    let reader = Box::new(std::io::Cursor::new(input.to_vec()));
    annotator.run(&mut LineSource::from_reader("stdin", reader))?;
    let status = annotator.finish()?;
    Ok((out, status))
}

fn look_up<W: Write>(config: &Config, db: &ServiceDb, mut out: RecordWriter<W>) -> Result<Status> {
    // All are read before any is answered: a bad one is a usage error, with no output.
    let mut queries = Vec::with_capacity(config.queries.len());
    for text in &config.queries {
        let query = lookup::parse_query(text, config.proto, ProtoNames::Canonical)
            .map_err(|why| Error::usage(format!("{text}: {why}")))?;
        queries.push(query);
    }
    let mut status = Status::default();
    for (query, text) in queries.iter().zip(&config.queries) {
        if !answer(config, db, query, &mut out)? {
            warn(TOOL, format_args!("{text}: no such service"));
            status.had_errors = true;
        }
    }
    out.finish()?;
    Ok(status)
}

/// `--queries`: each word of each input line is a query, answered as an operand is; one
/// that is not a query, or names nothing, is reported with its line and the others go on.
fn look_up_input<W: Write>(
    config: &Config,
    db: &ServiceDb,
    mut out: RecordWriter<W>,
    signals: &Rc<SignalFd>,
) -> Result<Status> {
    fn problem(status: &mut Status, source: &LineSource, why: std::fmt::Arguments<'_>) {
        warn(
            TOOL,
            format_args!("{}:{}: {why}", source.name(), source.line_number()),
        );
        status.had_errors = true;
    }
    let mut status = Status::default();
    for input in &config.inputs {
        let mut source = match LineSource::open(input) {
            Ok(mut source) => {
                source.stop_on(Rc::clone(signals));
                source
            }
            Err(error) => {
                warn(TOOL, &error);
                status.had_errors = true;
                continue;
            }
        };
        loop {
            if source.would_wait() {
                out.flush()?;
            }
            match source.advance() {
                Ok(LineRead::End) => break,
                Ok(LineRead::Line) => {}
                // The rest of it is skipped by the next advance.
                Ok(LineRead::TooLong) => {
                    problem(
                        &mut status,
                        &source,
                        format_args!("longer than {MAX_LINE} bytes, skipped"),
                    );
                    continue;
                }
                Err(error @ Error::Input { .. }) => {
                    warn(TOOL, &error);
                    status.had_errors = true;
                    break;
                }
                Err(Error::Interrupted) => {
                    out.finish()?;
                    return Err(Error::Interrupted);
                }
                Err(error) => return Err(error),
            }
            let Ok(line) = std::str::from_utf8(source.line()) else {
                problem(&mut status, &source, format_args!("not UTF-8, skipped"));
                continue;
            };
            for word in line.split_ascii_whitespace() {
                match lookup::parse_query(word, config.proto, ProtoNames::WithIpv6Suffix) {
                    Ok(query) => {
                        if !answer(config, db, &query, &mut out)? {
                            problem(
                                &mut status,
                                &source,
                                format_args!("{word}: no such service"),
                            );
                        }
                    }
                    Err(why) => problem(&mut status, &source, format_args!("{word}: {why}")),
                }
            }
        }
    }
    out.finish()?;
    Ok(status)
}

/// Writes the records a query stands for; false for a name that names no port.
fn answer<W: Write>(
    config: &Config,
    db: &ServiceDb,
    query: &Query,
    out: &mut RecordWriter<W>,
) -> Result<bool> {
    let extras = Extras {
        frequency: config.additions.frequency,
        risk: config.additions.risk,
    };
    let pairs = match query {
        Query::Name { name, proto } => lookup::name_pairs(db, name, *proto),
        _ => query.ports(config.default_proto),
    };
    for &(port, proto) in &pairs {
        let record = db.record(port, proto, extras);
        if extras.frequency {
            out.write(&lookup::WithFrequency(&record))?;
        } else {
            out.write(&record)?;
        }
    }
    Ok(!pairs.is_empty() || !matches!(query, Query::Name { .. }))
}

fn annotate<W: Write>(
    config: &Config,
    db: &ServiceDb,
    out: RecordWriter<W>,
    signals: &Rc<SignalFd>,
) -> Result<Status> {
    let mut annotator = annotate::Annotator::new(db, config, out);
    let mut status = Status::default();
    for input in &config.inputs {
        let mut source = match LineSource::open(input) {
            Ok(source) => source,
            Err(error) => {
                warn(TOOL, &error);
                status.had_errors = true;
                continue;
            }
        };
        source.stop_on(Rc::clone(signals));
        match annotator.run(&mut source) {
            Ok(()) => {}
            // An input that cannot be read is reported and the others are still read;
            // a failure to write ends the run.
            Err(error @ Error::Input { .. }) => {
                warn(TOOL, &error);
                status.had_errors = true;
            }
            // What was read is out, whole, before the run ends.
            Err(Error::Interrupted) => {
                annotator.finish()?;
                return Err(Error::Interrupted);
            }
            Err(error) => return Err(error),
        }
    }
    let run_status = annotator.finish()?;
    status.had_errors |= run_status.had_errors;
    Ok(status)
}

fn report_warnings(db: &ServiceDb, status: &mut Status) {
    for warning in db.take_warnings() {
        warn(TOOL, warning);
        status.had_errors = true;
    }
}
