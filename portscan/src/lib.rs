//! portscan: an adaptive, unprivileged TCP connect and UDP scanner for shell pipelines.
//!
//! The parts, each with a narrow interface and tested alone: `targets` (what to scan),
//! `order` (in which order), `timing` (how fast, how long to wait, how often to retry),
//! `probe` (one connect(), or one UDP datagram, and what its outcome means), `udp_payloads`
//! (what a UDP probe of each well-known port sends), `engine` (the event loop tying them
//! together, with each probe's life a state type of its own, `engine::lifecycle`), `driver`
//! (the clock and epoll, which the loop's tests replace), and `output` (records or the
//! report a person reads, progress and summary). Each port of a plan carries its protocol, and the loop asks the prober to
//! probe it with that protocol: the UDP probe is one more `probe::Prober` driven by the
//! same loop, order, timing and output, and `probe::ScanProber`, the prober of a real scan,
//! says which protocols there are probers for (TCP and UDP). `discovery` finds which
//! hosts are up before the port scan of more than one address (or instead of it, `-sn`).

mod cli;
mod discovery;
mod driver;
mod engine;
#[doc(hidden)]
pub mod fuzzing;
mod limits;
mod order;
mod os_hint;
mod output;
mod privilege;
mod probe;
mod scans;
mod scope;
mod service;
mod source;
mod syn;
mod target_spec;
mod targets;
mod timing;
mod udp_payloads;

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::target_spec::TargetSpec;
use common::Status;
use common::contract::baseline;
use common::contract::error::{Error, Result, warn};
use common::contract::input::{LineRead, LineSource};
use common::contract::output::{FlushPolicy, Format, OutputArgs, RecordWriter, TextOptions};
use common::contract::record::{PortRecord, PortState, Reason};
use common::services::ports::Proto;
use common::services::{self, ServiceDb};
pub use discovery::Discovery;
use nix::sys::signalfd::SignalFd;

pub use cli::{Cli, MANUAL, ProbeDbChoice, ShowState, command, nmap_spellings};
use discovery::Found;
use discovery::Pinger;
use driver::Epoller;
use engine::{Observer, Plan, TargetPort};
use order::{Permutation, Shard};
use os_hint::Hinting;
use os_hint::gather::HintSockets;
use output::files::{self, Dest, Kind};
use output::{
    Grepable, HostFiles, Listed, Normal, NormalFile, Printer, Records, Report, Scan, Xml,
};
use probe::ScanProber;
use scans::Scans;
use service::{Identified, Probing};
use targets::Targets;
use timing::Profile;

/// The name messages start with.
pub const TOOL: &str = "portscan";

/// nmap's default: the thousand most common ports.
const DEFAULT_TOP_PORTS: usize = 1000;

/// nmap's -F: the hundred most common ports.
const FAST_TOP_PORTS: usize = 100;

/// A validated command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub targets: Vec<TargetSpec>,
    pub excluded: Vec<TargetSpec>,
    pub all_addresses: bool,
    /// -6: IPv6 addresses only.
    pub ipv6_only: bool,
    pub ports: Vec<TargetPort>,
    pub profile: Profile,
    pub max_rate: Option<f64>,
    pub min_rate: Option<f64>,
    /// `None`: sequential order.
    pub seed: Option<u64>,
    pub shard: Shard,
    /// Whether each state is shown, indexed by [`PortState::index`].
    pub show: [bool; PortState::ALL.len()],
    /// Whether `--show`, `--open` or `--all` chose the states; if not, the report lists
    /// them by nmap's rule.
    pub show_chosen: bool,
    /// A REASON column in the report.
    pub reason: bool,
    pub sort: bool,
    pub layout: Layout,
    pub format: Format,
    pub header: bool,
    /// `--hostname-field`: every record names the machine.
    pub hostname_field: bool,
    pub verbose: bool,
    pub discovery: Discovery,
    /// Discovery by ICMP echo alone (-PE).
    pub echo_only: bool,
    /// With -sn: a record for down hosts too (--all).
    pub all_hosts: bool,
    /// -v's count, which the XML file records.
    pub verbosity: u8,
    /// The output files (-oN, -oX, -oG, -oJ, -oA).
    pub files: files::Wanted,
    /// -sV: probe open TCP ports, and open or open|filtered UDP ports, for their services.
    pub version: Option<VersionOptions>,
    /// -A: -sV, and a hint of each host's operating system.
    pub os_hint: bool,
    /// -sS: TCP ports probed with SYNs from a raw socket ([`syn`]).
    pub syn: bool,
    /// --from: the records whose open ports -sV probes, instead of a scan.
    pub from: Option<String>,
    /// --baseline or --expect-open: stdout gets how the result differs, not the result.
    pub comparison: Option<output::Comparison>,
}

/// How -sV probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionOptions {
    pub intensity: u8,
    /// --allports: the printer ports too.
    pub all_ports: bool,
    pub db: ProbeDbChoice,
}

impl VersionOptions {
    fn options(self) -> Result<service::Options> {
        Ok(service::Options {
            db: match self.db {
                ProbeDbChoice::Builtin => service::builtin(),
                ProbeDbChoice::Nmap => service::nmap_db()?,
            },
            intensity: self.intensity,
            all_ports: self.all_ports,
        })
    }

    /// `None` without -sV.
    fn from_cli(cli: &Cli) -> Option<Self> {
        (cli.service_version || cli.os_hint).then_some(Self {
            intensity: cli.version_intensity,
            all_ports: cli.allports,
            db: cli.probe_db,
        })
    }
}

/// What stdout gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The report where stdout is a terminal, records elsewhere: the default.
    Terminal,
    /// The report anywhere (`--report`).
    Report,
    /// Records anywhere (`--records`, or a format's flag: `--json`, `--csv`, `--header`).
    Records,
}

impl Config {
    pub fn from_cli(mut cli: Cli) -> Result<Self> {
        let files = output_files(&mut cli)?;
        let show = shown_states(&cli);
        let targets = targets_of(&cli)?;
        // An empty list is the same mistake as no operand, wherever the list came from.
        if targets.is_empty() && cli.from.is_none() {
            return Err(Error::usage("no target given"));
        }
        if cli.ipv6
            && let Some(spec) = targets.iter().find(|spec| spec.is_ipv4())
        {
            return Err(Error::usage(format!(
                "target '{spec}': -6 scans IPv6 addresses only"
            )));
        }
        let ports = ports_to_scan(&cli)?;
        let mut profile = Profile::preset(cli.timing.unwrap_or(3));
        if let Some(retries) = cli.max_retries {
            profile.max_retries = retries;
        }
        if let Some(timeout) = cli.timeout {
            profile.initial_timeout = timeout;
            profile.max_timeout = timeout;
            profile.min_timeout = profile.min_timeout.min(timeout);
        }
        if let Some(delay) = cli.scan_delay {
            profile.scan_delay = delay;
        }
        if cli.host_timeout.is_some() {
            profile.host_timeout = cli.host_timeout;
        }
        if let (Some(min), Some(max)) = (cli.min_rate, cli.max_rate)
            && min > max
        {
            return Err(Error::usage(format!(
                "--min-rate {min} is above --max-rate {max}"
            )));
        }
        let version = VersionOptions::from_cli(&cli);
        let mut excluded: Vec<TargetSpec> = cli.exclude.into_iter().flatten().collect();
        for path in &cli.exclude_files {
            targets::read_list("--excludefile", path, &mut excluded)?;
        }
        refuse_the_internet(&targets, &excluded, cli.i_mean_it)?;
        let shard = cli.shard.unwrap_or(Shard::WHOLE);
        let seed = order_seed(cli.seed, cli.sequential, shard, &targets, &excluded, &ports);
        let format = cli.output.format();
        let layout = if cli.report {
            Layout::Report
        } else if cli.records || cli.output != OutputArgs::default() {
            Layout::Records
        } else {
            Layout::Terminal
        };
        let comparison = match (&cli.baseline, &cli.expect_open) {
            (Some(path), _) => Some(output::Comparison::Baseline {
                path: path.clone(),
                update: cli.update_baseline,
                earlier: Vec::new(),
            }),
            (None, Some(list)) => {
                Some(output::Comparison::ExpectOpen(expected_open(list, &ports)?))
            }
            (None, None) => None,
        };
        Ok(Self {
            targets,
            excluded,
            all_addresses: cli.all_addresses,
            ipv6_only: cli.ipv6,
            ports,
            profile,
            max_rate: cli.max_rate,
            min_rate: cli.min_rate,
            seed,
            shard,
            show,
            show_chosen: cli.open || cli.all || !cli.show.is_empty(),
            reason: cli.reason,
            sort: cli.sort,
            comparison,
            layout,
            format,
            header: cli.output.header,
            hostname_field: cli.output.hostname_field,
            verbose: cli.verbose > 0,
            discovery: if cli.ping_only {
                Discovery::Only
            } else if cli.no_ping {
                Discovery::Skip
            } else {
                Discovery::Auto
            },
            echo_only: cli.ping_echo,
            all_hosts: cli.all,
            verbosity: cli.verbose,
            files,
            version,
            os_hint: cli.os_hint,
            syn: cli.syn,
            from: cli.from,
        })
    }
}

/// Whether each state is shown, indexed by [`PortState::index`]: `--open`'s, `--all`'s,
/// `--show`'s, or open alone.
fn shown_states(cli: &Cli) -> [bool; PortState::ALL.len()] {
    if cli.open {
        PortState::ALL.map(|state| matches!(state, PortState::Open | PortState::OpenFiltered))
    } else if cli.all {
        PortState::ALL.map(|_| true)
    } else if cli.show.is_empty() {
        PortState::ALL.map(|state| state == PortState::Open)
    } else {
        PortState::ALL.map(|state| cli.show.iter().any(|show| show.state() == state))
    }
}

/// The output files the flags ask for.
fn output_files(cli: &mut Cli) -> Result<files::Wanted> {
    files::Wanted::new(
        [
            cli.output_normal.take(),
            cli.output_xml.take(),
            cli.output_grepable.take(),
            cli.output_json.take(),
        ],
        cli.output_all.as_deref(),
        cli.stylesheet.take(),
        cli.no_stylesheet,
        shell_words(&cli.command_line),
    )
}

/// The targets of the operands and of the -iL lists, in order.
fn targets_of(cli: &Cli) -> Result<Vec<TargetSpec>> {
    let mut targets = Vec::new();
    for operand in &cli.targets {
        if operand == "-" {
            targets::read_list("-", "-", &mut targets)?;
        } else {
            let specs = TargetSpec::parse_operand(operand)
                .map_err(|why| Error::usage(format!("target '{operand}': {why}")))?;
            targets.extend(specs);
        }
    }
    for path in &cli.input_lists {
        targets::read_list("-iL", path, &mut targets)?;
    }
    Ok(targets)
}

/// The ports a scan probes, a protocol at a time (TCP first), each in port order: `-p`'s,
/// or the most common ones. `--tcp` and `--udp` choose the protocols; without either, a
/// `-p` list's `T:` and `U:` items do, and unprefixed items and `--top-ports` are TCP.
fn ports_to_scan(cli: &Cli) -> Result<Vec<TargetPort>> {
    let mut ports = chosen_ports(cli)?;
    if let Some(excluded) = &cli.exclude_ports {
        ports.retain(|port| {
            let list = match port.proto {
                Proto::Udp => &excluded.udp,
                _ => &excluded.tcp,
            };
            !list.ports(port.proto).contains(port.port)
        });
        if ports.is_empty() {
            return Err(Error::usage("--exclude-ports leaves no port to scan"));
        }
    }
    Ok(ports)
}

/// Refuses a scan of more than a /8 of public addresses (`0.0.0.0/0`, a prefix mistyped)
/// unless it names an exclusion list or says `--i-mean-it`, as masscan does.
fn refuse_the_internet(targets: &[TargetSpec], excluded: &[TargetSpec], meant: bool) -> Result<()> {
    if meant || !excluded.is_empty() {
        return Ok(());
    }
    let public: u128 = targets.iter().map(scope::public_count).sum();
    if public <= scope::MOST_PUBLIC {
        return Ok(());
    }
    let widest = targets
        .iter()
        .max_by_key(|spec| scope::public_count(spec))
        .expect("some target holds them");
    Err(Error::usage(format!(
        "target '{widest}': the targets hold {public} public addresses, more than a /8's; a \
         scan this wide must name what to leave out (--exclude, --excludefile) or say \
         --i-mean-it"
    )))
}

/// The ports of `--expect-open`'s list, of the protocols the scan probes; each must be one
/// the scan covers, or the expectation could never be met.
fn expected_open(list: &cli::Ports, scanned: &[TargetPort]) -> Result<Vec<TargetPort>> {
    let mut expected = Vec::new();
    for proto in [Proto::Tcp, Proto::Udp] {
        if !scanned.iter().any(|port| port.proto == proto) {
            continue;
        }
        let set = match proto {
            Proto::Udp => list.udp.ports(proto),
            _ => list.tcp.ports(proto),
        };
        for port in set.iter() {
            let port = TargetPort { proto, port };
            if !scanned.contains(&port) {
                return Err(Error::usage(format!(
                    "--expect-open: {}/{} is not among the ports scanned",
                    port.port, port.proto
                )));
            }
            expected.push(port);
        }
    }
    Ok(expected)
}

/// The ports `-p`, `--top-ports` or `-F` and the scan types choose, before
/// `--exclude-ports`.
fn chosen_ports(cli: &Cli) -> Result<Vec<TargetPort>> {
    // -sS is a TCP scan, as -sT is (the two cannot be given together).
    let chosen: Vec<(Proto, &str)> = [
        (cli.tcp, Proto::Tcp, "-sT"),
        (cli.syn, Proto::Tcp, "-sS"),
        (cli.udp, Proto::Udp, "-sU"),
    ]
    .into_iter()
    .filter_map(|(on, proto, flag)| on.then_some((proto, flag)))
    .collect();
    let name = |proto: Proto| proto.as_str().to_ascii_uppercase();
    let mut ports = Vec::new();
    match &cli.ports {
        Some(list) if chosen.is_empty() => {
            return engine::scannable::<ScanProber>(&list.tcp).map_err(Error::usage);
        }
        Some(list) => {
            for (proto, flag) in chosen {
                let set = match proto {
                    Proto::Udp => list.udp.ports(proto),
                    _ => list.tcp.ports(proto),
                };
                if set.is_empty() {
                    let name = name(proto);
                    return Err(Error::usage(format!(
                        "{flag} scans {name} ports; the list has no {name} port"
                    )));
                }
                ports.extend(set.iter().map(|port| TargetPort { proto, port }));
            }
        }
        None => {
            let db = ServiceDb::load(&services::Options::default())?;
            let count = match (cli.top_ports, cli.fast) {
                (Some(count), _) => usize::from(count),
                (None, true) => FAST_TOP_PORTS,
                (None, false) => DEFAULT_TOP_PORTS,
            };
            let protocols = if chosen.is_empty() {
                vec![Proto::Tcp]
            } else {
                chosen.into_iter().map(|(proto, _)| proto).collect()
            };
            for proto in protocols {
                let mut top = db.top_ports(count, proto);
                if top.is_empty() {
                    return Err(Error::usage(format!(
                        "the service data names no {} port to choose the most common from; \
                         give the ports with -p",
                        name(proto)
                    )));
                }
                top.sort_unstable();
                ports.extend(top.into_iter().map(|port| TargetPort { proto, port }));
            }
        }
    }
    Ok(ports)
}

/// A name's IPv6 addresses, for -6; a name with IPv4 addresses only cannot be scanned.
fn ipv6_only(addresses: Vec<IpAddr>) -> io::Result<Vec<IpAddr>> {
    let had_some = !addresses.is_empty();
    let ipv6: Vec<IpAddr> = addresses.into_iter().filter(IpAddr::is_ipv6).collect();
    if had_some && ipv6.is_empty() {
        return Err(io::Error::other("no IPv6 address (-6)"));
    }
    Ok(ipv6)
}

/// A seed that differs from run to run; the order only needs to be unpredictable to the
/// target, not secret.
fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    #[expect(clippy::cast_possible_truncation, reason = "any 64 bits will do")]
    let low = nanos as u64;
    low ^ u64::from(std::process::id()).rotate_left(32)
}

/// The seed of the probe order: none for --sequential, the user's, one every shard
/// derives alike, or a random one.
fn order_seed(
    seed: Option<u64>,
    sequential: bool,
    shard: Shard,
    targets: &[TargetSpec],
    excluded: &[TargetSpec],
    ports: &[TargetPort],
) -> Option<u64> {
    match seed {
        _ if sequential => None,
        Some(seed) => Some(seed),
        // Shards run apart, often on other machines, and must still walk one order.
        None if shard.count > 1 => {
            Some(seed_shared_by_shards(targets, excluded, ports, shard.count))
        }
        None => Some(random_seed()),
    }
}

/// The seed every shard of one scan computes alike without being told: a hash of what
/// they all share (the target and exclusion operands, the ports, the number of shards),
/// never of the shard's own number. FNV-1a, spelled out because std's hasher may change
/// between builds, and shards may run builds of different ages.
fn seed_shared_by_shards(
    targets: &[TargetSpec],
    excluded: &[TargetSpec],
    ports: &[TargetPort],
    shards: u64,
) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let lines = (targets.iter().map(|spec| format!("target {spec}")))
        .chain(excluded.iter().map(|spec| format!("exclude {spec}")))
        .chain(
            ports
                .iter()
                .map(|port| format!("{}/{}", port.port, port.proto.as_str())),
        )
        .chain(std::iter::once(format!("shards {shards}")));
    lines
        .flat_map(|line| line.into_bytes().into_iter().chain(Some(b'\n')))
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

/// Hosts shuffled together: the order is random within each group of this many hosts and
/// the groups go one after another, so per-host state stays bounded however large the
/// target set (nmap scans in host groups for the same reason).
pub(crate) const HOST_GROUP: u64 = 4096;

/// Scans as `config` says, writing records to `out`: each as it is final, or all in order
/// at the end with --sort.
pub fn run(config: &Config, out: impl io::Write) -> Result<Status> {
    // The wall clock's start is for the files, which date the scan.
    let (started, start_time) = (Instant::now(), SystemTime::now());
    // Before anything is sent: a file that cannot be written is a usage error.
    let (mut dests, stdout) = files::open(&config.files, out)?;
    let config = &with_baseline_read(config)?;
    let (targets, problems) = resolve_targets(config)?;
    refuse_nothing_left(&targets)?;
    let unscanned_addresses = targets.unscanned_addresses();
    // (Until here SIGINT and SIGTERM simply end the process: nothing has been printed, and
    // name resolution cannot be interrupted.)
    let signal_fd = common::contract::watch::interrupts()?;
    let hinting = config.os_hint && config.from.is_none();
    let privilege::Privileged {
        pinger,
        raw_tcp,
        syn,
        ..
    } = give_up_privilege(config, &targets, hinting)?;

    let budget = limits::socket_budget();
    if let (Some(path), Some(version)) = (&config.from, config.version) {
        let mut driver = Epoller::new(Some(&signal_fd))?;
        let scan = config.scan(started, start_time, HashMap::new())?;
        return probe_found(
            config,
            version,
            path,
            stdout,
            &mut dests,
            scan,
            &mut driver,
            budget,
        );
    }
    let summaries = config.verbose || io::stderr().is_terminal();
    let sweep = Sweep {
        pinger: pinger.as_ref(),
        signals: &signal_fd,
    };
    let discovery_options = config.discovery_options(budget);
    if config.discovery == Discovery::Only {
        let scan = config.scan(started, start_time, HashMap::new())?;
        let files = DiscoveryFiles { dests, scan };
        let failed = ping_only(config, targets, sweep, stdout, files, summaries)?;
        return Ok(Status {
            had_errors: !problems.is_empty() || failed > 0,
            ..Status::default()
        });
    }
    let mut found = Found::<io::Sink>::quiet();
    let targets = if discovery::wanted(config.discovery, &targets) {
        found = discover(
            targets,
            &discovery_options,
            sweep,
            found,
            summaries,
            started,
        )?;
        Targets::from_hosts(std::mem::take(&mut found.live))
    } else {
        targets
    };

    // Only the hint reads the echo socket from here on.
    let pinger = pinger.filter(|_| hinting);
    let scans = Scans::new(config.plans(targets, budget)?, syn.as_ref());
    let mut scan = config.scan(started, start_time, std::mem::take(&mut found.reasons))?;
    scan.unscanned_addresses = unscanned_addresses;
    let services = Arc::clone(&scan.services);
    let (mut printer, report) = printer_for(config, stdout, &mut dests, scan)?;
    if config.verbose {
        printer.show_notices();
    }
    printer.unscanned(found.down, found.failed.len() as u64);
    let mut driver = Epoller::new(Some(&signal_fd))?;
    let outcome = scan_ports(
        config,
        &scans,
        &mut driver,
        &mut printer,
        &services,
        HintInputs {
            signals: &signal_fd,
            sockets: HintSockets { pinger, raw_tcp },
        },
    )?;
    let hosts_failed = printer.hosts_failed();
    let failed_before = problems.count() + found.failed.len() as u64;
    printer.failed_before(&problems, found.failed);
    let (counts, changed) = printer.finish(outcome.interrupted)?;
    // The report's closing line says as much on a terminal; -v still asks for the summary.
    if config.verbose || (!report && summaries) {
        warn(
            TOOL,
            output::summary(counts, started.elapsed(), outcome.sent, outcome.interrupted),
        );
    }
    if outcome.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(Status {
        had_errors: !problems.is_empty() || hosts_failed + failed_before > 0,
        changed,
    })
}

/// Opens the sockets the run needs privilege for (an echo socket to discover hosts or for
/// -A, -A's raw TCP sockets), then gives up the privilege ([`privilege`]).
fn give_up_privilege(
    config: &Config,
    targets: &Targets,
    hinting: bool,
) -> Result<privilege::Privileged> {
    let discovering = config.discovery == Discovery::Only
        || (config.from.is_none() && discovery::wanted(config.discovery, targets));
    let privileged = privilege::open_then_drop(privilege::Needs {
        pinger: discovering || hinting,
        raw_tcp: hinting,
        syn: config.syn,
        keeps_uid: matches!(
            config.comparison,
            Some(output::Comparison::Baseline { update: true, .. })
        ),
    })?;
    if let (Some(now), true) = (privileged.now, config.verbosity > 1) {
        warn(TOOL, format!("sockets opened; running on as {now}"));
    }
    Ok(privileged)
}

/// `config` with its `--baseline` read, before anything is sent: a file that is not a
/// baseline is a usage error, not a scan that reports everything as removed.
fn with_baseline_read(config: &Config) -> Result<Config> {
    let mut config = config.clone();
    if let Some(comparison) = &mut config.comparison {
        comparison.load()?;
    }
    Ok(config)
}

/// A run whose every target is excluded (or is an address no host answers from, in a
/// range) would scan nothing and say nothing, a mistyped `--exclude` looking like a clean
/// scan: a usage error, as an empty target list is. Only the first hosts are looked at, so
/// that a huge range costs nothing; past them the scan goes on and finds what it finds.
fn refuse_nothing_left(targets: &Targets) -> Result<()> {
    const LOOKED_AT: u64 = 1 << 20;
    let len = targets.len();
    if len == 0 || len > LOOKED_AT || (0..len).any(|index| targets.get(index).is_some()) {
        return Ok(());
    }
    Err(Error::usage(
        "no target is left to scan: --exclude or --excludefile leaves out every one \
         (or, in a range, each is an address no host answers from)",
    ))
}

/// The scan's hosts, names resolved (to IPv6 alone with -6); what could not be resolved
/// is reported, and listed in the problems.
fn resolve_targets(config: &Config) -> Result<(Targets, targets::Problems)> {
    let (targets, problems) = Targets::build(
        config.targets.clone(),
        config.excluded.clone(),
        config.all_addresses,
        |name| {
            let addresses = targets::system_resolve(name)?;
            if config.ipv6_only {
                ipv6_only(addresses)
            } else {
                Ok(addresses)
            }
        },
    )?;
    for problem in &problems.messages {
        warn(TOOL, problem);
    }
    Ok((targets, problems))
}

/// Scans, and with -sV probes the open TCP ports (and the open or open|filtered UDP ports)
/// the scan found; with -A the hint of each host's system goes between the probing and the
/// printer.
fn scan_ports<W: io::Write>(
    config: &Config,
    scans: &Scans<'_>,
    driver: &mut Epoller,
    printer: &mut Printer<'_, W>,
    services: &ServiceDb,
    hint: HintInputs<'_>,
) -> Result<engine::Summary> {
    let Some(version) = config.version else {
        return scans.run(driver, printer);
    };
    printer.version_columns();
    let options = version.options()?;
    if !config.os_hint {
        return probe_services(scans, driver, printer, &options, services);
    }
    printer.os_columns();
    let mut hinting = Hinting::new(printer, hint.signals, hint.sockets);
    let mut outcome = probe_services(scans, driver, &mut hinting, &options, services)?;
    outcome.interrupted |= hinting.finish(outcome.interrupted)?;
    Ok(outcome)
}

/// Scans, probing the open TCP ports (and the open or open|filtered UDP ports) for their
/// services as the scan finds them, and gives them to `observer`.
fn probe_services<O: Identified>(
    scans: &Scans<'_>,
    driver: &mut Epoller,
    observer: &mut O,
    options: &service::Options,
    services: &ServiceDb,
) -> Result<engine::Summary> {
    // Each port probed at once holds a socket: half the budget at most, shared with the
    // scan's probes while it runs.
    let parallel = (scans.budget() / 2).max(1);
    let mut probing = Probing::new(observer, options, services, parallel);
    let outcome = scans.run(driver, &mut probing)?;
    if outcome.interrupted {
        probing.release()?;
    }
    Ok(outcome)
}

/// A port read back from an earlier scan's record: its host, number, state and round trip.
type FoundPort = (
    targets::Host,
    TargetPort,
    (PortState, Reason),
    Option<std::time::Duration>,
);

/// `-sV --from FILE`: probes the open TCP ports (and the open or open|filtered UDP ports)
/// of the records in FILE, as if a scan had just found them, and prints their records anew
/// with the -sV fields. A line that is not a port record is reported and skipped.
#[expect(clippy::too_many_arguments, reason = "the run's parts, each used once")]
fn probe_found<'a, W: io::Write + 'a>(
    config: &Config,
    version: VersionOptions,
    path: &str,
    stdout: Option<W>,
    dests: &mut [Option<Dest<'a>>; 4],
    scan: Scan,
    driver: &mut Epoller,
    budget: usize,
) -> Result<Status> {
    let options = version.options()?;
    let mut source = LineSource::open(path)?;
    let mut found: Vec<FoundPort> = Vec::new();
    // Each host once, in the order met, and where each (label, address) stands.
    let mut hosts: Vec<targets::Host> = Vec::new();
    let mut host_index: HashMap<(String, IpAddr), usize> = HashMap::new();
    let mut skipped = false;
    let mut line = Vec::new();
    while source.read_line(&mut line)? != LineRead::End {
        // A baseline's header (--update-baseline's file as the input) is no port.
        if line.trim_ascii().is_empty() || baseline::is_header(&line) {
            continue;
        }
        let record: PortRecord = match serde_json::from_slice(&line) {
            Ok(record) => record,
            Err(why) => {
                let place = format!("{}: line {}", source.name(), source.line_number());
                warn(TOOL, format_args!("{place}: not a port record: {why}"));
                skipped = true;
                continue;
            }
        };
        let maybe_open = match record.proto {
            Proto::Tcp => record.state == PortState::Open,
            Proto::Udp => matches!(record.state, PortState::Open | PortState::OpenFiltered),
            _ => false,
        };
        if !maybe_open {
            continue;
        }
        let key = (record.host, record.address);
        let index = *host_index
            .entry(key)
            .or_insert_with_key(|(label, address)| {
                hosts.push(targets::Host {
                    label: label.clone(),
                    address: *address,
                    index: hosts.len() as u64,
                });
                hosts.len() - 1
            });
        let host = hosts[index].clone();
        let port = TargetPort {
            proto: record.proto,
            port: record.port,
        };
        let rtt = record
            .rtt_ms
            .and_then(|ms| std::time::Duration::try_from_secs_f64(ms / 1e3).ok());
        found.push((host, port, (record.state, record.reason), rtt));
    }
    let services = Arc::clone(&scan.services);
    let (mut printer, _) = printer_for(config, stdout, dests, scan)?;
    printer.version_columns();
    let mut probing = Probing::new(&mut printer, &options, &services, (budget / 2).max(1));
    for (host, port, (state, reason), rtt) in &found {
        probing.result(host, *port, *state, *reason, *rtt)?;
    }
    for host in &hosts {
        probing.host_done(host)?;
    }
    let complete = probing.run(driver)?;
    printer.finish(!complete)?;
    if !complete {
        return Err(Error::Interrupted);
    }
    Ok(Status {
        had_errors: skipped,
        ..Status::default()
    })
}

/// The printer of a port scan: to stdout (unless a file's format took it, `-`) the report
/// a person reads or records, and whether it is the report; into the files in `dests`
/// (indexed as [`Kind::ALL`]) their formats.
fn printer_for<'a, W: io::Write + 'a>(
    config: &Config,
    stdout: Option<W>,
    dests: &mut [Option<Dest<'a>>; 4],
    scan: Scan,
) -> Result<(Printer<'a, io::BufWriter<W>>, bool)> {
    let report_on_stdout = stdout.is_some()
        && config.comparison.is_none()
        && match config.layout {
            Layout::Terminal => io::stdout().is_terminal(),
            Layout::Report => true,
            Layout::Records => false,
        };
    let mut records = None;
    let mut report = (report_on_stdout || config.files.any_document()).then(|| Report::new(scan));
    if let Some(out) = stdout {
        match &mut report {
            Some(report) if report_on_stdout => {
                report.add(Box::new(Normal), Dest::stdout(io::BufWriter::new(out)))?;
            }
            _ => {
                let writer = record_writer(config, out);
                let mut printed = Records::new(writer, config.show, config.sort);
                if let Some(comparison) = &config.comparison {
                    printed = printed.compared(comparison.clone());
                }
                records = Some(printed);
            }
        }
    }
    if let Some(report) = &mut report {
        add_file_documents(report, dests)?;
    }
    let json_file = dests[Kind::Json.index()]
        .take()
        .map(|dest| Records::into_file(dest, config.show, config.sort, config.hostname_field));
    Ok((Printer::new(records, report, json_file), report_on_stdout))
}

/// Adds the documents of the files in `dests` (-oN, -oX, -oG) to `report`, taking them.
fn add_file_documents<'a>(
    report: &mut Report<'a>,
    dests: &mut [Option<Dest<'a>>; 4],
) -> Result<()> {
    for (kind, dest) in Kind::ALL.into_iter().zip(dests.iter_mut()) {
        let document: Box<dyn output::Document> = match kind {
            Kind::Normal => Box::new(NormalFile),
            Kind::Xml => Box::new(Xml),
            Kind::Grepable => Box::new(Grepable),
            Kind::Json => continue,
        };
        if let Some(dest) = dest.take() {
            report.add(document, dest)?;
        }
    }
    Ok(())
}

/// What host discovery sends and listens with: the echo socket opened before privilege was
/// given up (none where it could not be), and the signals that end the sweep early.
#[derive(Clone, Copy)]
struct Sweep<'a> {
    pinger: Option<&'a Pinger>,
    signals: &'a SignalFd,
}

/// What -A's operating-system hint reads from: its sockets, opened before privilege was
/// given up, and the signals that end its wait early.
struct HintInputs<'a> {
    signals: &'a SignalFd,
    sockets: HintSockets,
}

/// The output files of a -sn run, opened, and what they are told of it.
struct DiscoveryFiles<'a> {
    dests: [Option<Dest<'a>>; 4],
    scan: Scan,
}

/// Host discovery alone (-sn): host records to stdout (unless a file's format took it),
/// and every host into the files; how many hosts could not be probed.
fn ping_only<'a, W: io::Write + 'a>(
    config: &Config,
    targets: Targets,
    sweep: Sweep<'_>,
    stdout: Option<W>,
    files: DiscoveryFiles<'a>,
    summary: bool,
) -> Result<u64> {
    let DiscoveryFiles { mut dests, scan } = files;
    let started = scan.started;
    // As a port scan's: the report on stdout with --report, or on a terminal.
    let report_on_stdout = stdout.is_some()
        && match config.layout {
            Layout::Terminal => io::stdout().is_terminal(),
            Layout::Report => true,
            Layout::Records => false,
        };
    let mut report = (report_on_stdout || config.files.any_document()).then(|| Report::new(scan));
    let mut stdout = stdout;
    if let Some(report) = &mut report {
        if report_on_stdout && let Some(out) = stdout.take() {
            report.add(Box::new(Normal), Dest::stdout(io::BufWriter::new(out)))?;
        }
        add_file_documents(report, &mut dests)?;
    }
    let json = dests[Kind::Json.index()].take();
    let mut found = match stdout {
        Some(out) => Found::printing(record_writer(config, out), config.all_hosts, config.sort),
        None => Found::quiet(),
    };
    let options = config.discovery_options(limits::socket_budget());
    let mut listener = HostFiles::new(&mut found, report, json, config.all_hosts, config.sort);
    let outcome = discovery::run(
        targets,
        &options,
        sweep.pinger,
        sweep.signals,
        &mut listener,
    )?;
    listener.finish(outcome.interrupted)?;
    let found = found.finish()?;
    // The report's closing line says as much; -v still asks for the summary.
    if config.verbose || (summary && !report_on_stdout) {
        warn(TOOL, found.summary(outcome, started.elapsed()));
    }
    if outcome.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(found.failed.len() as u64)
}

/// The command line as a shell would take it back: words with spaces or quotes quoted,
/// as nmap's files record it.
fn shell_words(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| {
            if !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./,:=+@%".contains(&b))
            {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

/// The writer of the run's records: flushed as each comes, or block-buffered when they
/// are all printed at the end (--sort).
fn record_writer<W: io::Write>(config: &Config, out: W) -> RecordWriter<io::BufWriter<W>> {
    let policy = if config.sort {
        FlushPolicy::Block
    } else {
        FlushPolicy::PerRecord
    };
    let options = TextOptions {
        header: config.header,
        align: false,
    };
    RecordWriter::new(io::BufWriter::new(out), config.format, policy, options)
        .with_hostname(config.hostname_field)
}

impl Config {
    /// What the report and its documents are told of the port scan: it began at
    /// `started` (`start_time` on the wall clock), and discovery found hosts up for
    /// `up_reasons`.
    fn scan(
        &self,
        started: Instant,
        start_time: SystemTime,
        up_reasons: HashMap<targets::Host, Reason>,
    ) -> Result<Scan> {
        Ok(Scan {
            services: Arc::new(ServiceDb::load(&services::Options::default())?),
            listed: if self.show_chosen {
                Listed::States(self.show)
            } else {
                Listed::Nmap
            },
            reason: self.reason,
            sort: self.sort,
            started,
            start_time,
            command_line: self.files.command_line.clone(),
            // -sn scans no port.
            ports: if self.discovery == Discovery::Only {
                Vec::new()
            } else {
                self.ports.clone()
            },
            verbose: self.verbosity,
            stylesheet: self.files.stylesheet.clone(),
            up_reasons,
            unscanned_addresses: HashMap::new(),
            syn: self.syn,
        })
    }

    /// The port scan of `targets`: every (host, port) pair in the seeded order, with this
    /// run's shard, timing and rates.
    /// The plans of the run's scans, in turn ([`Scans`]): with -sS and UDP ports, the TCP
    /// ports' and then the UDP ports' (the SYN loop takes TCP only); otherwise one.
    fn plans(&self, targets: Targets, budget: usize) -> Result<Vec<Plan>> {
        if !self.syn || self.ports.iter().all(|port| port.proto == Proto::Tcp) {
            return Ok(vec![self.plan(targets, self.ports.clone(), budget)?]);
        }
        let (tcp, udp) = self.ports.iter().partition(|port| port.proto == Proto::Tcp);
        Ok(vec![
            self.plan(targets.clone(), tcp, budget)?,
            self.plan(targets, udp, budget)?,
        ])
    }

    fn plan(&self, targets: Targets, ports: Vec<TargetPort>, budget: usize) -> Result<Plan> {
        let pairs = targets
            .len()
            .checked_mul(ports.len() as u64)
            .ok_or_else(|| Error::usage("more than 2^64 (host, port) pairs to scan"))?;
        Ok(Plan {
            targets,
            order: Permutation::new(pairs, HOST_GROUP * ports.len() as u64, self.seed),
            ports,
            shard: self.shard,
            profile: self.profile,
            max_rate: self.max_rate,
            min_rate: self.min_rate,
            budget,
        })
    }

    /// Discovery goes as fast and tries as often as the port scan.
    fn discovery_options(&self, budget: usize) -> discovery::Options {
        discovery::Options {
            echo_only: self.echo_only,
            profile: self.profile,
            max_rate: self.max_rate,
            min_rate: self.min_rate,
            seed: self.seed,
            budget,
        }
    }
}

/// Runs host discovery, printing its summary where a person reads it; `found` collects
/// the hosts (and with -sn prints their records).
fn discover<W: io::Write>(
    targets: Targets,
    options: &discovery::Options,
    sweep: Sweep<'_>,
    mut found: Found<W>,
    summary: bool,
    started: Instant,
) -> Result<Found<W>> {
    let outcome = discovery::run(targets, options, sweep.pinger, sweep.signals, &mut found)?;
    let found = found.finish()?;
    if summary {
        warn(TOOL, found.summary(outcome, started.elapsed()));
    }
    if outcome.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::ffi::OsString;
    use std::time::Duration;

    fn ports(args: &[&str]) -> Result<Vec<(Proto, u16)>> {
        let args = ["portscan"].iter().chain(args).chain(&["::1"]);
        let cli = Cli::try_parse_from(nmap_spellings(args.map(OsString::from)))
            .map_err(|error| Error::usage(error.to_string()))?;
        let ports = ports_to_scan(&cli)?;
        Ok(ports
            .into_iter()
            .map(|port| (port.proto, port.port))
            .collect())
    }

    #[test]
    fn scan_types_choose_the_protocols_of_a_port_list() {
        use Proto::{Tcp, Udp};
        type Case<'a> = (&'a [&'a str], &'a [(Proto, u16)]);
        let cases: &[Case<'_>] = &[
            (&["-p", "53"], &[(Tcp, 53)]),
            (&["-sT", "-p", "53"], &[(Tcp, 53)]),
            (&["-sU", "-p", "53"], &[(Udp, 53)]),
            (&["-sU", "-sT", "-p", "53"], &[(Tcp, 53), (Udp, 53)]),
            (&["-p", "U:53,T:22"], &[(Tcp, 22), (Udp, 53)]),
            (&["-sU", "-p", "U:53"], &[(Udp, 53)]),
            (
                &["--udp", "--tcp", "-p", "T:22,U:53"],
                &[(Tcp, 22), (Udp, 53)],
            ),
            // A scan type leaves out the other protocol's items, as in nmap.
            (&["-sU", "-p", "T:22,U:53"], &[(Udp, 53)]),
            // -sS is a TCP scan.
            (&["-sS", "-p", "T:22,U:53"], &[(Tcp, 22)]),
            (&["-sS", "-p", "53"], &[(Tcp, 53)]),
        ];
        for (args, expected) in cases {
            assert_eq!(ports(args).unwrap(), *expected, "{args:?}");
        }
    }

    #[test]
    fn a_scan_type_without_ports_of_its_protocol_is_a_usage_error() {
        for (args, message) in [
            (
                &["-sU", "-p", "T:22"][..],
                "-sU scans UDP ports; the list has no UDP port",
            ),
            (
                &["-sT", "-sU", "-p", "U:53"],
                "-sT scans TCP ports; the list has no TCP port",
            ),
        ] {
            let error = ports(args).unwrap_err();
            assert_eq!(error.to_string(), message, "{args:?}");
            assert_eq!(error.exit_code(), Error::usage("").exit_code());
        }
    }

    #[test]
    fn excluded_ports_are_left_out_per_protocol() {
        use Proto::{Tcp, Udp};
        type Case<'a> = (&'a [&'a str], &'a [(Proto, u16)]);
        let cases: &[Case<'_>] = &[
            (
                &["-p", "20-25", "--exclude-ports", "21-23"],
                &[(Tcp, 20), (Tcp, 24), (Tcp, 25)],
            ),
            (
                &["-sT", "-sU", "-p", "53,54", "--exclude-ports", "U:53"],
                &[(Tcp, 53), (Tcp, 54), (Udp, 54)],
            ),
            (
                &["-sT", "-sU", "-p", "53,54", "--exclude-ports", "54"],
                &[(Tcp, 53), (Udp, 53)],
            ),
            (
                &["-p", "T:22,U:53", "--exclude-ports", "T:53,U:22"],
                &[(Tcp, 22), (Udp, 53)],
            ),
            // Excluding a port that is not scanned is no mistake; nor is an SCTP item.
            (&["-p", "22", "--exclude-ports", "99,S:22"], &[(Tcp, 22)]),
            (
                &["-p", "21-23", "--exclude-ports", "ssh"],
                &[(Tcp, 21), (Tcp, 23)],
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(ports(args).unwrap(), *expected, "{args:?}");
        }
        let fast = ports(&["-F"]).unwrap();
        let (_, first) = fast[0];
        let without = ports(&["-F", "--exclude-ports", &first.to_string()]).unwrap();
        assert_eq!(without.len(), 99);
        assert_eq!(without[..], fast[1..]);
        let error = ports(&["-p", "22", "--exclude-ports", "1-100"]).unwrap_err();
        assert_eq!(error.to_string(), "--exclude-ports leaves no port to scan");
    }

    #[test]
    fn service_names_in_a_port_list() {
        use Proto::{Tcp, Udp};
        let found = ports(&["-p", "ssh,HTTP,1"]).unwrap();
        for pair in [(Tcp, 1), (Tcp, 22), (Tcp, 80)] {
            assert!(found.contains(&pair), "{pair:?} in {found:?}");
        }
        assert!(found.iter().all(|(proto, _)| *proto == Tcp));
        let found = ports(&["-p", "U:domain,T:22"]).unwrap();
        assert!(
            found.contains(&(Udp, 53)) && found.contains(&(Tcp, 22)),
            "{found:?}"
        );
        assert!(
            ports(&["-sU", "-p", "domain"])
                .unwrap()
                .contains(&(Udp, 53))
        );
        let error = ports(&["-p", "22,no-such-service-here"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("'no-such-service-here' is not a port or a service name"),
            "{error}"
        );
    }

    #[test]
    fn ipv6_only_keeps_ipv6_addresses_and_refuses_ipv4_targets() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(ipv6_only(vec![v4, v6]).unwrap(), [v6]);
        assert_eq!(ipv6_only(vec![]).unwrap(), Vec::<IpAddr>::new());
        assert_eq!(
            ipv6_only(vec![v4]).unwrap_err().to_string(),
            "no IPv6 address (-6)"
        );
        assert!(config(&["-6", "-p", "1"]).ipv6_only);
        for target in [
            "127.0.0.1",
            "198.18.0.0/24",
            "198.18.0.1-20",
            "10.0.0.1-10.0.0.2",
        ] {
            let args = ["portscan", "-6", "-p", "1", target].map(OsString::from);
            let error = Config::from_cli(Cli::try_parse_from(args).unwrap()).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("target '{target}': -6 scans IPv6 addresses only")
            );
        }
    }

    #[test]
    fn fast_is_the_hundred_most_common_ports() {
        assert_eq!(
            ports(&["-F"]).unwrap(),
            ports(&["--top-ports", "100"]).unwrap()
        );
        assert_eq!(ports(&["-F", "-sU"]).unwrap().len(), 100);
    }

    fn config(args: &[&str]) -> Config {
        let args = ["portscan"].iter().chain(args).chain(&["::1"]);
        let cli = Cli::try_parse_from(nmap_spellings(args.map(OsString::from))).unwrap();
        Config::from_cli(cli).unwrap()
    }

    #[test]
    fn a_scan_delay_of_its_own_outlasts_the_template() {
        assert_eq!(config(&["-T1"]).profile.scan_delay, Duration::from_secs(15));
        let delay = config(&["-T1", "--scan-delay", "250ms"]).profile.scan_delay;
        assert_eq!(delay, Duration::from_millis(250));
        assert_eq!(config(&[]).profile.scan_delay, Duration::ZERO);
    }

    #[test]
    fn nmap_output_options() {
        let shown = |config: Config| -> Vec<PortState> {
            PortState::ALL
                .into_iter()
                .filter(|state| config.show[state.index()])
                .collect()
        };
        assert_eq!(
            shown(config(&["-p", "1", "--open"])),
            [PortState::Open, PortState::OpenFiltered]
        );
        assert_eq!(shown(config(&["-p", "1"])), [PortState::Open]);
        for verbose in [&["-v"][..], &["-vv"], &["-v", "-v"], &["--verbose"]] {
            let args: Vec<&str> = ["-p", "1"].iter().chain(verbose).copied().collect();
            assert!(config(&args).verbose, "{verbose:?}");
        }
        assert!(!config(&["-p", "1"]).verbose);
        // Accepted, and changes nothing portscan does.
        let plain = config(&["-p", "1", "--seed", "1"]);
        let nmap = config(&["-p", "1", "--seed", "1", "-n"]);
        assert_eq!(format!("{plain:?}"), format!("{nmap:?}"));
        assert!(!plain.echo_only && config(&["-p", "1", "-PE"]).echo_only);
        assert!(!plain.reason && config(&["-p", "1", "--reason"]).reason);
        assert_eq!(plain.discovery, Discovery::Auto);
        assert_eq!(config(&["-p", "1", "-Pn"]).discovery, Discovery::Skip);
        let ping_only = config(&["-sn", "--all"]);
        assert_eq!(ping_only.discovery, Discovery::Only);
        assert!(ping_only.all_hosts);
    }

    #[test]
    fn the_report_or_records_by_flag_or_else_by_terminal() {
        let cases: &[(&[&str], Layout)] = &[
            (&[], Layout::Terminal),
            (&["--reason", "--sort", "--all"], Layout::Terminal),
            (&["--report"], Layout::Report),
            (&["--records"], Layout::Records),
            (&["--json"], Layout::Records),
            (&["--csv"], Layout::Records),
            (&["--header"], Layout::Records),
        ];
        for (args, layout) in cases {
            let args: Vec<&str> = ["-p", "1"].iter().chain(*args).copied().collect();
            assert_eq!(config(&args).layout, *layout, "{args:?}");
        }
        for clash in ["--records", "--json", "--csv", "--header"] {
            let args = ["portscan", "--report", clash, "-p", "1", "::1"];
            assert!(Cli::try_parse_from(args).is_err(), "--report {clash}");
        }
        // nmap's rule for the report unless the states were chosen.
        assert!(!config(&["-p", "1"]).show_chosen);
        for chosen in ["--open", "--all", "--show=closed"] {
            assert!(config(&["-p", "1", chosen]).show_chosen, "{chosen}");
        }
    }

    #[test]
    fn top_ports_of_each_chosen_protocol() {
        let found = ports(&["-sU", "-sT", "--top-ports", "5"]).unwrap();
        assert_eq!(found.len(), 10);
        assert!(found[..5].iter().all(|(proto, _)| *proto == Proto::Tcp));
        assert!(found[5..].iter().all(|(proto, _)| *proto == Proto::Udp));
        let udp = ports(&["-sU", "--top-ports", "3"]).unwrap();
        assert_eq!(udp.len(), 3);
        assert!(udp.iter().all(|(proto, _)| *proto == Proto::Udp));
    }
}
