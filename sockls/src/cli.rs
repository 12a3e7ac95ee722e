//! sockls's command line, shared by the binary, the man page and the completions.

use clap::{CommandFactory, Parser, ValueEnum};
use common::contract::input::parse_duration;
use common::contract::manual::{Example, Manual};
use common::contract::output::OutputArgs;

/// What --help says after the options; the man page's EXAMPLES, DESCRIPTION notes and
/// EXIT STATUS.
pub const MANUAL: Manual = Manual {
    examples: &[
        Example {
            command: "sockls",
            does: "connected TCP, UDP, raw and UNIX sockets",
        },
        Example {
            command: "sockls -tlp --baseline listeners.json",
            does: "what listens now that did not (status 3 if anything changed)",
        },
        Example {
            command: "sockls -tl --watch 2s",
            does: "each listener as it appears and goes away",
        },
        Example {
            command: "sockls -tlp",
            does: "listening TCP sockets and the processes holding them",
        },
        Example {
            command: "sockls -tan --port 22,443",
            does: "every TCP socket on either end of port 22 or 443",
        },
        Example {
            command: "sockls -tn 'dport = :443 or sport = :22'",
            does: "TCP connections to port 443 or from port 22",
        },
        Example {
            command: "sockls -tn state established dst 10.0.0.0/8",
            does: "established TCP connections with a peer in 10.0.0.0/8",
        },
        Example {
            command: "sockls -l | svcname",
            does: "listening sockets with their service names",
        },
        Example {
            command: "sockls -ti --json | jq -r 'select(.rtt_ms > 10) | .remote_address'",
            does: "",
        },
        Example {
            command: "sockls -tim",
            does: "connections, each followed by a tab-indented line of internals and memory",
        },
        Example {
            command: "sockls -tao",
            does: "every TCP socket with its timer (keepalive,119min,0), as ss -tao",
        },
        Example {
            command: "sockls -s",
            does: "ss's summary: sockets in use, TCP by state, per protocol and family",
        },
        Example {
            command: "sockls -H -tl | wc -l",
            does: "how many TCP listeners (no header, even on a terminal)",
        },
    ],
    notes: &[
        "\
FILTER is ss's: 'state NAME' and 'exclude NAME' words first (established, syn-sent,
syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening,
closing, and the groups all, connected, synchronized, bucket, big), then an expression:
src ADDR, dst ADDR (10.0.0.0/8, 127/8, 127.0.0.1:22, [::1], [2001:db8::/32]:443, *:22, :22);
sport OP PORT, dport OP PORT with OP = == eq != ne < lt > gt <= le >= ge (PORT :22, 22, :ssh);
and && or || not ! ( ), 'and' and 'or' grouping from the left. The kernel runs it, as it
runs ss's; see docs/FORMAT.md.",
        "\
--state takes the FILTER's state names and groups, comma-separated, meaning what they mean
there ('connected': all but listening and closed). With no -a, -l, --state or state words:
connected sockets but time-wait and syn-recv, as ss shows by default.",
        "\
With -p, a socket held by several processes gives one record per process (as lsof does);
'owner' says known, none (no process holds it), denied (some fd tables were unreadable) or
gone (the process ended while being read).",
        "\
The sockets come from the kernel over NETLINK_SOCK_DIAG, as ss gets them; where netlink is
unavailable, from /proc/net (--source proc forces it), which lacks cookies, UNIX peers and
-i/-m data. State and port filters are run by the kernel; port filters select TCP and UDP
sockets only.",
        "\
-i and -m add a second line after a socket's, starting with a tab, as ss -ti does; the
first line is the record as without them. Drop the second lines with grep -vP '^\\t', join
each to its socket's with
  awk '/^\\t/ { printf \" %s\", substr($0, 2); next } NR > 1 { print \"\" } { printf \"%s\", $0 } END { print \"\" }'
or use --json, which keeps one object per socket with the same values as fields.",
    ],
    exit_status: &[
        (0, "success"),
        (
            1,
            "something could not be listed or read (reported on stderr), or SIGINT or SIGTERM stopped the listing (a --watch ends with 0)",
        ),
        (2, "usage error"),
        (
            3,
            "with --baseline or --expect-listen: the listing differs (the differences are printed)",
        ),
    ],
};

/// Every socket on the host, with its owner: TCP, UDP, raw and UNIX, IPv4 and IPv6.
#[derive(Debug, Parser)]
#[command(name = "sockls", version, about, after_long_help = MANUAL.help_text(), max_term_width = 100)]
pub struct Cli {
    /// TCP sockets.
    #[arg(short, long)]
    pub tcp: bool,

    /// UDP sockets.
    #[arg(short, long)]
    pub udp: bool,

    /// Raw sockets.
    #[arg(short = 'w', long)]
    pub raw: bool,

    /// UNIX sockets (stream, dgram, seqpacket).
    #[arg(short = 'x', long)]
    pub unix: bool,

    /// IPv4 sockets only (with -6: both).
    #[arg(short = '4', long)]
    pub ipv4: bool,

    /// IPv6 sockets only (with -4: both).
    #[arg(short = '6', long)]
    pub ipv6: bool,

    /// Listening sockets only (and unconnected UDP, raw and UNIX ones, as ss -l). With -a,
    /// the last of the two wins, as in ss (-tulanp lists every state).
    #[arg(short, long, conflicts_with = "state", overrides_with = "all")]
    pub listening: bool,

    /// Sockets in every state.
    #[arg(short, long, conflicts_with = "state", overrides_with = "listening")]
    pub all: bool,

    /// Sockets in these states (comma-separated; see below).
    #[arg(long, value_name = "LIST")]
    pub state: Option<String>,

    /// Sockets with a port of LIST on either end (22,80,8000-8100; T:/U: prefixes select a
    /// protocol).
    #[arg(long, value_name = "LIST")]
    pub port: Option<String>,

    /// Sockets whose local port is in LIST.
    #[arg(long, value_name = "LIST")]
    pub sport: Option<String>,

    /// Sockets whose remote port is in LIST.
    #[arg(long, value_name = "LIST")]
    pub dport: Option<String>,

    /// Sockets held by these processes (comma-separated pids); implies -p.
    #[arg(long, value_name = "LIST")]
    pub pid: Option<String>,

    /// Sockets of these users (comma-separated names or uids).
    #[arg(long, value_name = "LIST")]
    pub user: Option<String>,

    /// Show the process holding each socket (pid, fd, comm).
    #[arg(short, long)]
    pub processes: bool,

    /// TCP internals: rtt, rttvar, cwnd, retransmits, delivery rate, congestion control
    /// (in text on a second, tab-indented line after the socket's, as ss -i).
    #[arg(short, long)]
    pub info: bool,

    /// Socket memory (in text as skmem:(...) on the second line, as ss -m).
    #[arg(short, long)]
    pub memory: bool,

    /// Extended: in text, the uid and cookie columns too (ss -e's uid: and sk:), and the
    /// timers, as -o (ss -e shows them too).
    #[arg(short, long)]
    pub extended: bool,

    /// TCP timers: the timer fields, and in text the timer column (ss -o's timer:(...)).
    #[arg(short = 'o', long)]
    pub options: bool,

    /// Print ss's summary instead of the sockets: counts per protocol and family, TCP per
    /// state (from /proc/net/sockstat, sockstat6 and snmp, as ss -s).
    #[arg(short, long, conflicts_with_all = ["netns", "all_netns", "watch", "baseline", "expect_listen", "csv"])]
    pub summary: bool,

    /// No header line, even on a terminal (ss's -H).
    #[arg(short = 'H', long, conflicts_with = "header")]
    pub no_header: bool,

    /// Accepted for ss and netstat habits: sockls never resolves names.
    #[arg(short, long)]
    pub numeric: bool,

    /// List the sockets of another network namespace: a name from `ip netns`, a path to a
    /// namespace file, or pid:N for the namespace of process N (needs root).
    #[arg(long, value_name = "NS", conflicts_with = "all_netns")]
    pub netns: Option<String>,

    /// List the sockets of every network namespace that has a name or a process; each record
    /// names its namespace (needs root).
    #[arg(long)]
    pub all_netns: bool,

    /// Where the sockets are read from.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,

    /// Keep running: list the sockets again every INTERVAL (2s, 500ms; a number is
    /// seconds) and print a record for each that appeared (change: added) or went away
    /// (removed), until interrupted or --count intervals.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration, conflicts_with_all = ["baseline", "expect_listen"])]
    pub watch: Option<std::time::Duration>,

    /// With --watch: stop after N intervals.
    #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Compare with an earlier run's --json output in FILE and print only what changed:
    /// records marked added, removed or changed (with the old values); exit status 3 when
    /// something did. Sockets are matched by local end and owner's command.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<std::path::PathBuf>,

    /// With --baseline: then rewrite FILE with this run's sockets (atomically, after a header
    /// record that counts them); a missing FILE is then an empty baseline.
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,

    /// The ports that must have a listener (TCP, U:53 for UDP; nmap's port list syntax):
    /// listeners on other ports are printed as added, ports without one as removed, and
    /// the exit status is 3 unless none is.
    #[arg(long, value_name = "PORTS", conflicts_with = "baseline")]
    pub expect_listen: Option<String>,

    /// ss's filter: `state NAME` and `exclude NAME` words, then an expression of src, dst,
    /// sport and dport conditions (see below); quoted whole or one word per argument.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,

    // --header matters only when stdout is not a terminal: on one, text has its header.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// Netlink, falling back to /proc/net where it is unavailable.
    Auto,
    /// Netlink only.
    Netlink,
    /// /proc/net only.
    Proc,
}

impl Cli {
    /// Parses the process arguments.
    pub fn parse_args() -> Result<Self, clap::Error> {
        Self::try_parse()
    }
}

/// The clap definition, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}
