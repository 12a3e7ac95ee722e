//! svcname's command line, shared by the binary, the man page and the completions.

use clap::{CommandFactory, Parser};
use common::ports::Proto;

const AFTER_HELP: &str = "\
Examples:
  svcname 22 53/udp ssh          look up ports and names
  svcname --risk 21-25           what each port is, and why attackers want it
  portscan localhost | svcname   name the services behind open ports
  sockls -l --json | svcname | jq -r '.local_service'
  ss -tuln | svcname             annotate another tool's output

With no QUERY, svcname reads lines from stdin (or --input files) and never loses one:
bare ports and names are answered; NDJSON objects get a \"service\" field (local_service and
remote_service for records with local_port and remote_port); CSV with a header gets a service
column; a text line with a PORT/PROTO token (22/tcp) or an ADDRESS:PORT token gets the service
name appended; any other line passes through unchanged.

Data, first match wins: --services files, /etc/services, the IANA registry built in, nmap's
nmap-services where installed.

Exit status: 0 success; 1 a name was not found or an input line could not be read (each
reported on stderr with its line number); 2 usage error.";

/// Port numbers to service names and back, alone or as a filter in a pipeline.
#[derive(Debug, Parser)]
#[command(name = "svcname", version, about, after_long_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Ports (22, 53/udp, 20-25, T:80,U:53) or service names (ssh) to look up. With none,
    /// lines are read from stdin and annotated.
    #[arg(value_name = "QUERY")]
    pub queries: Vec<String>,

    /// Read lines to annotate from FILE instead of stdin (- is stdin); may be repeated.
    #[arg(short, long = "input", value_name = "FILE")]
    pub inputs: Vec<String>,

    /// The protocol of bare port numbers (default tcp), and the only one name lookups answer.
    #[arg(short, long, value_name = "PROTO", value_parser = parse_proto)]
    pub proto: Option<Proto>,

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

    /// Print looked-up records as NDJSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print looked-up records as CSV with a header.
    #[arg(long)]
    pub csv: bool,

    /// Print a header line before text records.
    #[arg(long)]
    pub header: bool,
}

fn parse_proto(text: &str) -> Result<Proto, String> {
    text.parse()
}

/// The clap definition, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_definition_is_consistent() {
        super::command().debug_assert();
    }
}
