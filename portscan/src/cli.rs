//! portscan's command line, shared by the binary, the man page and the completions.

use std::ffi::OsString;
use std::time::Duration;

use crate::target_spec::TargetSpec;
use clap::{CommandFactory, Parser, ValueEnum};
use common::contract::output::OutputArgs;
use common::contract::record::PortState;
use common::services::ports::{PortList, Proto};

use crate::order::Shard;
use crate::probe::ScanProber;

const AFTER_HELP: &str = "\
Examples:
  portscan localhost                     the 1000 most common ports; open ones only
  portscan -p- --all 127.0.0.1           every port, every state
  portscan -p 22,80,443 198.18.0.0/24 --json | jq -r 'select(.state==\"open\") | .host'
  portscan localhost | svcname           name the services behind open ports
  portscan -iL hosts.txt --sort > today  diff-able from run to run
  portscan --shard 2/3 --seed 7 ...      the second third of a scan split over three machines
  portscan -sU --top-ports 20 localhost  the 20 most common UDP ports
  portscan -sT -sU -p 53 198.18.0.1      53/tcp and 53/udp

TARGET is an address, a CIDR block (198.18.0.0/24), a range (198.18.0.1-20,
198.18.0.0-198.18.1.255), or a host name; - reads targets from stdin, one or more a line.

States and reasons are nmap's: open (syn-ack), closed (conn-refused), filtered (no-response,
host-unreach, net-unreach, admin-prohibited); for UDP (-sU, or U: items in -p) open
(udp-response), closed (port-unreach), filtered (the ICMP reasons) and open|filtered
(no-response). A local shortage (descriptors, local ports,
buffers) is never a state: the scan slows down and tries again.

Exit status: 0 every target scanned; 1 some target could not be (unresolvable, no route,
host timeout) or output failed, after scanning the rest; 2 usage error.";

/// An adaptive, unprivileged TCP connect and UDP scanner for shell pipelines.
#[derive(Debug, Parser)]
#[command(name = "portscan", version, about, after_long_help = AFTER_HELP, max_term_width = 100)]
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

    /// Scan every address a name resolves to, not only the first.
    #[arg(long)]
    pub all_addresses: bool,

    /// Ports to scan: 22, 1-1024, 22,80,443, - (all 65535; -p- works too); T:22,U:53
    /// selects per protocol.
    #[arg(short, long, value_name = "LIST", value_parser = parse_ports, conflicts_with = "top_ports")]
    pub ports: Option<Ports>,

    /// Scan TCP ports with connect(), the default. Also spelled -sT.
    #[arg(long)]
    pub tcp: bool,

    /// Scan UDP ports; with --tcp, both. Also spelled -sU.
    #[arg(long)]
    pub udp: bool,

    /// Scan the N most common ports [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub top_ports: Option<u16>,

    /// Timing template, 0 (paranoid) to 5 (insane), as nmap's -T [default: 3].
    #[arg(short = 'T', long, value_name = "0-5", value_parser = clap::value_parser!(u8).range(0..=5))]
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

    /// Give up on a host after TIME (30s, 15m); exit status 1.
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub host_timeout: Option<Duration>,

    /// Seed of the probe order; the same seed gives the same order [default: random].
    #[arg(long, value_name = "N", conflicts_with = "sequential")]
    pub seed: Option<u64>,

    /// Probe hosts and ports in order rather than shuffled.
    #[arg(long)]
    pub sequential: bool,

    /// Scan only the K-th of N disjoint parts of the probe order (give every part the
    /// same --seed).
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

    /// Print results in (host, proto, port) order at the end, rather than as they come.
    #[arg(long)]
    pub sort: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Print the summary line on stderr even when it is not a terminal.
    #[arg(short, long)]
    pub verbose: bool,
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
    /// Parses the process arguments, accepting nmap's `-iL FILE` spelling.
    pub fn parse_args() -> Result<Self, clap::Error> {
        Self::try_parse_from(nmap_spellings(std::env::args_os()))
    }
}

/// `-iL`, `-sT` and `-sU` are two letters after one dash, which clap cannot declare; they
/// become `--input-list`, `--tcp` and `--udp`.
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
            Some(text) if text.starts_with("-iL") && text.len() > 3 => {
                out.push(format!("--input-list={}", &text[3..]).into());
            }
            _ => out.push(arg),
        }
    }
    out
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
fn parse_ports(text: &str) -> Result<Ports, String> {
    let tcp = PortList::parse(text, Proto::Tcp)?;
    crate::engine::scannable::<ScanProber>(&tcp)?;
    let udp = PortList::parse(text, Proto::Udp)?;
    Ok(Ports { tcp, udp })
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "'{text}' is not a positive number of probes a second"
        )),
    }
}

/// `250ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is seconds, as in nmap.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a time (such as 500ms, 2s, 5m, 1h)");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
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
