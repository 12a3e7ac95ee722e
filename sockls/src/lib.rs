//! sockls: the host's sockets, like ss or netstat, as records for pipelines. The sockets come
//! from `common::host::sockets` (sock_diag, or /proc/net), their owners from one scan of the
//! process fd tables (`common::host::owners`); this crate holds the filters and the output.

mod cli;
mod filter;
mod netns;

use std::collections::{HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;

use common::Status;
use common::contract::error::{Error, Result, warn};
use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::record::{OsText, OwnerStatus, SocketRecord};
use common::host::owners::{self, OwnerMap};
use common::host::sockets::{self, Query, Source};
use common::host::users::Users;

pub use cli::{Cli, MANUAL, SourceArg, command};
use filter::Filter;

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
    pub header: bool,
    /// `--netns` (one) or `--all-netns` (every one); empty for our own namespace alone.
    pub namespaces: Namespaces,
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
    #[expect(
        clippy::needless_pass_by_value,
        reason = "every tool's from_cli takes its Cli as common::contract::entry hands it over"
    )]
    pub fn from_cli(cli: Cli) -> Result<Self> {
        let format = cli.output.format();
        let query = filter::query(&cli)?;
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
            namespaces: match (&cli.netns, cli.all_netns) {
                (Some(spec), _) => Namespaces::One(netns::resolve(spec)?),
                (None, true) => Namespaces::All,
                (None, false) => Namespaces::Own,
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
        header: config.header || terminal,
        align: terminal,
    };
    let out = io::BufWriter::with_capacity(64 * 1024, out);
    let mut status = Status::default();
    let mut users = Users::default();
    let mut writer = RecordWriter::new(out, config.format, FlushPolicy::Block, options);
    let mut write = |mut record: SocketRecord| {
        if let Some(uid) = record.uid {
            record.user = users.name(uid).map(str::to_owned);
        }
        writer.write(&record)
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
    writer.finish()?;
    Ok(status)
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
