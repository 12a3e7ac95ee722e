//! proctree's command line, shared by the binary, the man page and the completions.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use common::contract::input::{parse_duration, parse_pid};
use common::contract::manual::{Example, Manual};
use common::contract::output::OutputArgs;

/// What --help says after the options; the man page's EXAMPLES, DESCRIPTION notes and
/// EXIT STATUS.
pub const MANUAL: Manual = Manual {
    examples: &[
        Example {
            command: "proctree",
            does: "the whole tree, like pstree -p and ps -ejH",
        },
        Example {
            command: "proctree --watch 1s --user www-data",
            does: "each process of a user as it starts and ends",
        },
        Example {
            command: "proctree -p 1",
            does: "init's tree, as pstree -p 1 draws it (pids are always shown)",
        },
        Example {
            command: "proctree -a --pid 1234 -s",
            does: "1234's subtree with command lines, and the chain above it",
        },
        Example {
            command: "proctree --name 'ssh*'",
            does: "ssh processes with their ancestors and descendants",
        },
        Example {
            command: "proctree --user www-data --flat",
            does: "the flat list, like ps -elf, of one user's processes",
        },
        Example {
            command: "proctree -o pid,user,%cpu,%mem,rss,etime,args --sort -%mem",
            does: "what is eating this machine's memory, as ps -eo ... --sort -%mem",
        },
        Example {
            command: "proctree -o pid,%cpu,args --sort -%cpu --interval 1s",
            does: "the processes using CPU now, measured over a second as top does",
        },
        Example {
            command: "proctree --json -o pid,rss_kib,args --sort -rss",
            does: "records of the largest processes, with only those fields",
        },
        Example {
            command: "proctree --ports --name nginx",
            does: "which nginx process listens where",
        },
        Example {
            command: "proctree --json | jq -r 'select(.ppid == 1) | .pid'",
            does: "the pids of init's children",
        },
        Example {
            command: "proctree --csv > processes.csv",
            does: "every process, for a spreadsheet",
        },
    ],
    notes: &[
        "\
A process is identified by (pid, start_time): start_time is in clock ticks since boot.
JSON and CSV records carry ppid and depth, so the tree can be rebuilt from them. Names and
arguments that are not valid UTF-8 are kept: in JSON as {\"base64\": ..., \"lossy\": ...}, in
text and CSV escaped (\\n, \\\\, \\xHH). A field that may not be read (the executable of
another user's process) is null in JSON and ? in text.",
        "\
--ports ends each line with the TCP ports in LISTEN and the bound, unconnected UDP ports the
process holds, as `ports: tcp 0.0.0.0:22 udp [::]:53` (svcname annotates the first); a
process whose fds may not be read shows `ports: ?`. Only the sockets of proctree's own
network namespace are seen.",
    ],
    exit_status: &[
        (0, "success"),
        (
            1,
            "some process could not be read (reported on stderr) or a --pid or a --user does not exist, or SIGINT or SIGTERM stopped the listing (a --watch ends with 0)",
        ),
        (2, "usage error"),
    ],
};

/// Processes and their family tree: pstree's drawing, ps's fields, JSON and CSV for scripts.
#[derive(Debug, Parser)]
#[command(name = "proctree", version, about, after_long_help = MANUAL.help_text(), max_term_width = 100)]
pub struct Cli {
    /// Print a flat list with the fields ps -elf users expect, instead of the tree.
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    pub flat: bool,

    /// In the tree, show each command line instead of the process name.
    #[arg(short, long)]
    pub args: bool,

    /// Draw the tree with ASCII characters (the default when the locale is not UTF-8).
    #[arg(long)]
    pub ascii: bool,

    /// Show only process PID and its descendants, as `proctree PID` does; with -o, process
    /// PID alone, as ps -p does. Takes a comma-separated list (1,2) and may be repeated.
    /// Alone, `-p` is pstree's "show pids", which proctree always does: it changes nothing;
    /// pstree's `-pa` and `-ps PID` are `-p -a` and `-p -s PID`.
    #[arg(short, long = "pid", value_name = "PID", num_args = 0..=1, value_delimiter = ',', value_parser = parse_pid)]
    pub pids: Vec<u32>,

    /// With a PID, also show the chain of ancestors up to the root (like pstree -s).
    #[arg(short = 's', long)]
    pub ancestors: bool,

    /// Show processes of USER (a name or a uid), with their ancestors and descendants (the
    /// flat list, of --flat or -o, shows the matches alone); takes a comma-separated list
    /// (root,www-data) and may be repeated.
    #[arg(short, long = "user", value_name = "USER", value_delimiter = ',')]
    pub users: Vec<String>,

    /// Show processes whose name (or argv[0]'s base name) matches PATTERN (a glob: *, ?),
    /// with their ancestors and descendants; may be repeated.
    #[arg(short, long = "name", value_name = "PATTERN")]
    pub names: Vec<String>,

    /// Hide kernel threads.
    #[arg(short = 'K', long)]
    pub no_kernel: bool,

    /// Show the threads of each process (as {name} in the tree, records with tid in JSON).
    #[arg(short = 'T', long)]
    pub threads: bool,

    /// Show the TCP and UDP ports each process listens on (reads every process's fd table);
    /// the `ports` column of -o and key of --sort imply it.
    #[arg(long)]
    pub ports: bool,

    /// Keep running: read the processes again every INTERVAL (2s, 500ms; a number is
    /// seconds) and print a record for each that started (change: added) or ended
    /// (removed), until interrupted or --count intervals; the tree becomes flat lines.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    pub watch: Option<std::time::Duration>,

    /// With --watch: stop after N intervals.
    #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Print these columns, in this order, as ps -o does: ps's names (pid, ppid, pgid, sid,
    /// uid, user, gid, group, tty, stat, ni, pri, cls, %cpu, %mem, rss, vsz, etime, etimes,
    /// time, start, lstart, stime, comm, args, cmd, nlwp, ...) under ps's headers and in
    /// ps's forms, or the records' field names
    /// (cpu_percent, rss_kib, ...), separated by a comma or a blank ('pid user');
    /// `NAME=HEADER` renames one (the header ends at the next comma or blank). Implies the flat list in
    /// text; in JSON and CSV, keeps only those fields.
    #[arg(
        short = 'o',
        long = "format",
        value_name = "LIST",
        conflicts_with = "watch"
    )]
    pub columns: Vec<String>,

    /// Sort the flat list or the records by KEYS, as ps --sort does: column names separated
    /// by commas, each optionally preceded by - (descending) or + (ascending): -%mem,+pid.
    #[arg(
        long,
        value_name = "KEYS",
        conflicts_with = "watch",
        allow_hyphen_values = true
    )]
    pub sort: Vec<String>,

    /// Measure %CPU over INTERVAL (1s, 500ms), as top does, instead of over each process's
    /// life: the CPU time used between two reads that far apart. SIGINT or SIGTERM in the
    /// wait ends the run (status 1).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "watch")]
    pub interval: Option<std::time::Duration>,

    /// Show only process PID and its descendants (pstree's positional pid: `proctree 1`).
    #[arg(value_name = "PID", value_parser = parse_pid)]
    pub pid: Option<u32>,

    // --json and --csv print process records (with ppid and depth) in tree order.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl Cli {
    /// Parses the process arguments, accepting pstree's bundles after `-p` (`-pa`, `-ps`).
    pub fn parse_args() -> Result<Self, clap::Error> {
        Self::try_parse_from(pstree_bundles(std::env::args_os()))
    }
}

/// The letters that may follow pstree's `-p` in a bundle and mean in proctree what they mean
/// in pstree: -a (command lines) and -s (the ancestors). pstree's -T, -n and -u mean other
/// things here (threads shown, a name, a user), so a bundle with them is left to clap.
const PSTREE_LETTERS: &[char] = &['a', 's'];

/// Splits pstree's bundles after `-p`, which clap reads as `-p`'s optional value (`-pa` as
/// pid `a`): `-pa` becomes `-p -a`, `-psa` `-p -s -a`. A bundle with any other character
/// stays whole, so `-p123` is still pid 123.
pub fn pstree_bundles(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let bundle = arg
            .to_str()
            .and_then(|text| text.strip_prefix("-p"))
            .filter(|rest| !rest.is_empty() && rest.chars().all(|c| PSTREE_LETTERS.contains(&c)));
        if let Some(rest) = bundle {
            out.push("-p".into());
            out.extend(rest.chars().map(|c| OsString::from(format!("-{c}"))));
            continue;
        }
        // --sort's keys may start with `-`; its value is never a bundle.
        let sort_value = arg == "--sort";
        out.push(arg);
        if sort_value {
            out.extend(args.next());
        }
    }
    out
}

/// The clap definition, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::{Cli, pstree_bundles};
    use clap::Parser;

    #[test]
    fn the_definition_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn pstree_bundles_after_p_are_split() {
        let split = |line: &str| -> Vec<String> {
            pstree_bundles(line.split(' ').map(OsString::from))
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .collect()
        };
        for (line, expected) in [
            ("proctree -pa", "proctree -p -a"),
            ("proctree -ps 9581", "proctree -p -s 9581"),
            ("proctree -psa 1", "proctree -p -s -a 1"),
            ("proctree -pas 1", "proctree -p -a -s 1"),
            // A pid, and letters that mean something else here, stay whole.
            ("proctree -p123", "proctree -p123"),
            ("proctree -pT", "proctree -pT"),
            ("proctree -pau", "proctree -pau"),
            ("proctree -p", "proctree -p"),
            ("proctree --pid 1 -a", "proctree --pid 1 -a"),
            // Not an option: after `--`, or --sort's value.
            ("proctree -- -pa", "proctree -- -pa"),
            ("proctree --sort -pa", "proctree --sort -pa"),
        ] {
            assert_eq!(split(line).join(" "), expected, "{line}");
        }
    }

    #[test]
    fn pids_and_users_take_lists_and_repeats() {
        let cli = Cli::try_parse_from(["proctree", "-p", "1,2", "--pid", "3", "-p4,5"]).unwrap();
        assert_eq!(cli.pids, [1, 2, 3, 4, 5]);
        let cli = Cli::try_parse_from(["proctree", "-u", "root,nobody", "--user", "7"]).unwrap();
        assert_eq!(cli.users, ["root", "nobody", "7"]);
        assert!(Cli::try_parse_from(["proctree", "-p", "1,x"]).is_err());
        assert!(Cli::try_parse_from(["proctree", "-p", "1,,2"]).is_err());
    }

    #[test]
    fn pstree_bundles_parse_as_their_flags() {
        let parse = |line: &str| {
            Cli::try_parse_from(pstree_bundles(line.split(' ').map(OsString::from))).unwrap()
        };
        let cli = parse("proctree -pa");
        assert!(cli.args && !cli.ancestors && cli.pids.is_empty() && cli.pid.is_none());
        let cli = parse("proctree -ps 9581");
        assert!(cli.ancestors && !cli.args);
        assert_eq!((cli.pids.as_slice(), cli.pid), (&[][..], Some(9581)));
        let cli = parse("proctree -p123");
        assert_eq!(cli.pids, [123]);
    }
}
