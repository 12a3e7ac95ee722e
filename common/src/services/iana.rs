//! IANA's registry, compiled into the binary by build.rs from common/data/iana-services.tsv:
//! rows sorted by (port, protocol) and an index sorted by name, both searched in place.

use super::compare_names;
use crate::services::ports::Proto;

/// One registry entry. `proto` indexes [`Proto::ALL`]; the strings are (start, length) in
/// one shared literal, which keeps the table free of load-time relocations.
#[derive(Debug)]
pub(crate) struct IanaRow {
    pub port: u16,
    pub proto: u8,
    name: (u32, u8),
    description: (u32, u16),
}

/// One entry of the index by name: the name, (start, length) in `NAMES`, and its row.
#[derive(Debug)]
struct NameEntry {
    start: u32,
    length: u8,
    row: u16,
}

impl NameEntry {
    fn name(&self) -> &'static str {
        let start = self.start as usize;
        &NAMES[start..start + usize::from(self.length)]
    }
}

// Generated tables: their numbers are offsets, not quantities a reader needs grouped.
#[allow(clippy::unreadable_literal)]
mod generated {
    use super::{IanaRow, NameEntry};
    include!(concat!(env!("OUT_DIR"), "/iana.rs"));
}
use generated::{IANA, IANA_BY_NAME, NAMES, TEXT};

impl IanaRow {
    pub fn proto(&self) -> Proto {
        Proto::ALL[usize::from(self.proto)]
    }

    pub fn name(&self) -> &'static str {
        let start = self.name.0 as usize;
        &TEXT[start..start + usize::from(self.name.1)]
    }

    pub fn description(&self) -> &'static str {
        let start = self.description.0 as usize;
        &TEXT[start..start + usize::from(self.description.1)]
    }
}

pub(crate) fn by_port(port: u16, proto: Proto) -> Option<&'static IanaRow> {
    let key = (port, u8::try_from(proto.index()).expect("four protocols"));
    IANA.binary_search_by_key(&key, |row| (row.port, row.proto))
        .ok()
        .map(|i| &IANA[i])
}

/// Every row whose name equals `name`, ignoring ASCII case, in (port, protocol) order.
pub(crate) fn by_name(name: &str) -> impl Iterator<Item = &'static IanaRow> {
    // Compared byte by byte in lower case, as build.rs sorted them, without a lower-cased
    // copy of each name the search passes.
    let start = IANA_BY_NAME.partition_point(|entry| compare_names(entry.name(), name).is_lt());
    IANA_BY_NAME[start..]
        .iter()
        .take_while(move |entry| entry.name().eq_ignore_ascii_case(name))
        .map(|entry| &IANA[usize::from(entry.row)])
}

/// Every row, in (port, protocol) order.
pub(crate) fn rows() -> &'static [IanaRow] {
    &IANA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_registry_is_there() {
        assert!(IANA.len() > 11_000, "{}", IANA.len());
        assert!(
            IANA.windows(2)
                .all(|w| (w[0].port, w[0].proto) < (w[1].port, w[1].proto))
        );
    }

    #[test]
    fn the_name_index_is_sorted_and_complete() {
        assert!(
            IANA_BY_NAME
                .windows(2)
                .all(|w| compare_names(w[0].name(), w[1].name()).is_le())
        );
        let mut rows: Vec<u16> = IANA_BY_NAME.iter().map(|entry| entry.row).collect();
        rows.sort_unstable();
        rows.dedup();
        assert_eq!(rows.len(), IANA.len());
        assert!(
            IANA_BY_NAME
                .iter()
                .all(|entry| entry.name() == IANA[usize::from(entry.row)].name())
        );
    }

    #[test]
    fn lookups_both_ways() {
        assert_eq!(by_port(22, Proto::Tcp).unwrap().name(), "ssh");
        assert_eq!(by_port(53, Proto::Udp).unwrap().name(), "domain");
        assert_eq!(by_port(6379, Proto::Tcp).unwrap().name(), "redis");
        assert!(
            by_port(4, Proto::Tcp).is_none(),
            "unassigned ports have no row"
        );
        let ssh: Vec<(u16, Proto)> = by_name("SSH").map(|r| (r.port, r.proto())).collect();
        assert_eq!(ssh, [(22, Proto::Tcp), (22, Proto::Udp), (22, Proto::Sctp)]);
        assert_eq!(by_name("no-such-service").count(), 0);
        let http: Vec<u16> = by_name("http").map(|r| r.port).collect();
        assert!(http.contains(&80));
    }
}
