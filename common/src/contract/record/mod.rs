//! The records the tools print: one flat struct per kind of fact, with the same field names
//! in NDJSON keys, CSV headers and text headers. docs/FORMAT.md documents every field; new
//! fields go at the end, and a field never changes meaning. One file per kind of record, and
//! one for the byte strings (names, paths) that several of them carry.

mod host;
mod os_text;
mod port;
mod process;
mod service;
mod socket;

pub use host::{HostRecord, HostState};
pub use os_text::OsText;
pub use port::{Method, PortRecord, PortState, Reason};
pub use process::{CsvProcess, DENIED, ListenPort, ProcessRecord, ports_suffix};
pub use service::{PortRange, ServiceRecord};
pub use socket::{
    Family, OwnerStatus, SockType, SocketProto, SocketRecord, SocketState, SocketTimer,
};

#[cfg(test)]
pub(crate) mod test_support {
    use crate::contract::output::{FlushPolicy, Format, Record, RecordWriter, TextOptions};

    pub(crate) fn text_of<R: Record>(record: &R) -> String {
        formatted(record, Format::Text)
    }

    /// One record as the writer prints it in `format`.
    pub(crate) fn formatted<R: Record>(record: &R, format: Format) -> String {
        let mut out = Vec::new();
        let mut writer =
            RecordWriter::new(&mut out, format, FlushPolicy::Block, TextOptions::default());
        writer.write(record).unwrap();
        writer.finish().unwrap();
        String::from_utf8(out).unwrap()
    }
}
