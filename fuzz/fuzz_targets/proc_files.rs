//! The readers of /proc files other than stat, on any bytes (the first byte picks the
//! file): /proc/PID/cmdline and status (proctree), /proc/net/tcp, udp, raw and their IPv6
//! twins, /proc/net/unix (the sockets' fallback source), and /proc/net/sockstat and snmp
//! (`sockls -s`). Nothing panics; an argument vector joined again is the file; every
//! socket read has the family and protocol of its table, and each record writes as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

use common::contract::output::Format;
use common::contract::record::{Family, SocketProto};
use common::host::sockets::procnet;

fn cmdline(data: &[u8]) {
    let args = proctree::split_args(data);
    let whole = data.strip_suffix(b"\0").unwrap_or(data);
    assert_eq!(args.join(&0), whole);
    assert_eq!(args.is_empty(), whole.is_empty());
}

fn status(data: &[u8]) {
    if proctree::effective_uid(data).is_some() {
        assert!(
            data.split(|&b| b == b'\n')
                .any(|line| line.starts_with(b"Uid:"))
        );
    }
}

fn net_inet(selector: u8, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let proto = [SocketProto::Tcp, SocketProto::Udp, SocketProto::Raw][usize::from(selector % 3)];
    let family = if selector & 4 == 0 {
        Family::Ipv4
    } else {
        Family::Ipv6
    };
    let timers = (selector & 8 != 0).then_some(100);
    if let Ok(records) = procnet::parse_inet(&text, proto, family, timers) {
        for record in &records {
            assert_eq!((record.family, record.proto), (family, proto));
            serde_json::to_string(record).expect("a record serialises");
        }
    }
}

fn net_unix(data: &[u8]) {
    if let Ok(records) = procnet::parse_unix(data) {
        for record in &records {
            assert_eq!(record.family, Family::Unix);
            serde_json::to_string(record).expect("a record serialises");
        }
    }
}

fn summary(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut files = text.splitn(3, '\0');
    let (sockstat, sockstat6, snmp) = (
        files.next().unwrap_or_default(),
        files.next().unwrap_or_default(),
        files.next().unwrap_or_default(),
    );
    let summary = sockls::Summary::from_texts(sockstat, sockstat6, snmp);
    for format in [Format::Text, Format::Json] {
        for hostname in [None, Some("host")] {
            let mut out = Vec::new();
            summary
                .write(&mut out, format, hostname)
                .expect("writes to memory");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    match first >> 4 {
        0..=2 => cmdline(rest),
        3..=4 => status(rest),
        5..=9 => net_inet(first, rest),
        10..=12 => net_unix(rest),
        _ => summary(rest),
    }
});
