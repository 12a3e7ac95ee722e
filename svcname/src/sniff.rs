//! The sniffer that tells, line by line, NDJSON from CSV from text, so that svcname can take
//! the output of any tool (or of ss, netstat, nmap) in any of the three formats without
//! being told which.

use crate::csv_line::{CsvRead, CsvReader, CsvRecord};

/// The kind of one input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Empty or only whitespace.
    Blank,
    /// An NDJSON object (starts with `{`; whether it parses is the reader's concern).
    Json,
    /// A CSV header: two or more snake_case names separated by commas.
    CsvHeader,
    /// A row under the CSV header seen last, with as many fields.
    CsvRow,
    /// A line under a CSV header that ends inside a quoted field: a record that goes on
    /// over the next lines (a quoted field may hold line ends), or else a malformed row.
    CsvOpen,
    /// A line under a CSV header that is a CSV row of another width, and not a new
    /// header: a malformed row, whose fields [`Sniffer::fields`] holds. The header stays in
    /// force (a blank line ends it).
    CsvMismatch,
    /// A line under a CSV header that is not CSV as RFC 4180 writes it (a quote closes a
    /// field before its end): a malformed row. The header stays in force.
    CsvMalformed,
    /// Anything else.
    Text,
}

/// Classifies lines, remembering the CSV header in force.
#[derive(Debug, Default)]
pub struct Sniffer {
    header: Option<Vec<String>>,
    csv: CsvReader,
}

impl Sniffer {
    #[inline]
    pub fn classify(&mut self, line: &[u8]) -> LineKind {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            self.header = None;
            return LineKind::Blank;
        }
        if trimmed[0] == b'{' {
            return LineKind::Json;
        }
        // Most lines are neither under a header nor one, and tell so by their first byte.
        if self.header.is_none() && !starts_like_a_header(line) {
            return LineKind::Text;
        }
        self.classify_csv(line)
    }

    /// [`Sniffer::classify`] for a line under a header, or one that may be a header.
    fn classify_csv(&mut self, line: &[u8]) -> LineKind {
        if let Some(header) = &self.header {
            let read = self.csv.read(line);
            if read == CsvRead::Record && self.csv.record().len() == header.len() {
                return LineKind::CsvRow;
            }
            if read == CsvRead::Open {
                return LineKind::CsvOpen;
            }
            if !is_csv_header(line) {
                return match read {
                    CsvRead::Record => LineKind::CsvMismatch,
                    CsvRead::Open | CsvRead::Malformed => LineKind::CsvMalformed,
                };
            }
        }
        if is_csv_header(line) && self.csv.read(line) == CsvRead::Record {
            self.header = Some(
                self.csv
                    .record()
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            );
            return LineKind::CsvHeader;
        }
        self.header = None;
        LineKind::Text
    }

    /// The CSV header in force, after a [`LineKind::CsvHeader`] line.
    pub fn header(&self) -> Option<&[String]> {
        self.header.as_deref()
    }

    /// The fields of the line classified last as a CSV header or row, unquoted.
    pub fn fields(&self) -> &CsvRecord {
        self.csv.record()
    }
}

/// Whether a line starts as a CSV header does, with a snake_case name.
fn starts_like_a_header(line: &[u8]) -> bool {
    line.first()
        .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
}

fn is_csv_header(line: &[u8]) -> bool {
    if !starts_like_a_header(line) {
        return false;
    }
    // Names hold no quotes, so the commas between them are all there is to CSV here.
    let mut names = 0;
    for name in line.split(|&b| b == b',') {
        let valid = name
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
            && name
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if !valid {
            return false;
        }
        names += 1;
    }
    names >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        let mut sniffer = Sniffer::default();
        let kinds: Vec<LineKind> = [
            &b"  "[..],
            b"{\"port\":22}",
            b"22/tcp open ssh",
            b"host,port,proto,state",
            b"localhost,22,tcp,open",
            b"\"a,b\",80,tcp,\"x\"\"y\"",
            b"not,csv",
            b"22",
            b"Netid State Recv-Q",
        ]
        .iter()
        .map(|line| sniffer.classify(line))
        .collect();
        assert_eq!(
            kinds,
            [
                LineKind::Blank,
                LineKind::Json,
                LineKind::Text,
                LineKind::CsvHeader,
                LineKind::CsvRow,
                LineKind::CsvRow,
                LineKind::CsvHeader,
                LineKind::CsvMismatch,
                LineKind::CsvMismatch,
            ]
        );
    }

    #[test]
    fn csv_fields_are_unquoted() {
        let mut sniffer = Sniffer::default();
        sniffer.classify(b"a,b,c");
        assert_eq!(
            sniffer.classify(b"\"x,1\",\"say \"\"hi\"\"\","),
            LineKind::CsvRow
        );
        assert_eq!(
            sniffer.fields().iter().collect::<Vec<_>>(),
            [&b"x,1"[..], b"say \"hi\"", b""]
        );
        assert_eq!(sniffer.header().unwrap(), ["a", "b", "c"]);
    }

    /// Under a header, a line is a row, the start of a row over several lines, a malformed
    /// row, or a new header; a blank line ends the header.
    #[test]
    fn csv_rows_and_what_is_not_one() {
        let mut sniffer = Sniffer::default();
        let kinds: Vec<LineKind> = [
            &b"host,port"[..],
            b"a,\"open",
            b"a,\"closed\"",
            b"\"ab\"c,d",
            b"some \"quoted text",
            b"1,2,3",
            b"a,\"b\"\"",
            b"port,proto,state",
            b"1,2",
            b"",
            b"a,\"open",
        ]
        .iter()
        .map(|line| sniffer.classify(line))
        .collect();
        assert_eq!(
            kinds,
            [
                LineKind::CsvHeader,
                LineKind::CsvOpen,
                LineKind::CsvRow,
                LineKind::CsvMalformed,
                LineKind::CsvMismatch,
                LineKind::CsvMismatch,
                LineKind::CsvOpen,
                LineKind::CsvHeader,
                LineKind::CsvMismatch,
                LineKind::Blank,
                LineKind::Text,
            ]
        );
    }
}
