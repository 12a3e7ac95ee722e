//! nmap's normal output as a file (-oN): the report stdout gets, between the two comment
//! lines nmap's files open and close with, `# Nmap 7.93 scan initiated <time> as: <command>`
//! and `# Nmap done at <time> -- 1 IP address (1 host up) scanned in 0.05 seconds`, which
//! say when the file was made and take the place of the report's own closing line.
//! The grepable file opens and closes with the same lines.

use std::io::{self, Write};

use common::contract::text;
use common::contract::timestamp::ctime_local;

use super::report::{Document, Ending, HostReport, HostStatus, Normal, Scan, hosts_scanned};
use crate::TOOL;
use crate::targets::Host;

/// The -oN document: [`Normal`] between nmap's comment lines.
pub struct NormalFile;

impl Document for NormalFile {
    fn begin(&mut self, out: &mut dyn Write, scan: &Scan) -> io::Result<()> {
        writeln!(out, "{}", initiated(scan))
    }

    fn host(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        report: &HostReport,
    ) -> io::Result<()> {
        Normal.host(out, scan, host, report)
    }

    fn status(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        status: &HostStatus,
    ) -> io::Result<()> {
        Normal.status(out, scan, host, status)
    }

    fn end(&mut self, out: &mut dyn Write, _scan: &Scan, ending: &Ending<'_>) -> io::Result<()> {
        writeln!(out, "{}", ended(ending))
    }
}

/// "# portscan 0.1.0 scan initiated Sat Dec  5 08:00:00 2026 as: portscan -oN x ...", the
/// time local as nmap's.
pub fn initiated(scan: &Scan) -> String {
    format!(
        "# {TOOL} {} scan initiated {} as: {}",
        env!("CARGO_PKG_VERSION"),
        ctime_local(scan.start_time),
        one_line(&scan.command_line)
    )
}

/// "# portscan done at Sat Dec  5 08:00:05 2026 -- 1 IP address (1 host up) scanned in
/// 5.02 seconds" ("interrupted at" for a run a signal stopped).
pub fn ended(ending: &Ending<'_>) -> String {
    format!(
        "# {TOOL} {} at {} -- {}",
        if ending.interrupted {
            "interrupted"
        } else {
            "done"
        },
        ctime_local(ending.time),
        hosts_scanned(ending.said, ending.elapsed)
    )
}

/// The command line on the one comment line it has: line ends and control characters
/// escaped.
fn one_line(text: &str) -> String {
    let mut escaped = String::new();
    text::escape_free_text(text.as_bytes(), &mut escaped);
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_stays_on_its_comment_line() {
        assert_eq!(one_line("portscan\n-p 1"), r"portscan\n-p 1");
    }
}
