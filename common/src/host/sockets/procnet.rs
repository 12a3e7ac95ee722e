//! The fallback source: the text tables of /proc/net, for kernels or sandboxes without
//! sock_diag. They give the same records where they hold the same facts; they lack the
//! cookie, the UNIX peer and uid, v6only, and the extras (`-i`, `-m`), which stay empty; the TCP
//! timers (`-o`) are read as ss reads them when it falls back to these tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::contract::record::{
    Family, OsText, SockType, SocketProto, SocketRecord, SocketState, SocketTimer,
};

/// Parses /proc/net/{tcp,udp,raw}{,6}: one socket a line after a header. With `timers`
/// (`-o`), also the `tr:tm->when retrnsmt` columns, the timer with its time to go in clock
/// ticks of `ticks_per_second`.
pub fn parse_inet(
    text: &str,
    proto: SocketProto,
    family: Family,
    timers: Option<u64>,
) -> Result<Vec<SocketRecord>, String> {
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cannot_parse = || format!("line {}: cannot parse '{}'", number + 1, line.trim());
        let mut record = parse_inet_line(line, proto, family).ok_or_else(cannot_parse)?;
        if let Some(ticks_per_second) = timers {
            timer(line, ticks_per_second, &mut record).ok_or_else(cannot_parse)?;
        }
        records.push(record);
    }
    Ok(records)
}

/// The clock ticks a second in which /proc/net/tcp counts `tm->when` (USER_HZ).
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|ticks| u64::try_from(ticks).ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// `02:000A7E5C 00000000`: the timer (the numbers of idiag_timer), its time to go in ticks,
/// rounded up to milliseconds as ss rounds it, and the retransmissions.
fn timer(line: &str, ticks_per_second: u64, record: &mut SocketRecord) -> Option<()> {
    let mut fields = line.split_whitespace().skip(5);
    let (kind, when) = fields.next()?.split_once(':')?;
    let retransmits = u32::from_str_radix(fields.next()?, 16).ok()?;
    record.timer = SocketTimer::from_number(u8::from_str_radix(kind, 16).ok()?);
    if record.timer.is_some() {
        let ticks = u64::from_str_radix(when, 16).ok()?;
        // A time beyond u64 milliseconds is no real timer's; it saturates, as below.
        let ms = ticks.saturating_mul(1000).div_ceil(ticks_per_second);
        record.timer_expires_ms = Some(u32::try_from(ms).unwrap_or(u32::MAX));
        record.timer_retrans = Some(u8::try_from(retransmits).unwrap_or(u8::MAX));
    }
    Some(())
}

fn parse_inet_line(line: &str, proto: SocketProto, family: Family) -> Option<SocketRecord> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local_address, local_port) = endpoint(fields.get(1)?, family)?;
    let (remote_address, remote_port) = endpoint(fields.get(2)?, family)?;
    let state = SocketState::from_number(u8::from_str_radix(fields.get(3)?, 16).ok()?)?;
    let (send_q, recv_q) = fields.get(4)?.split_once(':')?;
    let sock_type = match proto {
        SocketProto::Tcp => SockType::Stream,
        SocketProto::Udp => SockType::Dgram,
        SocketProto::Raw | SocketProto::Unix => SockType::Raw,
    };
    let mut record = SocketRecord::new(proto, family, sock_type, state);
    record.local_address = Some(local_address);
    record.local_port = Some(local_port);
    record.remote_address = Some(remote_address);
    record.remote_port = Some(remote_port);
    record.send_q = u32::from_str_radix(send_q, 16).ok()?;
    record.recv_q = u32::from_str_radix(recv_q, 16).ok()?;
    record.inode = fields.get(9)?.parse().ok()?;
    record.uid = super::owner_uid(state, record.inode, fields.get(7)?.parse().ok()?);
    Some(record)
}

/// `0100007F:0016`: the address as the kernel's words printed in hex, host byte order.
fn endpoint(text: &str, family: Family) -> Option<(IpAddr, u16)> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = address.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let address = match (family, address.len()) {
        (Family::Ipv4, 8) => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        (Family::Ipv6, 32) => {
            let mut octets = [0; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some((address, port))
}

/// Parses /proc/net/unix: `Num RefCount Protocol Flags Type St Inode Path`. The kernel
/// prints a path's bytes as they are (unix_seq_show, net/unix/af_unix.c), newlines too, so
/// a line that is not a socket's continues the path of the socket before it. A path whose
/// continuation reads like a socket's line cannot be told from one; sock_diag, the default
/// source, has no such ambiguity.
pub fn parse_unix(text: &[u8]) -> Result<Vec<SocketRecord>, String> {
    let mut records: Vec<SocketRecord> = Vec::new();
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    for (number, line) in text.split(|&b| b == b'\n').enumerate().skip(1) {
        if let Some(record) = parse_unix_line(line) {
            records.push(record);
            continue;
        }
        match records.last_mut().and_then(|record| record.path.as_mut()) {
            Some(path) => {
                path.0.push(b'\n');
                path.0.extend_from_slice(line);
            }
            None if line.trim_ascii().is_empty() => {}
            None => {
                return Err(format!(
                    "line {}: cannot parse '{}'",
                    number + 1,
                    String::from_utf8_lossy(line.trim_ascii())
                ));
            }
        }
    }
    Ok(records)
}

/// __SO_ACCEPTCON: the socket listens.
const ACCEPTCON: u32 = 0x10000;

fn parse_unix_line(line: &[u8]) -> Option<SocketRecord> {
    let mut rest = line;
    // The socket's address, `%pK:` (zeros without privilege).
    next_field(&mut rest)?.strip_suffix(b":")?;
    let _refcount = next_field(&mut rest)?;
    let _protocol = next_field(&mut rest)?;
    let flags = u32::from_str_radix(ascii(next_field(&mut rest)?)?, 16).ok()?;
    let sock_type = match next_field(&mut rest)? {
        b"0001" => SockType::Stream,
        b"0002" => SockType::Dgram,
        b"0005" => SockType::Seqpacket,
        _ => return None,
    };
    // St is the socket's SS_* state, not the TCP-like state sock_diag reports.
    let state = match (flags & ACCEPTCON != 0, next_field(&mut rest)?) {
        (true, _) => SocketState::Listen,
        (false, b"02") => SocketState::SynSent,
        (false, b"03") => SocketState::Established,
        (false, _) => SocketState::Unconn,
    };
    let mut record = SocketRecord::new(SocketProto::Unix, Family::Unix, sock_type, state);
    record.inode = ascii(next_field(&mut rest)?)?.parse().ok()?;
    // One space, then the path to the end of the line, spaces and all.
    record.path = match rest {
        [] => None,
        [b' ', path @ ..] => Some(OsText::from(path)),
        _ => return None,
    };
    Some(record)
}

/// Takes the next whitespace-separated field off the front of `rest`.
fn next_field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let text = rest.trim_ascii_start();
    let end = text
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(text.len());
    *rest = &text[end..];
    (end > 0).then(|| &text[..end])
}

/// A field of digits, as text to parse.
fn ascii(field: &[u8]) -> Option<&str> {
    std::str::from_utf8(field).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz target `proc_files`: a timer's ticks near u64::MAX overflowed
    /// their conversion to milliseconds.
    #[test]
    fn a_huge_timer_saturates() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt\n   0: 0100007F:0016 0100007F:9C40 01 00000000:00000000 02:FFFFFFFFFFFFFFFF 00000002   104        0 12345\n";
        let records = parse_inet(text, SocketProto::Tcp, Family::Ipv4, Some(100)).unwrap();
        assert_eq!(records[0].timer_expires_ms, Some(u32::MAX));
    }

    #[test]
    fn timers_are_read_only_when_asked_in_milliseconds_rounded_up() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0016 0100007F:9C40 01 00000000:00000000 02:000AE5FF 00000002   104        0 12345 1 0000000000000000 20 4 30 10 -1\n   1: 0100007F:0016 0100007F:9C41 06 00000000:00000000 03:00000E76 00000000     0        0 0 3 0000000000000000\n   2: 0100007F:0017 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 12346 1 0000000000000000 100 0 0 10 0\n";
        let plain = parse_inet(text, SocketProto::Tcp, Family::Ipv4, None).unwrap();
        assert!(plain.iter().all(|r| r.timer.is_none()));
        let timed = parse_inet(text, SocketProto::Tcp, Family::Ipv4, Some(100)).unwrap();
        let timers: Vec<_> = timed
            .iter()
            .map(|r| (r.timer, r.timer_expires_ms, r.timer_retrans))
            .collect();
        assert_eq!(
            timers,
            [
                // 0xAE5FF = 714,239 ticks of 10 ms.
                (Some(SocketTimer::Keepalive), Some(7_142_390), Some(2)),
                (Some(SocketTimer::Timewait), Some(37_020), Some(0)),
                (None, None, None),
            ]
        );
        let odd_clock = parse_inet(text, SocketProto::Tcp, Family::Ipv4, Some(1024)).unwrap();
        // 3702 ticks of 1/1024 s: 3615.23... ms, rounded up as ss does.
        assert_eq!(odd_clock[1].timer_expires_ms, Some(3616));
    }

    #[test]
    fn tcp_lines_decode_host_order_hex() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0016 00000000:0000 0A 00000000:00000003 00:00000000 00000000   104        0 12345 1 0000000000000000 100 0 0 10 0\n";
        let records = parse_inet(text, SocketProto::Tcp, Family::Ipv4, None).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.local_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r.local_port, Some(22));
        assert_eq!(r.state, SocketState::Listen);
        assert_eq!((r.send_q, r.recv_q), (0, 3));
        assert_eq!(r.uid, Some(104));
        assert_eq!(r.inode, 12345);
    }

    #[test]
    fn time_wait_and_request_sockets_have_no_uid() {
        // A time-wait socket (06), a request socket (03, no inode) with its listener's uid,
        // and root's connection, which keeps its uid 0.
        let text = "header\n   0: 0100007F:0016 0100007F:9C41 06 00000000:00000000 03:00000E76 00000000     0        0 0 3 0000000000000000\n   1: 0100007F:0016 0100007F:9C42 03 00000000:00000000 01:00000064 00000000   104        0 0 2 0000000000000000\n   2: 0100007F:0016 0100007F:9C43 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000\n";
        let records = parse_inet(text, SocketProto::Tcp, Family::Ipv4, None).unwrap();
        let uids: Vec<_> = records.iter().map(|r| r.uid).collect();
        assert_eq!(uids, [None, None, Some(0)]);
    }

    #[test]
    fn tcp6_lines_decode_four_words() {
        let text = "header\n   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n";
        let records = parse_inet(text, SocketProto::Tcp, Family::Ipv6, None).unwrap();
        assert_eq!(records[0].local_address, Some("::1".parse().unwrap()));
        assert_eq!(records[0].local_port, Some(8080));
    }

    #[test]
    fn a_garbled_line_is_an_error_not_a_skip() {
        let text = "header\n   0: 0100007F 00000000:0000 0A\n";
        assert!(parse_inet(text, SocketProto::Tcp, Family::Ipv4, None).is_err());
    }

    #[test]
    fn unix_lines_keep_paths_with_spaces() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 3001 /run/my socket\n\
            0000000000000000: 00000003 00000000 00000000 0001 03  3002\n\
            0000000000000000: 00000002 00000000 00000000 0002 01 3003 @abstract\n";
        let records = parse_unix(text).unwrap();
        assert_eq!(records[0].state, SocketState::Listen);
        assert_eq!(records[0].path, Some(OsText(b"/run/my socket".to_vec())));
        assert_eq!(records[1].state, SocketState::Established);
        assert_eq!(records[1].path, None);
        assert_eq!(records[1].inode, 3002);
        assert_eq!(records[2].sock_type, SockType::Dgram);
        assert_eq!(records[2].path, Some(OsText(b"@abstract".to_vec())));
        assert_eq!(records[2].inode, 3003);
    }

    #[test]
    fn unix_paths_keep_their_bytes_and_newlines() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 3001 /tmp/s\x1b[31m\x07\n\
            \xff\xfe.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 3002 /tmp/a\n\
            \n\
            0000000000000000: 00000003 00000000 00000000 0001 03 3003\n";
        let records = parse_unix(text).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].path,
            Some(OsText(b"/tmp/s\x1b[31m\x07\n\xff\xfe.sock".to_vec()))
        );
        assert_eq!(records[1].path, Some(OsText(b"/tmp/a\n".to_vec())));
        assert_eq!(records[2].path, None);
        let garbled = b"header\nnot a socket\n";
        assert!(parse_unix(garbled).is_err(), "no path to continue");
    }
}
