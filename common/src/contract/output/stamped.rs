//! `--hostname-field`: every record carries the machine it was taken on, first, so that the
//! output of a hundred servers can be merged and queried with jq, and grepped.

use std::sync::{Mutex, PoisonError};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::contract::output::{Record, TextRow};

/// A record with the name of the machine it was taken on.
pub struct Stamped<'a, R> {
    pub hostname: &'a str,
    pub record: &'a R,
}

/// The machine's name, as `hostname` prints it (uname's nodename, which cannot fail on
/// Linux; "localhost" if it ever did).
pub fn hostname() -> String {
    nix::unistd::gethostname().map_or_else(
        |_| String::from("localhost"),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The fields of `value` (a record) as a JSON object, for a record made of another's.
pub(crate) fn fields<S: Serializer>(
    value: impl Serialize,
) -> Result<serde_json::Map<String, Value>, S::Error> {
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(serde::ser::Error::custom("a record is a JSON object")),
        Err(error) => Err(serde::ser::Error::custom(error)),
    }
}

/// JSON: `hostname` first, then the record's own fields.
impl<R: Record> Serialize for Stamped<'_, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = fields::<S>(self.record)?;
        let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("hostname", self.hostname)?;
        for (key, value) in &fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<R: Record> Record for Stamped<'_, R> {
    const TEXT_HEADER: &'static [&'static str] = R::TEXT_HEADER;

    fn text_header(&self) -> &'static [&'static str] {
        with_hostname(self.record.text_header())
    }

    fn write_text(&self, row: &mut TextRow) {
        row.field(self.hostname);
        self.record.write_text(row);
    }

    fn text_detail(&self, line: &mut String) {
        self.record.text_detail(line);
    }

    fn csv(&self) -> impl Serialize + '_ {
        CsvStamped(self)
    }
}

/// CSV: a `hostname` column before the record's own. A map: the CSV formatter takes its
/// header from the keys.
struct CsvStamped<'a, 'r, R>(&'a Stamped<'r, R>);

impl<R: Record> Serialize for CsvStamped<'_, '_, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cells = fields::<S>(self.0.record.csv())?;
        let mut row = serializer.serialize_map(Some(cells.len() + 1))?;
        row.serialize_entry("hostname", self.0.hostname)?;
        for (key, value) in &cells {
            row.serialize_entry(key, value)?;
        }
        row.end()
    }
}

/// `header` with `hostname` before it.
fn with_hostname(header: &'static [&'static str]) -> &'static [&'static str] {
    prefixed(&["hostname"], header)
}

/// `header` with `prefix` before it, made once per distinct pair for the life of the
/// process (a run prints one or two kinds of record), since a header is `'static`.
pub(crate) fn prefixed(
    prefix: &'static [&'static str],
    header: &'static [&'static str],
) -> &'static [&'static str] {
    type Made = (
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    );
    static MADE: Mutex<Vec<Made>> = Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, _, joined)) = made
        .iter()
        .find(|(before, of, _)| *before == prefix && *of == header)
    {
        return joined;
    }
    let mut columns = prefix.to_vec();
    columns.extend_from_slice(header);
    let joined: &'static [&'static str] = Box::leak(columns.into_boxed_slice());
    made.push((prefix, header, joined));
    joined
}
