//! Every other option of nmap's, so that a user who types one is told it is nmap's and what
//! portscan offers instead, not clap's "unexpected argument" with a tip about `--`. The
//! options portscan has, and the refusals with a story of their own, are in `cli`; this is
//! the rest of nmap's manual page.

/// nmap options portscan lacks, each with what to do instead ("" where there is nothing to
/// say): long options match with or without `=VALUE`, short ones alone or with the value
/// glued on (`-g53`), as nmap takes them; none of portscan's own options starts with one.
const NMAP_ONLY: &[(&str, &str)] = &[
    ("--adler32", "portscan sends no SCTP"),
    (
        "--append-output",
        "portscan writes to stdout: redirect it with >>",
    ),
    ("--badsum", "portscan sends no crafted packets"),
    ("--data", "portscan sends no crafted packets"),
    ("--data-length", "portscan sends no crafted packets"),
    ("--data-string", "portscan sends no crafted packets"),
    ("--datadir", "/etc/services names the ports"),
    (
        "--defeat-icmp-ratelimit",
        "portscan waits for rate-limited ICMP errors itself",
    ),
    ("--defeat-rst-ratelimit", ""),
    ("--disable-arp-ping", "portscan sends no ARP"),
    ("--discovery-ignore-rst", ""),
    (
        "--dns-servers",
        "names are resolved by the system's resolver",
    ),
    ("--fuzzy", ""),
    ("--iflist", "ip address and ip route list them"),
    (
        "--initial-rtt-timeout",
        "--timeout sets the longest wait for one probe",
    ),
    ("--ip-options", "portscan sends no crafted packets"),
    ("--max-hostgroup", "portscan scans hosts in groups of 4096"),
    ("--max-os-tries", ""),
    (
        "--max-parallelism",
        "the window adapts itself; --max-rate caps the rate",
    ),
    (
        "--max-rtt-timeout",
        "--timeout sets the longest wait for one probe",
    ),
    (
        "--max-scan-delay",
        "--scan-delay and --max-rate pace probes",
    ),
    ("--min-hostgroup", "portscan scans hosts in groups of 4096"),
    (
        "--min-parallelism",
        "the window adapts itself; --min-rate sets a floor",
    ),
    (
        "--min-rtt-timeout",
        "--timeout sets the longest wait for one probe",
    ),
    ("--mtu", "portscan sends no crafted packets"),
    ("--noninteractive", "portscan reads no keys while it runs"),
    ("--nsock-engine", ""),
    ("--osscan-guess", ""),
    ("--osscan-limit", ""),
    (
        "--packet-trace",
        "strace -e trace=network shows portscan's socket calls",
    ),
    (
        "--port-ratio",
        "--top-ports N takes the N most common ports",
    ),
    ("--privileged", "portscan needs no privileges"),
    ("--proxies", ""),
    (
        "--randomize-hosts",
        "portscan always shuffles hosts and ports (--sequential does not)",
    ),
    ("--release-memory", ""),
    (
        "--resume",
        "--shard K/N splits a scan into parts that can be run apart",
    ),
    ("--script-args", ""),
    ("--script-args-file", ""),
    ("--script-help", ""),
    ("--script-timeout", ""),
    ("--script-trace", ""),
    ("--script-updatedb", ""),
    ("--send-eth", "portscan sends no crafted packets"),
    ("--send-ip", "portscan sends no crafted packets"),
    ("--servicedb", "/etc/services names the ports"),
    ("--source-port", "portscan sends no crafted packets"),
    ("--spoof-mac", "portscan sends no crafted packets"),
    (
        "--stats-every",
        "the progress line on a terminal is redrawn every second",
    ),
    (
        "--system-dns",
        "names are resolved by the system's resolver already",
    ),
    ("--ttl", "portscan sends no crafted packets"),
    ("--unique", ""),
    ("--unprivileged", "portscan is always unprivileged"),
    ("--version-all", ""),
    ("--version-light", ""),
    ("--version-trace", ""),
    ("--versiondb", ""),
    (
        "--webxml",
        "--stylesheet names the stylesheet the XML file links to",
    ),
    ("-D", "portscan sends no crafted packets"),
    ("-S", "portscan sends no crafted packets"),
    ("-b", ""),
    ("-d", "-v says more"),
    ("-dd", "-vv says more"),
    ("-e", "the routing table chooses the interface"),
    ("-f", "portscan sends no crafted packets"),
    ("-g", "portscan sends no crafted packets"),
    ("-iR", "portscan scans only the targets it is given"),
];

/// The message for `arg` if it is one of nmap's options in [`NMAP_ONLY`].
pub fn message(arg: &str) -> Option<String> {
    let matches = |option: &str| match arg.strip_prefix(option) {
        Some(rest) if option.starts_with("--") => rest.is_empty() || rest.starts_with('='),
        Some(_) => true,
        None => false,
    };
    // The longest match, so that -dd is not taken for -d.
    let (option, instead) = NMAP_ONLY
        .iter()
        .filter(|(option, _)| matches(option))
        .max_by_key(|(option, _)| option.len())?;
    Some(if instead.is_empty() {
        format!("{option} is nmap's and not supported by portscan")
    } else {
        format!("{option} is nmap's and not supported by portscan; {instead}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmap_options_are_named_with_or_without_a_value() {
        assert_eq!(
            message("--min-hostgroup=5").as_deref(),
            Some(
                "--min-hostgroup is nmap's and not supported by portscan; portscan scans hosts in groups of 4096"
            )
        );
        assert_eq!(
            message("--fuzzy").as_deref(),
            Some("--fuzzy is nmap's and not supported by portscan")
        );
        assert!(message("-g53").unwrap().starts_with("-g is nmap's"));
        assert!(message("-dd").unwrap().starts_with("-dd is nmap's"));
        assert!(message("-d").unwrap().starts_with("-d is nmap's"));
        assert_eq!(message("--no-such-option"), None);
        assert_eq!(message("--data-lengthy"), None);
        assert_eq!(message("-p22"), None);
    }

    #[test]
    fn the_table_is_sorted_and_without_repeats() {
        let names: Vec<&str> = NMAP_ONLY.iter().map(|(name, _)| *name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
