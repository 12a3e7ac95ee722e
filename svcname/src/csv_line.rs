//! CSV for a filter that meets it line by line among other formats: a record read from
//! lines already in memory, and cells added to the end of a row. Both are csv-core's reader
//! and writer, the ones inside the csv crate, so svcname reads exactly what the tools'
//! `--csv` writes with the csv crate (`common::contract::output`) and quotes what it adds as
//! they quote. The csv crate's own reader cannot serve here: it reads a stream, while the
//! sniffer (`sniff`) decides line by line which lines are CSV at all.

use csv_core::{
    QuoteStyle, ReadFieldResult, Reader, ReaderBuilder, Terminator, Writer, WriterBuilder,
};

/// What reading a text as one CSV record found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvRead {
    /// One whole record, as RFC 4180 writes it; [`CsvReader::record`] holds its fields.
    Record,
    /// The text ends inside a quoted field: the record may go on on the next line.
    Open,
    /// Not one record as RFC 4180 writes it: a quoted field with text after its closing
    /// quote (`"ab"c`, as a stray quote in a line of text makes), or a line end outside
    /// quotes.
    Malformed,
}

/// The fields of a record, unquoted.
#[derive(Debug, Default)]
pub struct CsvRecord {
    /// The fields end to end: `bytes[..len]`, the rest is room for csv-core to write into.
    bytes: Vec<u8>,
    len: usize,
    /// Where each field ends in `bytes`.
    ends: Vec<usize>,
}

impl CsvRecord {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `index`, counted from 0.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        Some(&self.bytes[start..end])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        (0..self.len()).map(|index| self.get(index).expect("index below len"))
    }
}

/// Reads texts (a line, or lines joined with their line ends) as CSV records, one at a time.
#[derive(Debug)]
pub struct CsvReader {
    reader: Reader,
    record: CsvRecord,
    /// csv-core's writer quoting every field, to tell whether a quoted field was written as
    /// RFC 4180 writes it.
    quoting: Writer,
    quoted: Vec<u8>,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    pub fn new() -> Self {
        // A record ends at a line feed only: a carriage return inside a line is a byte of
        // its field, as a line reader that strips `\r\n` leaves it.
        let mut reader = ReaderBuilder::new()
            .terminator(Terminator::Any(b'\n'))
            .build();
        // csv-core drops a UTF-8 byte-order mark before the first bytes it reads, while a
        // line here is read as it is. A line feed, which it skips before a record, makes
        // those first bytes.
        let _ = reader.read_field(b"\n", &mut [0]);
        Self {
            reader,
            record: CsvRecord::default(),
            quoting: WriterBuilder::new().quote_style(QuoteStyle::Always).build(),
            quoted: Vec::new(),
        }
    }

    /// The fields of the text read last, when it was [`CsvRead::Record`].
    pub fn record(&self) -> &CsvRecord {
        &self.record
    }

    /// Reads `text` as one record. An empty text is one empty field (csv-core would skip
    /// it as a blank line).
    pub fn read(&mut self, text: &[u8]) -> CsvRead {
        // Most rows quote nothing: without a quote or a line feed, the fields are what lies
        // between commas, which csv-core, byte by byte, takes ten times as long to find.
        if !text.is_empty() && memchr::memchr2(b'"', b'\n', text).is_none() {
            let record = &mut self.record;
            record.bytes.clear();
            record.ends.clear();
            for field in text.split(|&b| b == b',') {
                record.bytes.extend_from_slice(field);
                record.ends.push(record.bytes.len());
            }
            record.len = record.bytes.len();
            return CsvRead::Record;
        }
        self.read_with_csv_core(text)
    }

    /// [`CsvReader::read`] by csv-core alone: any text, quoted fields included.
    fn read_with_csv_core(&mut self, text: &[u8]) -> CsvRead {
        let record = &mut self.record;
        record.ends.clear();
        record.len = 0;
        if text.is_empty() {
            record.ends.push(0);
            return CsvRead::Record;
        }
        // Unquoting only shortens a field, so csv-core never runs out of room.
        if record.bytes.len() < text.len() + 2 {
            record.bytes.resize(text.len() + 2, 0);
        }
        let mut consumed = 0;
        let mut field_start = 0;
        let mut malformed = false;
        // The text, then a line feed to end the record where the text ends.
        for mut input in [text, &b"\n"[..]] {
            while !input.is_empty() {
                let (result, read, written) = self
                    .reader
                    .read_field(input, &mut record.bytes[record.len..]);
                input = &input[read..];
                consumed += read;
                record.len += written;
                let record_end = match result {
                    ReadFieldResult::Field { record_end } => record_end,
                    // Not with the room made above; were it ever, more room is all it takes.
                    ReadFieldResult::OutputFull => {
                        record.bytes.resize(2 * record.bytes.len(), 0);
                        continue;
                    }
                    // Only an empty input, never given, ends the data.
                    ReadFieldResult::InputEmpty | ReadFieldResult::End => continue,
                };
                // The field as it stands in the text, without the comma or line feed that
                // ended it; csv-core opens quotes only at the start of a field.
                let raw = &text[field_start..consumed - 1];
                let start = record.ends.last().copied().unwrap_or(0);
                if raw.first() == Some(&b'"') {
                    let field = &record.bytes[start..record.len];
                    malformed |=
                        !is_quoted_as_written(&mut self.quoting, &mut self.quoted, raw, field);
                }
                record.ends.push(record.len);
                field_start = consumed;
                if record_end {
                    // A record that ends before the text does had a line feed outside quotes.
                    return if malformed || consumed <= text.len() {
                        CsvRead::Malformed
                    } else {
                        CsvRead::Record
                    };
                }
            }
        }
        // The line feed went into a quoted field. Ending the input ends the record, so the
        // next text starts a new one.
        let _ = self.reader.read_field(&[], &mut record.bytes[record.len..]);
        CsvRead::Open
    }
}

/// Whether `raw`, a quoted field in a text, is `field` as csv-core's writer quotes it: with
/// nothing after the closing quote, and each quote inside doubled. csv-core's reader also
/// takes `"ab"c` as `abc`; RFC 4180 does not, and neither does a filter that must tell a
/// row from a line of text with a stray quote.
fn is_quoted_as_written(
    quoting: &mut Writer,
    quoted: &mut Vec<u8>,
    raw: &[u8],
    field: &[u8],
) -> bool {
    quoted.clear();
    quoted.resize(2 * field.len() + 2, 0);
    let (_, _, written) = quoting.field(field, quoted);
    let (_, closing) = quoting.finish(&mut quoted[written..]);
    raw == &quoted[..written + closing]
}

/// Appends `cells` to a CSV row, each after a comma, quoted as the csv crate quotes a cell:
/// only where it must be (a comma, a quote, CR or LF in it), with quotes doubled.
pub fn append_cells<'a>(row: &mut Vec<u8>, cells: impl IntoIterator<Item = &'a [u8]>) {
    let mut writer = Writer::new();
    let mut end = row.len();
    for cell in cells {
        // At most a closing quote and a comma, then the cell quoted with every byte a quote.
        row.resize(end + 2 + 2 * cell.len() + 2, 0);
        let (_, delimiter) = writer.delimiter(&mut row[end..]);
        end += delimiter;
        let (_, _, written) = writer.field(cell, &mut row[end..]);
        end += written;
    }
    row.resize(end + 1, 0);
    let (_, closing) = writer.finish(&mut row[end..]);
    row.truncate(end + closing);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> (CsvRead, Vec<Vec<u8>>) {
        let mut reader = CsvReader::new();
        let read = reader.read(text);
        (read, reader.record().iter().map(<[u8]>::to_vec).collect())
    }

    fn fields(texts: &[&str]) -> Vec<Vec<u8>> {
        texts.iter().map(|text| text.as_bytes().to_vec()).collect()
    }

    /// The quick reading of a row without quotes gives csv-core's fields: random rows of
    /// commas, CRs, blanks, letters and bytes that are not UTF-8.
    #[test]
    fn rows_without_quotes_are_read_as_csv_core_reads_them() {
        let alphabet = b",,\r a\xff\xc3\xa9";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        let (mut quick, mut core) = (CsvReader::new(), CsvReader::new());
        for _ in 0..5_000 {
            let text: Vec<u8> = (0..=random(12))
                .map(|_| alphabet[random(alphabet.len())])
                .collect();
            assert_eq!(
                quick.read(&text),
                core.read_with_csv_core(&text),
                "{text:?}"
            );
            assert!(quick.record().iter().eq(core.record().iter()), "{text:?}");
        }
    }

    #[test]
    fn records_and_what_is_not_one() {
        let cases: &[(&[u8], CsvRead, &[&str])] = &[
            (b"a,b,c", CsvRead::Record, &["a", "b", "c"]),
            (b"a,,", CsvRead::Record, &["a", "", ""]),
            (b"", CsvRead::Record, &[""]),
            (b",", CsvRead::Record, &["", ""]),
            (
                b"\"x,1\",\"say \"\"hi\"\"\",",
                CsvRead::Record,
                &["x,1", "say \"hi\"", ""],
            ),
            (b"\"\"", CsvRead::Record, &[""]),
            (
                b"\"multi\r\nline\",2",
                CsvRead::Record,
                &["multi\r\nline", "2"],
            ),
            // A quote inside an unquoted field is a byte like any other, and so is a CR.
            (
                b"some \"quoted text",
                CsvRead::Record,
                &["some \"quoted text"],
            ),
            (b"a\rb,c\r", CsvRead::Record, &["a\rb", "c\r"]),
            (b" \"a,b\"", CsvRead::Record, &[" \"a", "b\""]),
            (b"1,\"two", CsvRead::Open, &[]),
            (b"\"a \"\"b\"\" c", CsvRead::Open, &[]),
            (b"\"", CsvRead::Open, &[]),
            (b"\"ab\"c,d", CsvRead::Malformed, &[]),
            (b"\"ab\" ", CsvRead::Malformed, &[]),
            (b"\"a\"b\"c\"", CsvRead::Malformed, &[]),
            (b"a\nb", CsvRead::Malformed, &[]),
        ];
        for &(text, expected, expected_fields) in cases {
            let (found, found_fields) = read(text);
            assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(text));
            if expected == CsvRead::Record {
                assert_eq!(found_fields, fields(expected_fields), "{text:?}");
            }
        }
    }

    /// One reader serves text after text, whatever the one before was, and reads a
    /// byte-order mark as bytes of the first field.
    #[test]
    fn each_text_is_read_afresh() {
        let mut reader = CsvReader::new();
        let texts: &[(&str, CsvRead, &[&str])] = &[
            ("\u{feff}\"a\",b", CsvRead::Record, &["\u{feff}\"a\"", "b"]),
            ("1,\"open", CsvRead::Open, &[]),
            ("x,y", CsvRead::Record, &["x", "y"]),
            ("\"ab\"c,d", CsvRead::Malformed, &[]),
            ("p,\"q\"", CsvRead::Record, &["p", "q"]),
            ("a\nb", CsvRead::Malformed, &[]),
            ("r", CsvRead::Record, &["r"]),
        ];
        for &(text, expected, fields) in texts {
            assert_eq!(reader.read(text.as_bytes()), expected, "{text:?}");
            if expected == CsvRead::Record {
                let found: Vec<&[u8]> = reader.record().iter().collect();
                let expected: Vec<&[u8]> = fields.iter().map(|field| field.as_bytes()).collect();
                assert_eq!(found, expected, "{text:?}");
            }
        }
    }

    #[test]
    fn cells_are_quoted_only_where_they_must_be() {
        let mut row = b"a,b".to_vec();
        append_cells(
            &mut row,
            [
                &b"ssh"[..],
                b"",
                b"x,y",
                b"say \"hi\"",
                b"cr\rlf\n",
                b"\xff\xfe",
                b"  ",
            ],
        );
        assert_eq!(
            row,
            b"a,b,ssh,,\"x,y\",\"say \"\"hi\"\"\",\"cr\rlf\n\",\xff\xfe,  ".to_vec()
        );
        let mut row = b"a".to_vec();
        append_cells(&mut row, [&b""[..]]);
        assert_eq!(row, b"a,");
        let mut row = b"a".to_vec();
        append_cells(&mut row, [&b"\""[..]]);
        assert_eq!(row, b"a,\"\"\"\"");
    }

    /// The reader gives the csv crate's fields for every row the csv crate writes, and
    /// what it appends reads back through the csv crate as it was: rows of random cells
    /// from commas, quotes, CR, LF, spaces, letters and bytes that are not UTF-8 (a tiny
    /// xorshift generator keeps the test deterministic).
    #[test]
    fn agrees_with_the_csv_crate() {
        let alphabet = b",\"\r\n a\xff\xc3\xa9";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut random = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        let mut reader = CsvReader::new();
        for _ in 0..5_000 {
            let cells: Vec<Vec<u8>> = (0..=random(4))
                .map(|_| {
                    (0..random(6))
                        .map(|_| alphabet[random(alphabet.len())])
                        .collect()
                })
                .collect();
            if cells.len() == 1 && cells[0].is_empty() {
                // The csv crate writes `""` for a record of one empty field; covered above.
                continue;
            }
            let mut written = Vec::new();
            {
                let mut writer = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(&mut written);
                writer.write_record(&cells).unwrap();
                writer.flush().unwrap();
            }
            let record = written.strip_suffix(b"\n").unwrap();
            assert_eq!(reader.read(record), CsvRead::Record, "{record:?}");
            assert_eq!(
                reader
                    .record()
                    .iter()
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>(),
                cells
            );

            let mut row = b"first".to_vec();
            append_cells(&mut row, cells.iter().map(Vec::as_slice));
            let mut read_back = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(row.as_slice());
            let fields = read_back.byte_records().next().unwrap().unwrap();
            let mut expected = vec![b"first".to_vec()];
            expected.extend(cells.iter().cloned());
            assert_eq!(
                fields.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                expected,
                "{row:?}"
            );
        }
    }
}
