//! proctree: the processes of a host and their family tree, drawn like pstree, listed with the
//! fields of ps -elf, or printed as NDJSON and CSV records that scripts can rebuild the tree
//! from. It reads /proc directly (read), links the tree and filters it (tree), and turns
//! processes into records or tree lines (view).

mod cli;
mod columns;
mod interval;
mod ports;
mod pstime;
mod read;
pub mod stat;
mod tree;
mod tty;
mod view;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::{Instant, SystemTime};

use common::Status;
use common::contract::error::{Error, Result, warn};
use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::record::{ProcessRecord, ports_suffix};
use common::contract::watch::{self, Watch};

pub use cli::{Cli, MANUAL, command};
// The parsers of /proc/PID/cmdline and status, for the fuzz target in fuzz/ (`proc_files`);
// not part of the interface.
use columns::{Clock, Column, Selected, SortKey, Spec, Table};
use interval::{Baseline, Usage};
use ports::Ports;
use pstime::ShortTimes;
use read::{Process, Want};
#[doc(hidden)]
pub use read::{effective_uid, split_args};
use tree::{Filter, Forest, Glob, Selection};
use view::{Context, Drawing, Label, TreeLine};

/// The name messages start with.
pub const TOOL: &str = "proctree";

/// How the processes are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The drawn tree.
    Tree,
    /// ps -elf's list.
    Flat,
    /// Records as NDJSON or CSV.
    Records(Format),
}

/// A validated command line.
#[derive(Debug)]
pub struct Config {
    pub view: View,
    pub args: bool,
    pub drawing: Drawing,
    pub filter: Filter,
    pub threads: bool,
    pub header: bool,
    /// `--hostname-field`: every record names the machine.
    pub hostname_field: bool,
    /// Find the ports each process listens on.
    pub ports: bool,
    /// `--watch`: read again every interval, printing what started and ended.
    pub watch: Option<Watch>,
    /// `-o`: the columns of the flat list, the fields of the records.
    pub columns: Option<Vec<Spec>>,
    /// `--sort`: the order of the flat list and the records.
    pub sort: Vec<SortKey>,
    /// `--interval`: %CPU over this interval rather than over each process's life.
    pub interval: Option<std::time::Duration>,
    /// What to say of each `--user` that is not there, at the start of the run.
    pub unknown_users: Vec<String>,
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Self> {
        // ps's column, sort and interval options ask for ps's list.
        let flat =
            cli.flat || !cli.columns.is_empty() || !cli.sort.is_empty() || cli.interval.is_some();
        let view = match (flat || cli.watch.is_some(), cli.output.format()) {
            (true, Format::Text) => View::Flat,
            (false, Format::Text) => View::Tree,
            (_, records) => View::Records(records),
        };
        if cli.ancestors && cli.pids.is_empty() && cli.pid.is_none() {
            return Err(Error::usage(
                "--ancestors: needs a process (--pid PID or a PID argument)",
            ));
        }
        let columns = if cli.columns.is_empty() {
            None
        } else {
            Some(columns::parse_list(&cli.columns)?)
        };
        let sort = columns::parse_sort(&cli.sort)?;
        // The ports column (or sort key) needs the ports looked up: without, it would say
        // `-`, "listens on nothing", of every process.
        let ports = cli.ports
            || columns
                .iter()
                .flatten()
                .map(|(column, _)| column)
                .chain(sort.iter().map(|key| &key.column))
                .any(|column| *column == Column::Ports);
        // With -o, -p is ps's: those processes alone. Without, pstree's: their subtrees, as
        // the positional PID always is.
        let (alone, subtrees) = if columns.is_some() {
            (cli.pids, Vec::new())
        } else {
            (Vec::new(), cli.pids)
        };
        // A user that is not there is a thing named that is not there (docs/FORMAT.md, "Exit
        // status"): said, status 1, the other users still shown; alone, it matches nothing.
        let mut unknown_users = Vec::new();
        let uids = (!cli.users.is_empty()).then(|| {
            cli.users
                .iter()
                .filter_map(|user| {
                    common::host::users::resolve(user)
                        .map_err(|message| unknown_users.push(message))
                        .ok()
                })
                .collect()
        });
        Ok(Self {
            view,
            args: cli.args,
            drawing: if cli.ascii || !utf8_locale() {
                Drawing::ASCII
            } else {
                Drawing::UNICODE
            },
            filter: Filter {
                pids: subtrees.into_iter().chain(cli.pid).collect(),
                alone,
                ancestors: cli.ancestors,
                uids,
                names: cli.names.iter().map(|n| Glob::new(n)).collect(),
                hide_kthreads: cli.no_kernel,
            },
            threads: cli.threads,
            // A person at a terminal is told what the columns are, as by ps and ss.
            header: cli.output.header
                || (matches!(view, View::Tree | View::Flat) && io::stdout().is_terminal()),
            hostname_field: cli.output.hostname_field,
            ports,
            watch: cli.watch.map(|interval| Watch {
                interval,
                count: cli.count,
            }),
            columns,
            sort,
            interval: cli.interval,
            unknown_users,
        })
    }

    /// The files to read: stat always, the rest only for what will be printed or filtered.
    fn want(&self) -> Want {
        let records = self.view != View::Tree;
        let shown: Vec<Column> = match &self.columns {
            // The flat list's default columns, or every field of a record.
            None if records => {
                return Want {
                    status: true,
                    cmdline: true,
                    exe: true,
                    threads: self.threads,
                };
            }
            None => Vec::new(),
            Some(columns) => columns.iter().map(|&(column, _)| column).collect(),
        };
        let used = || shown.iter().chain(self.sort.iter().map(|key| &key.column));
        Want {
            status: self.filter.uids.is_some() || used().any(|c| c.needs_status()),
            cmdline: self.args
                || !self.filter.names.is_empty()
                || used().any(|c| c.needs_cmdline()),
            exe: used().any(|c| c.needs_exe()),
            threads: self.threads,
        }
    }

    /// The record fields `-o` keeps in JSON and CSV, each once, in the order first named.
    fn fields(&self) -> Option<Vec<&'static str>> {
        let columns = self.columns.as_ref()?;
        let mut fields = Vec::new();
        for (column, _) in columns {
            if !fields.contains(&column.field()) {
                fields.push(column.field());
            }
        }
        Some(fields)
    }
}

/// Whether the locale's character set is UTF-8 (LC_ALL, then LC_CTYPE, then LANG, as
/// setlocale(3) decides).
fn utf8_locale() -> bool {
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    locale.contains("utf-8") || locale.contains("utf8")
}

/// Reads /proc once (or every `--watch` interval) and prints the selected processes to
/// `out`, block-buffered: a process list is a snapshot, wanted whole.
pub fn run(config: &Config, out: impl Write) -> Result<Status> {
    for message in &config.unknown_users {
        warn(TOOL, message);
    }
    let mut status = match config.watch {
        Some(watch) => watch_processes(config, watch, out)?,
        None => list_processes(config, out)?,
    };
    status.had_errors |= !config.unknown_users.is_empty();
    Ok(status)
}

/// One listing: the tree, the flat list or the records, of one read of /proc (two with
/// `--interval`).
fn list_processes(config: &Config, out: impl Write) -> Result<Status> {
    // SIGINT and SIGTERM end the interval's wait, and later the listing between two records
    // (docs/FORMAT.md, "Signals and standard input"): held back from the start, so that
    // neither kills proctree.
    let signals = watch::interrupts()?;
    let baseline = match config.interval {
        Some(interval) => {
            let first = Want {
                threads: config.threads,
                ..Want::default()
            };
            let snapshot = read::read_all(Path::new("/proc"), first)
                .map_err(|e| Error::input("reading /proc", e))?;
            let baseline = Baseline::of(&snapshot);
            if watch::interrupted_before(&signals, Instant::now() + interval)? {
                return Err(Error::Interrupted);
            }
            Some(baseline)
        }
        None => None,
    };
    let snapshot = read::read_all(Path::new("/proc"), config.want())
        .map_err(|e| Error::input("reading /proc", e))?;
    let context = Context::new();
    let usage = baseline.map(|b| b.until_now(context.ticks_per_second()));
    let mut status = Status::default();
    for problem in &snapshot.problems {
        warn(TOOL, problem);
        status.had_errors = true;
    }
    let processes = &snapshot.processes;
    let forest = Forest::new(processes);
    let (selection, missing) = tree::select(&forest, processes, &config.filter);
    for pid in missing {
        warn(TOOL, format_args!("--pid {pid}: no such process"));
        status.had_errors = true;
    }
    let ports = if config.ports {
        let (ports, problems) = Ports::read()?;
        for problem in problems {
            warn(TOOL, problem);
            status.had_errors = true;
        }
        Some(ports)
    } else {
        None
    };
    let format = match config.view {
        View::Records(format) => format,
        View::Tree | View::Flat => Format::Text,
    };
    let text_options = TextOptions {
        header: config.header,
        align: true,
    };
    let out = BufWriter::with_capacity(64 * 1024, out);
    let mut writer = RecordWriter::new(out, format, FlushPolicy::Block, text_options)
        .with_hostname(config.hostname_field)
        .stop_on(signals);
    match config.view {
        View::Tree => print_tree(
            config,
            processes,
            &forest,
            &selection,
            ports.as_ref(),
            &mut writer,
        )?,
        View::Flat | View::Records(_) => {
            let mut records = Vec::new();
            for_each_record(
                config,
                processes,
                &forest,
                &selection,
                ports.as_ref(),
                usage.as_ref(),
                |record| {
                    records.push(record);
                    Ok(())
                },
            )?;
            if !config.sort.is_empty() {
                // Stable: what the keys do not tell apart stays in pid (or tree) order.
                records.sort_by(|a, b| columns::compare(&config.sort, a, b));
            }
            if config.view == View::Flat {
                print_table(config, &context, &records, writer.raw())?;
            } else if let Some(fields) = config.fields() {
                for record in &records {
                    writer.write(&Selected {
                        record,
                        fields: &fields,
                    })?;
                }
            } else {
                for record in &records {
                    writer.write(record)?;
                }
            }
        }
    }
    writer.finish()?;
    Ok(status)
}

fn print_tree<W: Write>(
    config: &Config,
    processes: &[Process],
    forest: &Forest,
    selection: &Selection,
    ports: Option<&Ports>,
    writer: &mut RecordWriter<W>,
) -> Result<()> {
    let mut lead = String::new();
    let mut lasts = Vec::new();
    let mut outcome = Ok(());
    forest.walk(&selection.shown, |visit| {
        if outcome.is_err() {
            return;
        }
        let process = &processes[visit.index];
        config.drawing.lead(visit.lasts, &mut lead);
        let mut line = TreeLine::of(process, &lead, config.args);
        if let Some(ports) = ports {
            line.suffix = match ports.of(process) {
                ports::Of::Known(known) => ports_suffix(Some(known), false),
                ports::Of::Denied => ports_suffix(None, true),
            };
        }
        outcome = writer.write(&line);
        let has_children = forest.has_shown_children(visit.index, &selection.shown);
        for (n, task) in process.tasks.iter().enumerate() {
            if outcome.is_err() {
                return;
            }
            lasts.clear();
            lasts.extend_from_slice(visit.lasts);
            lasts.push(n + 1 == process.tasks.len() && !has_children);
            config.drawing.lead(&lasts, &mut lead);
            let line = TreeLine {
                pid: task.pid,
                state: task.state,
                lead: &lead,
                label: Label::Thread(&task.comm),
                ..TreeLine::of(process, "", false)
            };
            outcome = writer.write(&line);
        }
    });
    outcome
}

/// `--watch`: the processes the filters take, read every interval, and a change record for
/// each that started or ended since the last (a process is its pid and start time, a
/// thread its tid too, so that a reused pid is a new process).
fn watch_processes(config: &Config, watch: Watch, out: impl Write) -> Result<Status> {
    let format = match config.view {
        View::Records(format) => format,
        View::Tree | View::Flat => Format::Text,
    };
    let text_options = TextOptions {
        header: config.header,
        align: false,
    };
    let mut writer = RecordWriter::new(
        BufWriter::new(out),
        format,
        FlushPolicy::Block,
        text_options,
    )
    .with_hostname(config.hostname_field);
    // Text shows a start as the flat list does, in ps's short form (`14:28`, `Dec03`); JSON
    // and CSV keep the record's full stamp. Only text ever prints these records' `started`.
    let context = (format == Format::Text).then(Context::new);
    let take = || {
        let snapshot = read::read_all(Path::new("/proc"), config.want())
            .map_err(|e| Error::input("reading /proc", e))?;
        let processes = &snapshot.processes;
        let short_times = ShortTimes::new(SystemTime::now());
        let forest = Forest::new(processes);
        let (selection, _) = tree::select(&forest, processes, &config.filter);
        let ports = if config.ports {
            Some(Ports::read()?.0)
        } else {
            None
        };
        let mut records = Vec::new();
        for_each_record(
            config,
            processes,
            &forest,
            &selection,
            ports.as_ref(),
            None,
            |mut record| {
                if let Some(context) = &context {
                    let start = context.start_instant(record.start_time);
                    record.started = short_times.start(start);
                }
                records.push(record);
                Ok(())
            },
        )?;
        Ok(records)
    };
    let key = |record: &ProcessRecord| (record.pid, record.tid, record.start_time);
    watch::run(watch, &mut writer, take, key)?;
    writer.finish()?;
    Ok(Status::default())
}

/// The flat view: ps's columns, lined up once every row is known.
fn print_table(
    config: &Config,
    context: &Context,
    records: &[ProcessRecord],
    out: &mut impl Write,
) -> Result<()> {
    let hostname = config
        .hostname_field
        .then(common::contract::output::hostname);
    let default_columns;
    let columns = if let Some(columns) = &config.columns {
        columns
    } else {
        default_columns = columns::flat();
        &default_columns
    };
    let mut table = Table::new(columns, hostname);
    let clock = Clock {
        context,
        short_times: ShortTimes::new(SystemTime::now()),
    };
    for record in records {
        table.push(record, &clock);
    }
    table.write(out, config.header)
}

/// Each record the view prints, in its order: processes and their threads.
fn for_each_record(
    config: &Config,
    processes: &[Process],
    forest: &Forest,
    selection: &Selection,
    ports: Option<&Ports>,
    usage: Option<&Usage>,
    mut each: impl FnMut(ProcessRecord) -> Result<()>,
) -> Result<()> {
    let mut visits = Vec::new();
    forest.walk(&selection.shown, |visit| {
        visits.push((visit.index, visit.depth));
    });
    if config.view == View::Flat {
        // Like ps, the flat list is in pid order, and it has no tree to keep readable, so
        // it leaves out the context of the matches.
        visits.sort_unstable();
        if config.filter.has_predicates() {
            visits.retain(|&(i, _)| selection.matched[i]);
        }
    }
    let mut context = Context::new();
    for (i, depth) in visits {
        let process = &processes[i];
        let mut record = context.record(process, depth, selection.matched[i]);
        if let Some(usage) = usage {
            let stat = &process.stat;
            record.cpu_percent = usage.percent(stat.pid, stat.start_time, stat.utime + stat.stime);
        }
        match ports.map(|ports| ports.of(process)) {
            None => {}
            Some(ports::Of::Known(known)) => record.ports = Some(known.to_vec()),
            Some(ports::Of::Denied) => record.denied.push("ports".to_owned()),
        }
        let threads: Vec<ProcessRecord> = process
            .tasks
            .iter()
            .map(|task| {
                let mut thread = context.thread_record(&record, task);
                if let Some(usage) = usage {
                    thread.cpu_percent =
                        usage.percent(task.pid, task.start_time, task.utime + task.stime);
                }
                thread
            })
            .collect();
        each(record)?;
        for thread in threads {
            each(thread)?;
        }
    }
    Ok(())
}
