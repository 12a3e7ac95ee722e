//! NDJSON: one JSON object a line, through serde_json, the record's own field names as keys.

use std::io::{self, Write};

use super::{Formatter, Record};
use crate::contract::error::{Error, Result};

/// The NDJSON formatter.
#[derive(Debug, Default)]
pub struct Json;

impl Formatter for Json {
    fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()> {
        serde_json::to_writer(&mut *out, record).map_err(|e| Error::output(io::Error::from(e)))?;
        out.write_all(b"\n").map_err(Error::output)
    }
}
