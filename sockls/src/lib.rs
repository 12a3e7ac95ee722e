//! sockls: the host's sockets, like ss or netstat, as records for pipelines. The sockets come
//! from `common::host::sockets` (sock_diag, or /proc/net), their owners from one scan of the
//! process fd tables (`common::host::owners`); this crate holds the filters and the output.

mod cli;
mod expr;
mod filter;
mod netns;
mod shown;
mod summary;

use std::collections::{HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;

use common::Status;
use common::contract::baseline::{self, Change, ChangeRecord};
use common::contract::error::{Error, Result, warn};
use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::record::{OsText, OwnerStatus, SocketProto, SocketRecord, SocketState};
use common::contract::watch::{self, Watch};
use common::host::owners::{self, OwnerMap};
use common::host::sockets::{self, Query, Source};
use common::host::users::Users;
use common::services::ports::{PortList, Proto};

pub use cli::{Cli, MANUAL, SourceArg, command};
// The reader of /proc/net/sockstat and snmp, for the fuzz target in fuzz/ (`proc_files`);
// not part of the interface.
use filter::Filter;
use shown::{Extras, Shown};
#[doc(hidden)]
pub use summary::Summary;

/// The name messages start with.
pub const TOOL: &str = "sockls";

/// A validated command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub query: Query,
    pub source: Source,
    pub filter: Filter,
    /// Resolve the owning processes.
    pub owners: bool,
    pub format: Format,
    /// `--header`: a header line even when stdout is not a terminal.
    pub header: bool,
    /// `-H`: no header line, even on a terminal.
    pub no_header: bool,
    /// `-e`, `-o`, `-i`, `-m`: what the text adds to each socket.
    pub extras: Extras,
    /// `-s`: ss's summary instead of the sockets.
    pub summary: bool,
    /// `--hostname-field`: every record names the machine.
    pub hostname_field: bool,
    /// `--netns` (one) or `--all-netns` (every one); empty for our own namespace alone.
    pub namespaces: Namespaces,
    /// `--baseline` or `--expect-listen`: print how the listing differs, not the listing.
    pub comparison: Option<Comparison>,
    /// `--watch`: list again every interval, printing what appeared and went away.
    pub watch: Option<Watch>,
}

/// What the listing is compared with.
#[derive(Debug, Clone)]
pub enum Comparison {
    /// An earlier run's NDJSON; `update`: rewrite it with this run's.
    Baseline {
        path: std::path::PathBuf,
        update: bool,
    },
    /// The ports that must have a listener, and no others.
    ExpectListen(PortList),
}

/// Which network namespaces to list.
#[derive(Debug, Clone)]
pub enum Namespaces {
    /// The one sockls runs in; records carry no `netns`.
    Own,
    One(netns::Namespace),
    All,
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Self> {
        let format = cli.output.format();
        let mut query = filter::query(&cli)?;
        // Timers are read from each socket's message only when asked for: by -o, or by -e,
        // which shows them in ss too (its -e sets -o's option).
        let timers = cli.options || cli.extended;
        query.timers = timers;
        Ok(Self {
            query,
            source: match cli.source {
                SourceArg::Auto => Source::Auto,
                SourceArg::Netlink => Source::Netlink,
                SourceArg::Proc => Source::Proc,
            },
            filter: Filter::from_cli(&cli)?,
            owners: cli.processes || cli.pid.is_some(),
            format,
            header: cli.output.header,
            no_header: cli.no_header,
            extras: Extras {
                extended: cli.extended,
                timers,
                info: cli.info,
                memory: cli.memory,
            },
            summary: cli.summary,
            hostname_field: cli.output.hostname_field,
            namespaces: match (&cli.netns, cli.all_netns) {
                (Some(spec), _) => Namespaces::One(netns::resolve(spec)?),
                (None, true) => Namespaces::All,
                (None, false) => Namespaces::Own,
            },
            watch: cli.watch.map(|interval| Watch {
                interval,
                count: cli.count,
            }),
            comparison: match (cli.baseline, cli.expect_listen) {
                (Some(path), _) => Some(Comparison::Baseline {
                    path,
                    update: cli.update_baseline,
                }),
                (None, Some(list)) => Some(Comparison::ExpectListen(
                    PortList::parse(&list, Proto::Tcp)
                        .map_err(|why| Error::usage(format!("--expect-listen: '{list}': {why}")))?,
                )),
                (None, None) => None,
            },
        })
    }
}

/// Lists the sockets and prints them to `out`, block-buffered: a listing is a snapshot,
/// wanted whole. When stdout is a terminal, the text has a header and aligned columns, as
/// ss does.
pub fn run(config: &Config, out: impl Write) -> Result<Status> {
    let terminal = io::stdout().is_terminal();
    let options = TextOptions {
        header: (config.header || terminal) && !config.no_header,
        align: terminal,
    };
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    if config.summary {
        let hostname = config
            .hostname_field
            .then(common::contract::output::hostname);
        Summary::read()?.write(&mut out, config.format, hostname.as_deref())?;
        out.flush().map_err(Error::output)?;
        return Ok(Status::default());
    }
    for unknown in &config.filter.unknown_users {
        warn(TOOL, unknown);
    }
    let mut status = Status {
        had_errors: report_missing_pids(config) | !config.filter.unknown_users.is_empty(),
        ..Status::default()
    };
    let mut users = Users::default();
    let mut writer = RecordWriter::new(out, config.format, FlushPolicy::Block, options)
        .with_hostname(config.hostname_field);
    if let Some(watch) = config.watch {
        watch_sockets(config, watch, &mut users, &mut writer)?;
        writer.finish()?;
        return Ok(status);
    }
    // SIGINT and SIGTERM end the listing between two records (docs/FORMAT.md, "Signals and standard input").
    let mut writer = writer.stop_on(watch::interrupts()?);
    // Compared, the listing is held whole, and only its differences printed.
    let mut held: Option<Vec<SocketRecord>> = config.comparison.as_ref().map(|_| Vec::new());
    let mut written = 0_usize;
    let mut write = |mut record: SocketRecord| {
        if let Some(uid) = record.uid {
            record.user = users.name(uid).map(str::to_owned);
        }
        if let Some(held) = &mut held {
            held.push(record);
            return Ok(());
        }
        written += 1;
        writer.write(&Shown {
            record,
            extras: config.extras,
        })
    };
    let listing = match &config.namespaces {
        // Without owners to find first, each socket is printed as it comes: a host's
        // sockets are never all held at once.
        Namespaces::Own if !config.owners => {
            let mut failed = None;
            let problems = sockets::list_each(&config.query, config.source, |record| {
                if !config.filter.matches(&record) {
                    return ControlFlow::Continue(());
                }
                match write(record) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(error) => {
                        failed = Some(error);
                        ControlFlow::Break(())
                    }
                }
            });
            if let Some(error) = failed {
                return Err(error);
            }
            sockets::Listing {
                records: Vec::new(),
                problems,
            }
        }
        _ => listing(config)?,
    };
    for problem in &listing.problems {
        warn(TOOL, problem);
        status.had_errors = true;
    }
    let mut records = listing.records;
    records.retain(|record| config.filter.matches(record));
    if config.owners {
        write_with_owners(records, &config.filter, &mut write)?;
    } else {
        for record in records {
            write(record)?;
        }
    }
    if let (Some(comparison), Some(held)) = (&config.comparison, held) {
        status.changed = print_changes(comparison, &held, &mut writer)?;
    } else if written == 0 && options.header && config.format == Format::Text {
        // An empty listing still says what it would have shown, as ss does.
        let header = config.extras.header().join(" ");
        let hostname = if config.hostname_field {
            "hostname "
        } else {
            ""
        };
        writeln!(writer.raw(), "{hostname}{header}").map_err(Error::output)?;
    }
    writer.finish()?;
    Ok(status)
}

/// Prints how `sockets` differ from the baseline or the expected listeners (rewriting the
/// baseline if asked); `true` if they do.
fn print_changes<W: Write>(
    comparison: &Comparison,
    sockets: &[SocketRecord],
    writer: &mut RecordWriter<W>,
) -> Result<bool> {
    let changes = match comparison {
        Comparison::Baseline { path, update } => {
            let earlier = match baseline::read::<SocketRecord>(path)? {
                Some(earlier) => earlier,
                None if *update => Vec::new(),
                None => {
                    return Err(Error::usage(format!(
                        "--baseline {}: no such file (--update-baseline makes it)",
                        path.display()
                    )));
                }
            };
            let changes = baseline::compare(earlier, sockets, |_| true);
            if *update {
                baseline::write(path, sockets.iter())?;
            }
            changes
        }
        Comparison::ExpectListen(ports) => expected_listeners(ports, sockets),
    };
    for change in &changes {
        writer.write(change)?;
    }
    Ok(!changes.is_empty())
}

/// How the listeners differ from `ports`: a listener on a port not in the list is added,
/// a port of the list with none is removed (a record with only its port and protocol).
fn expected_listeners(
    ports: &PortList,
    sockets: &[SocketRecord],
) -> Vec<ChangeRecord<SocketRecord>> {
    let proto_of = |record: &SocketRecord| match record.proto {
        SocketProto::Tcp => Some(Proto::Tcp),
        SocketProto::Udp => Some(Proto::Udp),
        _ => None,
    };
    let listening = |record: &SocketRecord| {
        matches!(
            (record.proto, record.state),
            (SocketProto::Tcp, SocketState::Listen) | (SocketProto::Udp, SocketState::Unconn)
        )
    };
    let mut heard: HashSet<(Proto, u16)> = HashSet::new();
    let mut changes = Vec::new();
    for record in sockets.iter().filter(|record| listening(record)) {
        let (Some(proto), Some(port)) = (proto_of(record), record.local_port) else {
            continue;
        };
        heard.insert((proto, port));
        if !ports.ports(proto).contains(port) {
            changes.push(ChangeRecord {
                change: Change::Added,
                record: record.clone(),
                old: None,
            });
        }
    }
    for proto in [Proto::Tcp, Proto::Udp] {
        for port in ports.ports(proto).iter() {
            if !heard.contains(&(proto, port)) {
                changes.push(ChangeRecord {
                    change: Change::Removed,
                    record: SocketRecord::expected_listener(proto, port),
                    old: None,
                });
            }
        }
    }
    changes
}

/// `--watch`: the listing again every interval, and what appeared and went away.
fn watch_sockets<W: Write>(
    config: &Config,
    watch: Watch,
    users: &mut Users,
    writer: &mut RecordWriter<W>,
) -> Result<()> {
    let take = || {
        let (records, problems) = snapshot(config, users)?;
        for problem in problems {
            warn(TOOL, problem);
        }
        let extras = config.extras;
        Ok(records
            .into_iter()
            .map(|record| Shown { record, extras })
            .collect())
    };
    watch::run(watch, writer, take, |shown: &Shown| {
        socket_key(&shown.record)
    })
}

/// Reports each --pid that names no process, as proctree and ps report it (the rest is
/// listed); whether there was one.
fn report_missing_pids(config: &Config) -> bool {
    let mut missing: Vec<u32> = config
        .filter
        .pids
        .iter()
        .flatten()
        .copied()
        .filter(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    missing.sort_unstable();
    for &pid in &missing {
        warn(TOOL, format_args!("--pid {pid}: no such process"));
    }
    !missing.is_empty()
}

/// The sockets of the namespaces asked for, all at once.
fn listing(config: &Config) -> Result<sockets::Listing> {
    Ok(match &config.namespaces {
        Namespaces::Own => sockets::list(&config.query, config.source),
        Namespaces::One(namespace) => netns::list(namespace, &config.query, config.source)?,
        Namespaces::All => {
            let mut all = sockets::Listing::default();
            for namespace in netns::all()? {
                match netns::list(&namespace, &config.query, config.source) {
                    Ok(listing) => {
                        all.records.extend(listing.records);
                        all.problems.extend(listing.problems);
                    }
                    Err(error) => all.problems.push(error.to_string()),
                }
            }
            all
        }
    })
}

/// Every socket the filters take, with its owners and user, held whole (one interval of
/// `--watch`), and the problems met.
fn snapshot(config: &Config, users: &mut Users) -> Result<(Vec<SocketRecord>, Vec<String>)> {
    let listing = listing(config)?;
    let mut records = listing.records;
    records.retain(|record| config.filter.matches(record));
    let mut taken = Vec::with_capacity(records.len());
    let mut keep = |mut record: SocketRecord| {
        if let Some(uid) = record.uid {
            record.user = users.name(uid).map(str::to_owned);
        }
        taken.push(record);
        Ok(())
    };
    if config.owners {
        write_with_owners(records, &config.filter, &mut keep)?;
    } else {
        for record in records {
            keep(record)?;
        }
    }
    Ok((taken, listing.problems))
}

/// What tells one socket from another between two listings of `--watch`: its ends, its
/// inode (or cookie: a socket in TIME-WAIT has no inode) and its owner's pid and fd. A
/// tuple, hashed as it is: a string formatted per socket cost more than the diff needs.
type SocketKey = (
    SocketProto,
    Option<String>,
    Option<IpAddr>,
    Option<u16>,
    Option<Vec<u8>>,
    Option<IpAddr>,
    Option<u16>,
    (u64, Option<u64>),
    (Option<u32>, Option<u32>),
);

fn socket_key(record: &SocketRecord) -> SocketKey {
    (
        record.proto,
        record.netns.clone(),
        record.local_address,
        record.local_port,
        record.path.as_ref().map(|path| path.as_bytes().to_vec()),
        record.remote_address,
        record.remote_port,
        (record.inode, record.cookie),
        (record.pid, record.fd),
    )
}

/// Writes one record per (socket, owning fd), or the socket with the reason none is known.
/// Only the sockets that passed the filters are looked for, in one pass over /proc.
fn write_with_owners(
    records: Vec<SocketRecord>,
    filter: &Filter,
    write: &mut impl FnMut(SocketRecord) -> Result<()>,
) -> Result<()> {
    let wanted: HashSet<u64> = records
        .iter()
        .map(|r| r.inode)
        .filter(|&i| i != 0)
        .collect();
    let map = OwnerMap::scan(Some(&wanted)).map_err(|e| Error::input("reading /proc", e))?;
    drop(wanted);
    let mut comms: HashMap<u32, Option<OsText>> = HashMap::new();
    for mut record in records {
        let found = if record.inode == 0 {
            &[][..]
        } else {
            map.owners(record.inode)
        };
        if found.is_empty() {
            if filter.pids.is_some() {
                continue;
            }
            record.owner = Some(if map.denied > 0 && record.inode != 0 {
                OwnerStatus::Denied
            } else {
                OwnerStatus::None
            });
            write(record)?;
            continue;
        }
        for owner in found {
            if filter
                .pids
                .as_ref()
                .is_some_and(|pids| !pids.contains(&owner.pid))
            {
                continue;
            }
            let comm = comms
                .entry(owner.pid)
                .or_insert_with(|| owners::comm(owner.pid).ok());
            let mut record = record.clone();
            record.pid = Some(owner.pid);
            record.fd = Some(owner.fd);
            record.comm.clone_from(comm);
            record.owner = Some(if comm.is_some() {
                OwnerStatus::Known
            } else {
                OwnerStatus::Gone
            });
            write(record)?;
        }
    }
    Ok(())
}
