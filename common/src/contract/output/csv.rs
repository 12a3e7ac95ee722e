//! CSV through the csv crate: a header row of the record's field names, then one row a
//! record, each cell as [`Record::csv`] gives it.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::rc::Rc;

use serde_json::Value;

use super::{Formatter, Record};
use crate::contract::error::{Error, Result};
use crate::contract::text;

/// The CSV formatter.
pub struct Csv {
    /// csv's writer owns what it writes to, so it encodes into a buffer shared with us,
    /// which is then handed on to the output; the output stays the caller's, reachable for
    /// a filter's raw lines between records.
    encoder: csv::Writer<SharedBuffer>,
    encoded: SharedBuffer,
    /// Whether the header row is out (before the first record).
    header_written: bool,
}

impl Default for Csv {
    fn default() -> Self {
        let encoded = SharedBuffer::default();
        Self {
            encoder: csv::Writer::from_writer(encoded.clone()),
            encoded,
            header_written: false,
        }
    }
}

impl Formatter for Csv {
    /// Each cell made safe for whoever opens the file: in text from strangers (a banner's
    /// capture, a process name) a control or bidi character is escaped as in text, so that
    /// `cat` cannot move a cursor, and a cell that a spreadsheet would run as a formula
    /// (`=`, `+`, `-`, `@`) gets a leading `'`, which makes it inert.
    fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()> {
        let cells = match serde_json::to_value(record.csv()) {
            Ok(Value::Object(cells)) => cells,
            Ok(_) => {
                return Err(Error::failed(
                    "writing output: CSV: a record is not an object",
                ));
            }
            Err(error) => return Err(Error::failed(format!("writing output: CSV: {error}"))),
        };
        if !self.header_written {
            self.encoder.write_record(cells.keys()).map_err(csv_error)?;
            self.header_written = true;
        }
        self.encoder
            .write_record(cells.values().map(cell))
            .map_err(csv_error)?;
        self.encoder.flush().map_err(Error::output)?;
        let mut bytes = self.encoded.0.borrow_mut();
        out.write_all(&bytes).map_err(Error::output)?;
        bytes.clear();
        Ok(())
    }
}

/// A byte buffer that csv's writer can own while we still read it.
#[derive(Clone, Default)]
struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One cell's text: nothing for null, numbers and booleans as JSON spells them, strings
/// made inert.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => inert(text),
        other => other.to_string(),
    }
}

/// `text` safe in a cell (see [`Csv::record`]). Newlines and tabs stay, quoted as RFC 4180
/// says; what a terminal would act on (an escape, a bidi override) becomes `\xHH`.
fn inert(text: &str) -> String {
    let acts = |c: char| text::is_unsafe(c) && !matches!(c, '\n' | '\r' | '\t');
    let mut safe = if text.chars().any(acts) {
        let mut escaped = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if acts(c) {
                let mut utf8 = [0; 4];
                for byte in c.encode_utf8(&mut utf8).bytes() {
                    let _ = write!(escaped, "\\x{byte:02x}");
                }
            } else {
                escaped.push(c);
            }
        }
        escaped
    } else {
        text.to_owned()
    };
    if safe.len() > 1 && safe.starts_with(['=', '+', '-', '@']) {
        safe.insert(0, '\'');
    }
    safe
}

fn csv_error(error: csv::Error) -> Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => Error::output(error),
        other => Error::failed(format!("writing output: CSV: {other:?}")),
    }
}
