//! svcname's command line, shared by the binary, the man page and the completions.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use common::contract::manual::{Example, Manual};
use common::contract::output::OutputArgs;
use common::services::Names;
use common::services::ports::Proto;

/// What --help says after the options; the man page's EXAMPLES, DESCRIPTION notes and
/// EXIT STATUS.
pub const MANUAL: Manual = Manual {
    examples: &[
        Example {
            command: "svcname 22 53/udp ssh",
            does: "look up ports and names",
        },
        Example {
            command: "svcname --risk 21-25",
            does: "what each port is, and why attackers want it",
        },
        Example {
            command: "portscan localhost | svcname",
            does: "name the services behind open ports",
        },
        Example {
            command: "sockls -l --json | svcname | jq -r '.local_service'",
            does: "",
        },
        Example {
            command: "ss -tn | svcname",
            does: "annotate another tool's output",
        },
        Example {
            command: "cut -d' ' -f1 ports.txt | svcname -q --json",
            does: "look up a list of queries",
        },
    ],
    notes: &[
        "\
With no QUERY (or with -), svcname is a filter: it reads lines from stdin (or --input files)
and writes one line for each line read, byte for byte as it came (a CR, trailing blanks, a
last line without a newline), adding only what it knows: NDJSON objects get a \"service\" field
(local_service and remote_service for records with local_port and remote_port; each element
of a \"ports\" array, proctree's, its own); CSV with a header gets a service column (a
\"ports\" column of PROTO ADDRESS:PORT pairs a services column); a text line with a PORT/PROTO token (22/tcp), with ADDRESS:PORT
tokens, or that is only a port number gets the service name appended (before a CR that ends
it); any other line, a lone service name included, passes through unchanged, and so does a
line that names its service already (nmap's report, ss without -n, svcname's own output). Of two
ADDRESS:PORT tokens side by side (a connection's ends), the port that has a name is named, or
the lower if both or neither have one: `127.0.0.1:44744 127.0.0.1:443` gets https. --json, --csv and
--header shape lookups only; a filter keeps each line's own format. With --queries, the input
lines are instead lists of queries, answered as operands are.",
        "\
Data, first match wins: --services files, /etc/services, the IANA registry built in; with
--names nmap, nmap's nmap-services (where installed, for the ports it names) before
/etc/services. nmap's table also gives --frequency.",
    ],
    exit_status: &[
        (0, "success"),
        (1, "a name was not found or an input line could not be read (each reported on stderr with its line number), or SIGINT or SIGTERM stopped the reading of input (after the lines before it)"),
        (2, "usage error"),
    ],
};

/// Port numbers to service names and back, alone or as a filter in a pipeline.
#[derive(Debug, Default, Parser)]
#[command(name = "svcname", version, about, after_long_help = MANUAL.help_text(), max_term_width = 100)]
pub struct Cli {
    /// Ports (22, 53/udp, 20-25, T:80,U:53) or service names (ssh) to look up. With none,
    /// or a lone -, lines are read from stdin and annotated (or looked up, with --queries).
    #[arg(value_name = "QUERY")]
    pub queries: Vec<String>,

    /// Look up the words of stdin's lines (or --input files') as QUERYs, instead of
    /// annotating them: one record per line out, as for operands.
    #[arg(short = 'q', long = "queries")]
    pub read_queries: bool,

    /// Read lines to annotate (or, with --queries, to look up) from FILE instead of stdin
    /// (- is stdin); may be repeated.
    #[arg(short, long = "input", value_name = "FILE")]
    pub inputs: Vec<String>,

    /// The protocol of bare port numbers (default tcp), and the only one name lookups answer.
    #[arg(short, long, value_name = "PROTO", value_parser = parse_proto)]
    pub proto: Option<Proto>,

    /// Short for --proto tcp, as netstat and ss spell it.
    #[arg(short = 't', long, conflicts_with_all = ["proto", "udp"])]
    pub tcp: bool,

    /// Short for --proto udp, as netstat and ss spell it.
    #[arg(short = 'u', long, conflicts_with = "proto")]
    pub udp: bool,

    /// The JSON or CSV field that holds a port; may be repeated [default: port, local_port,
    /// remote_port].
    #[arg(short, long = "field", value_name = "NAME")]
    pub fields: Vec<String>,

    /// Add the registry's description when annotating.
    #[arg(short, long)]
    pub description: bool,

    /// Add the IANA range (well-known, registered, dynamic) when annotating.
    #[arg(short, long)]
    pub range: bool,

    /// Add nmap's open-frequency of the port (needs nmap's data installed).
    #[arg(long)]
    pub frequency: bool,

    /// Add why attackers target the port, for the ports they favour.
    #[arg(long)]
    pub risk: bool,

    /// Read services from FILE (/etc/services format) before all other data; may be repeated.
    #[arg(long = "services", value_name = "FILE")]
    pub services: Vec<String>,

    /// Use only the built-in IANA registry and --services files, for the same answers on
    /// every machine.
    #[arg(long)]
    pub builtin_only: bool,

    /// Whose names ports get after --services files: the system's (/etc/services, then
    /// IANA's), or nmap's where nmap is installed and names the port (8000 is http-alt).
    #[arg(long, value_enum, value_name = "NAMES", default_value_t = NamesArg::System)]
    pub names: NamesArg,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The choices of `--names`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NamesArg {
    /// /etc/services, then IANA's registry: the names getent, ss and netstat show.
    #[default]
    System,
    /// nmap's nmap-services first: the names nmap's reports show.
    Nmap,
}

impl From<NamesArg> for Names {
    fn from(names: NamesArg) -> Self {
        match names {
            NamesArg::System => Self::System,
            NamesArg::Nmap => Self::Nmap,
        }
    }
}

fn parse_proto(text: &str) -> Result<Proto, String> {
    text.parse()
}

impl Cli {
    /// The command line of this process. `svcname 22 ssh`, plain operands only, is the
    /// common single lookup: it is taken as it stands, without building clap's command,
    /// which cost a fifth of such a run (it must be as quick as getent). Anything else, an
    /// option, `-`, `--`, an empty or non-UTF-8 argument, no argument at all, goes through
    /// clap, which also owns --help, --version and every usage error.
    pub fn parse_args() -> Result<Self, clap::Error> {
        plain_operands(std::env::args_os().skip(1)).map_or_else(Self::try_parse, Ok)
    }
}

/// The command line when it holds only plain operands (queries).
fn plain_operands(args: impl Iterator<Item = OsString>) -> Option<Cli> {
    let queries = args
        .map(|arg| {
            arg.into_string()
                .ok()
                .filter(|arg| !arg.is_empty() && !arg.starts_with('-'))
        })
        .collect::<Option<Vec<String>>>()?;
    if queries.is_empty() {
        return None;
    }
    Some(Cli {
        queries,
        ..Cli::default()
    })
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

    /// Plain operands read without clap give what clap gives; the rest is left to clap.
    #[test]
    fn plain_operands_are_read_as_clap_reads_them() {
        let os = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        for args in [
            &["ssh"][..],
            &["22", "53/udp", "T:80,U:53", "20-25", "http/tcp"],
        ] {
            let quick = plain_operands(os(args).into_iter()).expect("plain operands");
            let clap = Cli::try_parse_from(std::iter::once("svcname").chain(args.iter().copied()))
                .unwrap();
            assert_eq!(format!("{quick:?}"), format!("{clap:?}"));
        }
        for args in [
            &[][..],
            &["--help"],
            &["-V"],
            &["ssh", "--json"],
            &["22", "-"],
            &["--", "ssh"],
            &["ssh", ""],
        ] {
            assert!(plain_operands(os(args).into_iter()).is_none(), "{args:?}");
        }
    }
}
