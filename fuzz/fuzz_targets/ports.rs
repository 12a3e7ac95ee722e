//! The port-list language every tool reads (`portscan -p`, `sockls --port`, svcname's
//! queries), the readers of one port and of `PORT/PROTO`, and service names, on any text:
//! nothing panics; a port read is the number written; a list written back as its own
//! ranges reads as the same list; a list without names means the same whether or not
//! names are allowed (one parser); and every port a name stands for has a name in the
//! table.
#![no_main]

use std::fmt::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use common::services::ports::{PortList, Proto, ProtoNames, parse_port, parse_port_proto};
use common::services::{Options, ServiceDb};

/// The built-in tables only, so that a run means the same on every machine.
fn db() -> &'static ServiceDb {
    static DB: OnceLock<ServiceDb> = OnceLock::new();
    DB.get_or_init(|| {
        let options = Options {
            builtin_only: true,
            ..Options::default()
        };
        ServiceDb::load(&options).expect("the built-in tables load")
    })
}

/// `T:1-3,5,U:53`: the list as ranges, each protocol behind its prefix.
fn written(list: &PortList) -> String {
    let mut text = String::new();
    for proto in Proto::ALL {
        let mut ports = list.ports(proto).iter().peekable();
        let mut prefix = Some(match proto {
            Proto::Tcp => "T:",
            Proto::Udp => "U:",
            Proto::Sctp => "S:",
            Proto::Dccp => "D:",
        });
        while let Some(first) = ports.next() {
            let mut last = first;
            while ports.peek() == Some(&(last.wrapping_add(1))) && last < u16::MAX {
                last = ports.next().unwrap();
            }
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(prefix.take().unwrap_or(""));
            let _ = write!(text, "{first}-{last}");
        }
    }
    text
}

fuzz_target!(|data: &[u8]| {
    if let Ok(port) = parse_port(data) {
        assert!(data.iter().all(u8::is_ascii_digit), "{data:?}");
        assert_eq!(parse_port(port.to_string().as_bytes()), Ok(port));
    }
    for names in [ProtoNames::Canonical, ProtoNames::WithIpv6Suffix] {
        if let Ok((port, proto)) = parse_port_proto(data, names) {
            let again = match proto {
                Some(proto) => format!("{port}/{proto}"),
                None => port.to_string(),
            };
            assert_eq!(
                parse_port_proto(again.as_bytes(), ProtoNames::Canonical),
                Ok((port, proto))
            );
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let db = db();
    let named = |name: &str, proto: Proto| db.ports_named(name, proto);
    let with_names = PortList::parse_with_names(text, Proto::Tcp, &named);
    if let Ok(list) = PortList::parse(text, Proto::Udp) {
        let again = written(&list);
        assert_eq!(
            PortList::parse(&again, Proto::Tcp).as_ref(),
            Ok(&list),
            "{again}"
        );
        let numbers_only = PortList::parse(text, Proto::Tcp).expect("parsed with udp");
        assert_eq!(
            with_names,
            Ok(numbers_only),
            "names change a list of numbers"
        );
    }
    for (port, proto) in db.by_name(text) {
        assert!(db.name_of(port, proto).is_some(), "{text}: {port}/{proto}");
    }
});
