//! CSV through the csv crate: a header row of the record's field names, then one row a
//! record, each cell as [`Record::csv`] gives it.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use super::{Formatter, Record};
use crate::contract::error::{Error, Result};

/// The CSV formatter.
pub struct Csv {
    /// csv's writer owns what it writes to, so it encodes into a buffer shared with us,
    /// which is then handed on to the output; the output stays the caller's, reachable for
    /// a filter's raw lines between records.
    encoder: csv::Writer<SharedBuffer>,
    encoded: SharedBuffer,
}

impl Default for Csv {
    fn default() -> Self {
        let encoded = SharedBuffer::default();
        Self {
            encoder: csv::Writer::from_writer(encoded.clone()),
            encoded,
        }
    }
}

impl Formatter for Csv {
    fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()> {
        self.encoder.serialize(record.csv()).map_err(csv_error)?;
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

fn csv_error(error: csv::Error) -> Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => Error::output(error),
        other => Error::failed(format!("writing output: CSV: {other:?}")),
    }
}
