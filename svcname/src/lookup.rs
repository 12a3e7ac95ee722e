//! Lookups named on the command line (or as bare lines on stdin): a port, PORT/PROTO, a port
//! list, or a service name, which may stand for several ports.

use common::services::ServiceDb;
use common::services::ports::{PortList, Proto, parse_port, parse_port_proto};

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

/// Parses a query; `proto` is the one given with `--proto`, if any. A query that starts like
/// a number is a port or a port list and must be valid as one; anything else is a name.
pub fn parse_query(text: &str, proto: Option<Proto>) -> Result<Query, String> {
    let starts_numeric = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-')
        || text.len() > 1 && text.as_bytes()[1] == b':';
    if starts_numeric {
        if text.contains('/') {
            let (port, proto) = parse_port_proto(text, Proto::Tcp)?;
            return Ok(Query::Port(port, Some(proto)));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Query::Port(parse_port(text)?, None));
        }
        return PortList::parse(text, proto.unwrap_or(Proto::Tcp)).map(Query::List);
    }
    if text.is_empty() {
        return Err("an empty query".into());
    }
    if let Some((name, suffix)) = text.rsplit_once('/')
        && let Ok(explicit) = suffix.parse::<Proto>()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(parse_query("22", None), Ok(Query::Port(22, None)));
        assert_eq!(
            parse_query("53/udp", None),
            Ok(Query::Port(53, Some(Proto::Udp)))
        );
        assert_eq!(
            parse_query("ssh", Some(Proto::Tcp)),
            Ok(Query::Name {
                name: "ssh".into(),
                proto: Some(Proto::Tcp)
            })
        );
        assert_eq!(
            parse_query("domain/udp", None),
            Ok(Query::Name {
                name: "domain".into(),
                proto: Some(Proto::Udp)
            })
        );
        assert_eq!(
            parse_query("cl/1", None),
            Ok(Query::Name {
                name: "cl/1".into(),
                proto: None
            })
        );
        let Ok(Query::List(list)) = parse_query("20-22,U:53", None) else {
            panic!("a list");
        };
        assert_eq!(list.len(), 4);
        let Ok(Query::List(list)) = parse_query("T:80", None) else {
            panic!("a list");
        };
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn bad_ports_are_errors_not_names() {
        for bad in ["70000", "0", "22/icmp", "10-5", "22,,23", "1x"] {
            assert!(parse_query(bad, None).is_err(), "{bad}");
        }
    }
}
