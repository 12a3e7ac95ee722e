//! Lookups named on the command line (or read from the input with --queries): a port,
//! PORT/PROTO, a port list, or a service name, which may stand for several ports.

use common::contract::output::{Record, TextRow};
use common::contract::record::ServiceRecord;
use common::contract::text;
use common::services::ServiceDb;
use common::services::ports::{PortList, Proto, ProtoNames, parse_port, parse_port_proto};

/// One thing to look up.
#[derive(Debug, PartialEq)]
pub enum Query {
    /// A port, with the protocol it was given with, if any.
    Port(u16, Option<Proto>),
    /// A port list in the common language (`20-25`, `T:80,U:53`).
    List(PortList),
    /// A service name, optionally `name/proto`.
    Name { name: String, proto: Option<Proto> },
}

/// Parses a query; `proto` is the one given with `--proto`, if any, and `names` the protocol
/// names taken after a slash (a query on the command line, or a line of input). A query that
/// starts like a number is a port or a port list and must be valid as one; anything else is
/// a name.
pub fn parse_query(text: &str, proto: Option<Proto>, names: ProtoNames) -> Result<Query, String> {
    let starts_numeric = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-')
        || text.len() > 1 && text.as_bytes()[1] == b':';
    if starts_numeric {
        if text.contains('/') {
            let (port, proto) = parse_port_proto(text.as_bytes(), names)?;
            return Ok(Query::Port(port, proto));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Query::Port(parse_port(text.as_bytes())?, None));
        }
        return PortList::parse(text, proto.unwrap_or(Proto::Tcp)).map(Query::List);
    }
    if text.is_empty() {
        return Err("an empty query".into());
    }
    if let Some((name, suffix)) = text.rsplit_once('/')
        && let Some(explicit) = Proto::from_name(suffix.as_bytes(), names)
    {
        return Ok(Query::Name {
            name: name.to_owned(),
            proto: Some(explicit),
        });
    }
    Ok(Query::Name {
        name: text.to_owned(),
        proto,
    })
}

impl Query {
    /// The (port, protocol) pairs of a port query or list; empty for a name.
    pub fn ports(&self, default_proto: Proto) -> Vec<(u16, Proto)> {
        match self {
            Self::Port(port, proto) => vec![(*port, proto.unwrap_or(default_proto))],
            Self::List(list) => Proto::ALL
                .into_iter()
                .flat_map(|proto| list.ports(proto).iter().map(move |port| (port, proto)))
                .collect(),
            Self::Name { .. } => Vec::new(),
        }
    }
}

/// The ports a name stands for, limited to one protocol if asked.
pub fn name_pairs(db: &ServiceDb, name: &str, proto: Option<Proto>) -> Vec<(u16, Proto)> {
    db.by_name(name)
        .into_iter()
        .filter(|(_, p)| proto.is_none_or(|wanted| wanted == *p))
        .collect()
}

/// A record looked up with `--frequency`: in text the frequency follows the range (`-`
/// where nmap's table has none), as in a filter's annotation; JSON and CSV are the
/// record's own, which always has the field.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct WithFrequency<'a>(pub &'a ServiceRecord);

impl Record for WithFrequency<'_> {
    const TEXT_HEADER: &'static [&'static str] =
        &["port/proto", "service", "range", "frequency", "description"];

    fn write_text(&self, row: &mut TextRow) {
        let record = self.0;
        row.field(format_args!("{}/{}", record.port, record.proto))
            .field(&record.service)
            .field(record.range.as_str());
        match record.frequency {
            Some(frequency) => row.field(frequency),
            None => row.field(text::ABSENT),
        };
        let free = record.free_text();
        if free.is_empty() {
            row.field("");
        } else {
            row.free_text(free.as_bytes());
        }
    }

    fn csv(&self) -> impl serde::Serialize + '_ {
        self.0.csv()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            parse_query("22", None, ProtoNames::Canonical),
            Ok(Query::Port(22, None))
        );
        assert_eq!(
            parse_query("53/udp", None, ProtoNames::Canonical),
            Ok(Query::Port(53, Some(Proto::Udp)))
        );
        assert_eq!(
            parse_query("ssh", Some(Proto::Tcp), ProtoNames::Canonical),
            Ok(Query::Name {
                name: "ssh".into(),
                proto: Some(Proto::Tcp)
            })
        );
        assert_eq!(
            parse_query("domain/udp", None, ProtoNames::Canonical),
            Ok(Query::Name {
                name: "domain".into(),
                proto: Some(Proto::Udp)
            })
        );
        assert_eq!(
            parse_query("cl/1", None, ProtoNames::Canonical),
            Ok(Query::Name {
                name: "cl/1".into(),
                proto: None
            })
        );
        let Ok(Query::List(list)) = parse_query("20-22,U:53", None, ProtoNames::Canonical) else {
            panic!("a list");
        };
        assert_eq!(list.len(), 4);
        let Ok(Query::List(list)) = parse_query("T:80", None, ProtoNames::Canonical) else {
            panic!("a list");
        };
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn bad_ports_are_errors_not_names() {
        for bad in ["70000", "0", "22/icmp", "10-5", "22,,23", "1x"] {
            assert!(
                parse_query(bad, None, ProtoNames::Canonical).is_err(),
                "{bad}"
            );
        }
    }

    /// A line of input may name a protocol as netstat does; a command line may not.
    #[test]
    fn ipv6_protocol_names_only_in_input() {
        for names in [ProtoNames::Canonical, ProtoNames::WithIpv6Suffix] {
            let input = names == ProtoNames::WithIpv6Suffix;
            assert_eq!(
                parse_query("53/udp6", None, names).ok(),
                input.then_some(Query::Port(53, Some(Proto::Udp)))
            );
            let name_proto = if input { Some(Proto::Udp) } else { None };
            let name = if input { "domain" } else { "domain/udp6" };
            assert_eq!(
                parse_query("domain/udp6", None, names),
                Ok(Query::Name {
                    name: name.into(),
                    proto: name_proto
                })
            );
        }
    }
}
