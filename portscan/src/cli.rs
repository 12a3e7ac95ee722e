//! portscan's command line, shared by the binary, the man page and the completions.

mod nmap_only;

use std::ffi::OsString;
use std::time::Duration;

use crate::target_spec::TargetSpec;
use clap::{CommandFactory, Parser, ValueEnum};
use common::contract::input::parse_duration;
use common::contract::manual::{Example, Manual};
use common::contract::output::OutputArgs;
use common::contract::record::PortState;
use common::services::ports::{PortList, Proto};
use common::services::{self, ServiceDb};

use crate::order::Shard;
use crate::probe::ScanProber;

/// What --help says after the options; the man page's EXAMPLES, DESCRIPTION notes and
/// EXIT STATUS.
pub const MANUAL: Manual = Manual {
    examples: &[
        Example {
            command: "portscan localhost",
            does: "the 1000 most common ports; open ones only",
        },
        Example {
            command: "portscan -p- --all 127.0.0.1",
            does: "every port, every state",
        },
        Example {
            command: "portscan -p 22,80,443 198.18.0.0/24 --json | jq -r 'select(.state==\"open\") | .host'",
            does: "",
        },
        Example {
            command: "portscan localhost | svcname",
            does: "name the services behind open ports",
        },
        Example {
            command: "portscan -iL hosts.txt --sort > today",
            does: "diff-able from run to run",
        },
        Example {
            command: "portscan --shard 2/3 --seed 7 ...",
            does: "the second third of a scan split over three machines",
        },
        Example {
            command: "portscan -sU --top-ports 20 localhost",
            does: "the 20 most common UDP ports",
        },
        Example {
            command: "portscan -sT -sU -p 53 198.18.0.1",
            does: "53/tcp and 53/udp",
        },
        Example {
            command: "portscan -F --open -Pn 198.18.0.1",
            does: "nmap's spellings: the top 100 ports, open ones",
        },
        Example {
            command: "portscan -sn 198.18.0.0/24",
            does: "which hosts of the block are up",
        },
        Example {
            command: "portscan -A -p 22,80 localhost",
            does: "services, and a hint of the system with its evidence",
        },
        Example {
            command: "portscan --baseline scan.json -p- host || mail ...",
            does: "cron: print and say (status 3) what changed",
        },
        Example {
            command: "portscan -p- -oA scan 127.0.0.1",
            does: "also scan.nmap, scan.xml, scan.gnmap, scan.json",
        },
        Example {
            command: "portscan -oX - localhost | xsltproc /usr/share/nmap/nmap.xsl - > scan.html",
            does: "",
        },
    ],
    notes: &[
        "\
On a terminal portscan prints a report, as nmap does: per host its address and latency,
a \"Not shown\" count, and a PORT STATE SERVICE table (REASON with --reason). A pipe or a
file gets records, one port a line; --records and --report choose either anywhere.",
        "\
nmap's -sT, -sS, -sU, -sn, -Pn, -iL, -F, -T, -6, -r, --open, --exclude-ports, --excludefile,
-v/-vv and service names in -p (-p ssh,http, -p U:domain) are portscan's too, and --reason
in the report, -PE (echo alone), and the output files -oN, -oX (with --stylesheet and
--no-stylesheet), -oG and -oA; -oJ is ours (NDJSON), and -oA writes it too. -n is accepted
and changes nothing (no reverse DNS). -sV names the services of open ports; -A is -sV plus
an OS hint per host (the echo reply's TTL, the SYN-ACK's window and options as root, and
banners that name a system, with the evidence and a confidence), without nmap's scripts
and traceroute. Every other option of nmap's (-sA, -PS, -O, --script...) is refused,
with what to use instead.",
        "\
Host discovery: before the port scan of more than one address, portscan finds which hosts
are up, as nmap does, and scans those alone: ICMP echo through an ICMP datagram socket
where net.ipv4.ping_group_range admits the user's group, else through a raw socket when
privileged, and TCP connects to ports 80 and 443 of the hosts silent to it, or of every
host where no ICMP socket may be opened (accepted or refused, the host is up).
-Pn scans every address without it; -sn does it alone and prints a host record per host
that is up (HOST up REASON).",
        "\
TARGET is an address, a CIDR block (198.18.0.0/24), a range (198.18.0.1-20,
198.18.0.0-198.18.1.255), or a host name; - reads targets from stdin, one or more a line.",
        "\
States and reasons are nmap's: open (syn-ack), closed (conn-refused), filtered (no-response,
host-unreach, net-unreach, admin-prohibited); with -sS closed is (reset), as in nmap's SYN
scan; for UDP (-sU, or U: items in -p) open
(udp-response), closed (port-unreach), filtered (the ICMP reasons) and open|filtered
(no-response). A local shortage (descriptors, local ports,
buffers) is never a state: the scan slows down and tries again.",
    ],
    exit_status: &[
        (0, "every target scanned"),
        (
            1,
            "some target could not be (unresolvable, no route, host timeout) or output failed, after scanning the rest; or SIGINT or SIGTERM interrupted the scan",
        ),
        (2, "usage error"),
        (
            3,
            "with --baseline or --expect-open: the scan worked and its result differs (the differences are printed)",
        ),
    ],
};

/// An adaptive, unprivileged TCP connect and UDP scanner for shell pipelines.
#[derive(Debug, Parser)]
#[command(name = "portscan", version, about, after_long_help = MANUAL.help_text(), max_term_width = 100)]
pub struct Cli {
    /// Hosts to scan: addresses, CIDR blocks, ranges, names; - reads them from stdin.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read targets from FILE (- is stdin), one or more a line, # starts a comment; may be
    /// repeated. Also spelled -iL.
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_lists: Vec<String>,

    /// Leave out these targets (comma-separated, any TARGET form); may be repeated.
    #[arg(long, value_name = "TARGETS", value_parser = parse_targets)]
    pub exclude: Vec<Vec<TargetSpec>>,

    /// Scan more than a /8 of public addresses (0.0.0.0/0...) with no exclusion list:
    /// without this, such a scan is refused, since it is most often a mistyped prefix.
    #[arg(long)]
    pub i_mean_it: bool,

    /// Leave out the targets listed in FILE ('-' for stdin), as with -iL; may be repeated.
    #[arg(
        long = "excludefile",
        visible_alias = "exclude-file",
        value_name = "FILE"
    )]
    pub exclude_files: Vec<String>,

    /// Scan IPv6 addresses only, as nmap's -6: names resolve to their IPv6 addresses, and
    /// an IPv4 target is a usage error.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Scan every address a name resolves to, not only the first.
    #[arg(long, visible_alias = "resolve-all")]
    pub all_addresses: bool,

    /// Ports to scan: 22, 1-1024, 22,80,443, - (all 65535; -p- works too); T:22,U:53
    /// selects per protocol; service names stand for their ports (ssh,http, U:domain).
    // A list may start with a dash (`-p -1024`, ports 1 to 1024, as nmap takes it).
    #[arg(
        short,
        long,
        value_name = "LIST",
        value_parser = parse_ports,
        conflicts_with = "top_ports",
        allow_hyphen_values = true
    )]
    pub ports: Option<Ports>,

    /// Leave out these ports, in -p's language; T: and U: items only from their protocol.
    #[arg(
        long,
        value_name = "LIST",
        value_parser = parse_excluded_ports,
        allow_hyphen_values = true
    )]
    pub exclude_ports: Option<Ports>,

    /// Scan TCP ports with connect(), the default. Also spelled -sT.
    #[arg(long)]
    pub tcp: bool,

    /// Scan UDP ports; with --tcp, both. Also spelled -sU.
    #[arg(long)]
    pub udp: bool,

    /// Scan TCP ports with SYNs from a raw socket, nmap's SYN scan: needs CAP_NET_RAW
    /// (root). With -sV or -A, the open ports are probed as the SYNs find them; with -sU,
    /// the UDP ports are scanned after the SYN scan, as nmap does. Not with -sT (one TCP
    /// scan at a time), nor --from. Also spelled -sS.
    #[arg(long, conflicts_with_all = ["tcp", "from"])]
    pub syn: bool,

    /// Scan the N most common ports [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub top_ports: Option<u16>,

    /// Fast: the 100 most common ports, as nmap's -F (--top-ports 100).
    #[arg(short = 'F', long, conflicts_with_all = ["ports", "top_ports"])]
    pub fast: bool,

    /// Skip host discovery: scan every address, up or not. Also spelled -Pn.
    #[arg(long)]
    pub no_ping: bool,

    /// Host discovery only: a record per host that is up (with --all, per host that is
    /// down too), and no port scan. Also spelled -sn.
    #[arg(long, conflicts_with_all = [
        "no_ping", "ports", "top_ports", "fast", "tcp", "udp", "syn", "exclude_ports", "show",
        "open",
    ])]
    pub ping_only: bool,

    /// Host discovery by ICMP echo alone, as nmap's -PE: the hosts silent to it are
    /// down, without the TCP connects to ports 80 and 443 they get otherwise. Also
    /// spelled -PE.
    #[arg(long)]
    pub ping_echo: bool,

    /// Accepted for nmap's -n, and what portscan always does: no reverse DNS lookups.
    #[arg(short = 'n')]
    pub no_dns: bool,

    /// Timing template, 0 (paranoid) to 5 (insane), as nmap's -T; its names work too
    /// (-T aggressive) [default: 3].
    #[arg(short = 'T', long, value_name = "0-5", value_parser = parse_timing)]
    pub timing: Option<u8>,

    /// Send at most N probes a second.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub max_rate: Option<f64>,

    /// Send at least N probes a second, past the congestion windows.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub min_rate: Option<f64>,

    /// Retransmissions of an unanswered probe, at most.
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u8>,

    /// The longest wait for an answer to one probe (500ms, 2s); also the first wait.
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// The least time between two probes to one host (1s, 500ms), for hosts that punish
    /// bursts; -T0 to -T2 set one too.
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub scan_delay: Option<Duration>,

    /// Give up on a host after TIME (30s, 15m); exit status 1.
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub host_timeout: Option<Duration>,

    /// Seed of the probe order; the same seed gives the same order [default: random, or
    /// with --shard one derived from the scan].
    #[arg(long, value_name = "N", conflicts_with = "sequential")]
    pub seed: Option<u64>,

    /// Probe hosts and ports in order rather than shuffled. Also spelled -r.
    #[arg(long)]
    pub sequential: bool,

    /// Scan only the K-th of N disjoint parts of the probe order. Every part derives the
    /// same order from the targets, ports and N; a --seed, if given, must be every part's.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,

    /// Show ports in these states, comma-separated [default: open]. Quote open|filtered
    /// for the shell; nmap's --open is --show 'open,open|filtered'.
    #[arg(
        long,
        value_name = "STATES",
        value_delimiter = ',',
        conflicts_with = "all"
    )]
    pub show: Vec<ShowState>,

    /// Show every port, whatever its state.
    #[arg(long)]
    pub all: bool,

    /// Show open ports and those that may be open, as nmap's --open: --show
    /// 'open,open|filtered'.
    #[arg(long, conflicts_with_all = ["show", "all"])]
    pub open: bool,

    /// Probe each open port (TCP; with -sU, UDP open or open|filtered) for the service
    /// behind it, its software and version, as nmap's -sV, while the scan goes on: the
    /// fields service, product, version, extra_info, cpe, banner, method and confidence.
    /// Also spelled -sV.
    #[arg(long)]
    pub service_version: bool,

    /// -sV, plus a hint of each host's operating system told from what it shows: the TTL
    /// of its ICMP echo reply, the window and options of a SYN-ACK (where a raw socket may
    /// be opened: root or CAP_NET_RAW), and banners that name a system; with the evidence
    /// and a confidence, or "unknown" where the evidence is thin. Also spelled -A; unlike
    /// nmap's -A it runs no scripts and no traceroute, and sends no crafted probes as -O.
    #[arg(long, conflicts_with = "from")]
    pub os_hint: bool,

    /// With -sV: probes rarer than N (1-9, nmap's rarity) are sent only to the ports they
    /// name, as nmap's --version-intensity.
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub version_intensity: u8,

    /// With -sV: probe the open ports (TCP; UDP open or open|filtered) of an earlier scan's
    /// NDJSON records (--json) in FILE (- is stdin) instead of scanning: a fast wide scan
    /// feeds a slow deep one.
    #[arg(long, value_name = "FILE", requires = "service_version", conflicts_with_all = ["targets", "input_lists"])]
    pub from: Option<String>,

    /// With -sV: whose probes and rules: portscan's own, compiled in, or nmap's
    /// (/usr/share/nmap/nmap-service-probes, read at run time where nmap is installed).
    #[arg(long, value_name = "DB", value_enum, default_value_t = ProbeDbChoice::Builtin)]
    pub probe_db: ProbeDbChoice,

    /// With -sV: probe the printer ports, TCP 9100-9107, too, which are left alone
    /// otherwise since printers print whatever they receive (nmap's --allports).
    #[arg(long)]
    pub allports: bool,

    /// Add a REASON column to the report, as nmap's --reason; every record carries its
    /// reason already.
    #[arg(long)]
    pub reason: bool,

    /// Print results in (host, proto, port) order at the end, rather than as they come.
    #[arg(long)]
    pub sort: bool,

    /// Compare with an earlier run's --json output in FILE and print only what changed:
    /// records marked added, removed or changed (with the old values); exit status 3 when
    /// something did. Ports are matched by address, protocol and number.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["report", "from"])]
    pub baseline: Option<std::path::PathBuf>,

    /// With --baseline: then rewrite FILE with this run's records (atomically, after a header
    /// record that counts them); a missing FILE is then an empty baseline. If a host failed,
    /// FILE is kept.
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,

    /// The ports that must be open on every host scanned (-p's syntax): other open ports
    /// are printed as added, listed ones not open as changed (or removed if not scanned),
    /// and the exit status is 3 unless none is.
    #[arg(long, value_name = "LIST", value_parser = parse_ports, conflicts_with_all = ["baseline", "report", "from"])]
    pub expect_open: Option<Ports>,

    /// Print the report a person reads (nmap's normal output: a block per host, a port
    /// table) even where stdout is not a terminal. It is the default on a terminal.
    #[arg(long, conflicts_with_all = ["records", "json", "csv", "header"])]
    pub report: bool,

    /// Print records even where stdout is a terminal, as into a pipe or a file.
    #[arg(long)]
    pub records: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Write the report a person reads (as --report prints it) to FILE too; - is stdout,
    /// which then gets nothing else. Also spelled -oN.
    #[arg(long, value_name = "FILE")]
    pub output_normal: Option<String>,

    /// Write nmap's XML to FILE too (for ndiff, Metasploit's db_import, nmap.xsl); - is
    /// stdout, which then gets nothing else. Also spelled -oX.
    #[arg(long, value_name = "FILE")]
    pub output_xml: Option<String>,

    /// Write nmap's grepable format (a Host line per host) to FILE too; - is stdout, which
    /// then gets nothing else. Also spelled -oG.
    #[arg(long, value_name = "FILE")]
    pub output_grepable: Option<String>,

    /// Write the records as NDJSON (as --json prints them) to FILE too; - is stdout, which
    /// then gets nothing else. Also spelled -oJ.
    #[arg(long, value_name = "FILE")]
    pub output_json: Option<String>,

    /// Write BASE.nmap, BASE.xml, BASE.gnmap and BASE.json (-oN, -oX, -oG, -oJ) at once.
    /// Also spelled -oA.
    #[arg(long, value_name = "BASE", conflicts_with_all = [
        "output_normal", "output_xml", "output_grepable", "output_json",
    ])]
    pub output_all: Option<String>,

    /// The XSL stylesheet the XML file names, for browsers [default:
    /// /usr/share/nmap/nmap.xsl, as nmap's].
    #[arg(long, value_name = "PATH", conflicts_with = "no_stylesheet")]
    pub stylesheet: Option<String>,

    /// Name no stylesheet in the XML file.
    #[arg(long)]
    pub no_stylesheet: bool,

    /// Print the summary line on stderr even when it is not a terminal; -vv also says who
    /// the run goes on as once its privileged sockets are open ("nobody").
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The command line as given, which the output files record as nmap's do.
    #[arg(skip)]
    pub command_line: Vec<String>,
}

/// Where -sV's probes and rules come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeDbChoice {
    /// portscan's own file, compiled in.
    Builtin,
    /// nmap's nmap-service-probes.
    Nmap,
}

/// A state `--show` can select, spelled as records spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowState {
    Open,
    Closed,
    Filtered,
    #[value(name = "open|filtered")]
    OpenFiltered,
}

impl ShowState {
    pub fn state(self) -> PortState {
        match self {
            Self::Open => PortState::Open,
            Self::Closed => PortState::Closed,
            Self::Filtered => PortState::Filtered,
            Self::OpenFiltered => PortState::OpenFiltered,
        }
    }
}

impl Cli {
    /// Parses the process arguments, accepting nmap's `-iL FILE` spelling and refusing
    /// nmap's options portscan lacks with a word on what to do instead.
    pub fn parse_args() -> Result<Self, clap::Error> {
        let args: Vec<OsString> = std::env::args_os().collect();
        if let Some(message) = unsupported_nmap_option(&args) {
            return Err(Self::command().error(clap::error::ErrorKind::UnknownArgument, message));
        }
        let command_line = args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let mut cli = Self::try_parse_from(nmap_spellings(args))?;
        cli.command_line = command_line;
        Ok(cli)
    }
}

/// nmap options portscan does not have, each with what to say: matched exactly, or as a
/// prefix where nmap glues the value on (`-oXfile`, `-PS22`).
const UNSUPPORTED: &[(&str, bool, &str)] = &[
    ("-sL", false, "-sL (list scan) is not supported"),
    (
        "-sA",
        false,
        "-sA (ACK scan) is not supported; -sT is the connect scan",
    ),
    (
        "-sW",
        false,
        "-sW (window scan) is not supported; -sT is the connect scan",
    ),
    (
        "-sM",
        false,
        "-sM (Maimon scan) is not supported; -sT is the connect scan",
    ),
    (
        "-sN",
        false,
        "-sN (null scan) is not supported; -sT is the connect scan",
    ),
    (
        "-sF",
        false,
        "-sF (FIN scan) is not supported; -sT is the connect scan",
    ),
    (
        "-sX",
        false,
        "-sX (Xmas scan) is not supported; -sT is the connect scan",
    ),
    (
        "-sY",
        false,
        "-sY (SCTP scan) is not supported; -sT and -sU are TCP and UDP",
    ),
    (
        "-sZ",
        false,
        "-sZ (SCTP scan) is not supported; -sT and -sU are TCP and UDP",
    ),
    ("-sO", false, "-sO (IP protocol scan) is not supported"),
    (
        "-sI",
        false,
        "-sI (idle scan) is not supported; -sT is the connect scan",
    ),
    ("-sC", false, "-sC (scripts) is not supported"),
    ("--script", true, "--script is not supported"),
    (
        "-O",
        false,
        "-O (OS detection) is not supported; -A gives an OS hint from the echo reply's TTL, the SYN-ACK and the banners",
    ),
    ("-oS", true, "-oS is not supported"),
    (
        "-PS",
        true,
        "-PS (TCP SYN ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PA",
        true,
        "-PA (TCP ACK ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PU",
        true,
        "-PU (UDP ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PP",
        false,
        "-PP (ICMP timestamp ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PM",
        false,
        "-PM (ICMP netmask ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PY",
        true,
        "-PY (SCTP ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PO",
        true,
        "-PO (IP protocol ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-PR",
        false,
        "-PR (ARP ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
    ),
    (
        "-R",
        false,
        "-R (reverse DNS) is not supported; portscan does no reverse DNS lookups, as -n says",
    ),
    ("--traceroute", false, "--traceroute is not supported"),
];

/// The message for the first nmap option in `args` that portscan does not have, before
/// any `--`.
pub fn unsupported_nmap_option(args: &[OsString]) -> Option<String> {
    let args = args
        .iter()
        .skip(1)
        .map_while(|arg| arg.to_str().filter(|arg| *arg != "--"));
    for arg in args {
        for (flag, glued, message) in UNSUPPORTED {
            let glued = *glued
                && arg.starts_with(flag)
                && arg[flag.len()..].starts_with(|c: char| c != '-');
            if arg == *flag || glued {
                return Some((*message).to_owned());
            }
        }
        if let Some(message) = nmap_only::message(arg) {
            return Some(message);
        }
    }
    None
}

/// `-iL`, `-sT`, `-sS`, `-sU`, `-sn`, `-Pn`, `-PE`, `-sV` and `-A` are nmap's spellings, which clap
/// cannot declare (two letters after one dash, or a short option nmap gives no long one);
/// they become `--input-list`, `--tcp`, `--syn`, `--udp`, `--ping-only`, `--no-ping`, `--ping-echo`,
/// `--service-version` and `--os-hint`.
pub fn nmap_spellings(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut options_done = false;
    for arg in args {
        if arg == "--" {
            options_done = true;
        }
        if options_done {
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("-iL") => out.push("--input-list".into()),
            Some("-sT") => out.push("--tcp".into()),
            Some("-sU") => out.push("--udp".into()),
            Some("-sS") => out.push("--syn".into()),
            // nmap's -r: ports in order, as --sequential does.
            Some("-r") => out.push("--sequential".into()),
            // -PN and -P0 are nmap's older spellings of -Pn.
            Some("-Pn" | "-PN" | "-P0") => out.push("--no-ping".into()),
            // -sP is nmap's older spelling of -sn.
            Some("-sn" | "-sP") => out.push("--ping-only".into()),
            Some("-PE") => out.push("--ping-echo".into()),
            Some("-sV") => out.push("--service-version".into()),
            Some("-A") => out.push("--os-hint".into()),
            Some(text) if text.starts_with("-iL") && text.len() > 3 => {
                out.push(format!("--input-list={}", &text[3..]).into());
            }
            Some(text) => match output_file_flag(text) {
                Some((long, "")) => out.push(long.into()),
                Some((long, file)) => out.push(format!("{long}={file}").into()),
                None => out.push(arg),
            },
            None => out.push(arg),
        }
    }
    out
}

/// nmap's output-file flags, `-oX FILE` or `-oXFILE`, as portscan's long options: the long
/// option and the file glued on, if any.
fn output_file_flag(arg: &str) -> Option<(&'static str, &str)> {
    const FLAGS: [(&str, &str); 5] = [
        ("-oN", "--output-normal"),
        ("-oX", "--output-xml"),
        ("-oG", "--output-grepable"),
        ("-oJ", "--output-json"),
        ("-oA", "--output-all"),
    ];
    FLAGS
        .iter()
        .find_map(|(short, long)| Some((*long, arg.strip_prefix(short)?)))
}

fn parse_targets(text: &str) -> Result<Vec<TargetSpec>, String> {
    crate::targets::parse_list(text)
}

/// A `-p` list, read twice: items before any `T:` or `U:` prefix are the ports of every
/// protocol scanned (`-sT -sU -p 53` scans 53/tcp and 53/udp, as in nmap), and which
/// protocols those are is known only once every option is read.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Unprefixed items as TCP ports.
    pub tcp: PortList,
    /// Unprefixed items as UDP ports.
    pub udp: PortList,
}

/// A port list with a port portscan can scan: the prober of a real scan decides which.
/// Items may be service names (`ssh`, `U:domain`), as in nmap: the service data is read
/// only when the list names a service.
fn parse_ports(text: &str) -> Result<Ports, String> {
    let ports = read_ports(text)?;
    crate::engine::scannable::<ScanProber>(&ports.tcp)?;
    Ok(ports)
}

/// A list read as TCP and as UDP, names and all.
fn read_ports(text: &str) -> Result<Ports, String> {
    let db = std::cell::OnceCell::new();
    let named = |name: &str, proto| {
        let db = db.get_or_init(|| ServiceDb::load(&services::Options::default()));
        db.as_ref().ok()?.ports_named(name, proto)
    };
    let read = |proto| {
        PortList::parse_with_names(text, proto, &named).map_err(|why| match db.get() {
            // The name is unknown because the data could not be read: say that instead.
            Some(Err(e)) => e.to_string(),
            _ => why,
        })
    };
    Ok(Ports {
        tcp: read(Proto::Tcp)?,
        udp: read(Proto::Udp)?,
    })
}

/// An `--exclude-ports` list: any port list, scannable or not.
fn parse_excluded_ports(text: &str) -> Result<Ports, String> {
    read_ports(text)
}

/// nmap's timing templates by name, in order: -T aggressive is -T4.
const TIMING_NAMES: [&str; 6] = [
    "paranoid",
    "sneaky",
    "polite",
    "normal",
    "aggressive",
    "insane",
];

/// A template's number, 0 to 5, or its name in any case.
fn parse_timing(text: &str) -> Result<u8, String> {
    if let Some(number) = TIMING_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(u8::try_from(number).expect("six names"));
    }
    match text.parse::<u8>() {
        Ok(number) if number <= 5 => Ok(number),
        Ok(_) => Err(format!("{text} is not in 0..=5")),
        Err(_) if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() => {
            Err(format!("{text} is not in 0..=5"))
        }
        Err(_) => Err(format!(
            "'{text}' is not a timing template (0-5, or {})",
            TIMING_NAMES.join(", ")
        )),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "'{text}' is not a positive number of probes a second"
        )),
    }
}

/// The clap definition, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("2"), Ok(ms(2000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        for bad in ["", "s", "0", "-1s", "2x", "1e3", "ms", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nmap_input_list_spelling() {
        let args = ["portscan", "-iL", "f", "-iLg", "--", "-iL"].map(OsString::from);
        assert_eq!(
            nmap_spellings(args),
            [
                "portscan",
                "--input-list",
                "f",
                "--input-list=g",
                "--",
                "-iL"
            ]
            .map(OsString::from)
        );
        let args = ["portscan", "-sU", "-sT", "--", "-sU"].map(OsString::from);
        assert_eq!(
            nmap_spellings(args),
            ["portscan", "--udp", "--tcp", "--", "-sU"].map(OsString::from)
        );
    }

    #[test]
    fn timing_templates_by_number_and_name() {
        for (text, expected) in [
            ("0", 0),
            ("5", 5),
            ("insane", 5),
            ("Aggressive", 4),
            ("paranoid", 0),
        ] {
            assert_eq!(parse_timing(text), Ok(expected), "{text}");
        }
        assert_eq!(parse_timing("9"), Err("9 is not in 0..=5".into()));
        assert_eq!(parse_timing("300"), Err("300 is not in 0..=5".into()));
        assert!(
            parse_timing("fast")
                .unwrap_err()
                .starts_with("'fast' is not a timing template")
        );
        assert!(parse_timing("").is_err());
        let cli = Cli::parse_from(["portscan", "-Tpolite", "::1"]);
        assert_eq!(cli.timing, Some(2));
    }

    #[test]
    fn nmap_host_discovery_spelling() {
        let args = ["portscan", "-Pn", "-PN", "-P0", "--", "-Pn"].map(OsString::from);
        assert_eq!(
            nmap_spellings(args),
            [
                "portscan",
                "--no-ping",
                "--no-ping",
                "--no-ping",
                "--",
                "-Pn"
            ]
            .map(OsString::from)
        );
        let args = ["portscan", "-sn", "-sP", "-PE", "--", "-sn"].map(OsString::from);
        assert_eq!(
            nmap_spellings(args),
            [
                "portscan",
                "--ping-only",
                "--ping-only",
                "--ping-echo",
                "--",
                "-sn"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn discovery_only_scans_no_port() {
        let parse = |args: &[&str]| {
            let args = ["portscan"].iter().chain(args).chain(&["::1"]);
            Cli::try_parse_from(nmap_spellings(args.map(OsString::from)))
        };
        assert!(parse(&["-sn", "--all", "--sort", "--json", "-T4"]).is_ok());
        for other in [
            &["-Pn"][..],
            &["-p", "22"],
            &["--top-ports", "5"],
            &["-F"],
            &["-sU"],
            &["-sT"],
            &["--open"],
            &["--show", "open"],
        ] {
            let args: Vec<&str> = ["-sn"].iter().chain(other).copied().collect();
            let error = parse(&args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{other:?}"
            );
        }
    }

    #[test]
    fn unsupported_nmap_options_are_named() {
        let check = |args: &[&str]| {
            let args: Vec<OsString> = ["portscan"]
                .iter()
                .chain(args)
                .map(OsString::from)
                .collect();
            unsupported_nmap_option(&args)
        };
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["-sS", "::1"], None),
            (
                &["-sA", "::1"],
                Some("-sA (ACK scan) is not supported; -sT is the connect scan"),
            ),
            (&["::1", "-sn", "-sP", "-PE"], None),
            (&["-oX", "f", "::1"], None),
            (&["-oS", "f", "::1"], Some("-oS is not supported")),
            (
                &["-PS22", "::1"],
                Some(
                    "-PS (TCP SYN ping) is not supported: host discovery sends ICMP echo requests, \
                     then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
                ),
            ),
            (&["-PO2", "::1"], Some("-PO (IP protocol ping)")),
            (&["-P0", "::1"], None),
            (
                &["--script=banner", "::1"],
                Some("--script is not supported"),
            ),
            (&["-A", "::1"], None),
            (
                &["-O", "::1"],
                Some("-O (OS detection) is not supported; -A gives an OS hint"),
            ),
            (
                &["-sT", "-sU", "-Pn", "-n", "-F", "-vv", "--open", "::1"],
                None,
            ),
            (&["--", "-sS"], None),
        ];
        for (args, expected) in cases {
            let found = check(args);
            match expected {
                Some(start) => assert!(
                    found
                        .as_deref()
                        .is_some_and(|found| found.starts_with(start)),
                    "{args:?}: {found:?}"
                ),
                None => assert_eq!(found, None, "{args:?}"),
            }
        }
    }

    #[test]
    fn show_takes_every_state_as_records_spell_it() {
        let cli = Cli::parse_from(["portscan", "--show", "open,open|filtered", "::1"]);
        let shown: Vec<PortState> = cli.show.iter().map(|show| show.state()).collect();
        assert_eq!(shown, [PortState::Open, PortState::OpenFiltered]);
        for state in PortState::ALL {
            let show = ShowState::from_str(state.as_str(), false).unwrap();
            assert_eq!(show.state(), state);
        }
    }

    #[test]
    fn nmap_output_file_spellings() {
        let args = [
            "portscan", "-oX", "a.xml", "-oGb", "-oN", "-", "-oJc", "-oA", "d",
        ];
        assert_eq!(
            nmap_spellings(args.map(OsString::from)),
            [
                "portscan",
                "--output-xml",
                "a.xml",
                "--output-grepable=b",
                "--output-normal",
                "-",
                "--output-json=c",
                "--output-all",
                "d"
            ]
            .map(OsString::from)
        );
        let cli = Cli::parse_from(nmap_spellings(
            ["portscan", "-oX", "-", "-oNn", "::1"].map(OsString::from),
        ));
        assert_eq!(cli.output_xml.as_deref(), Some("-"));
        assert_eq!(cli.output_normal.as_deref(), Some("n"));
        let both = ["portscan", "-oA", "x", "-oX", "y", "::1"].map(OsString::from);
        assert!(Cli::try_parse_from(nmap_spellings(both)).is_err());
    }

    #[test]
    fn nmap_short_options_parse() {
        let cli = Cli::parse_from(nmap_spellings(
            ["portscan", "-p-", "-T4", "-iL", "-", "::1"].map(OsString::from),
        ));
        assert_eq!(cli.ports.unwrap().tcp.len(), 65535);
        assert_eq!(cli.timing, Some(4));
        assert_eq!(cli.input_lists, ["-"]);
        assert_eq!(cli.targets, ["::1"]);
    }
}
