//! The NETLINK_SOCK_DIAG reply codec (`common::sockets::codec`) on any datagram: splitting it
//! into messages always moves on and never reads past the input (the caller stops at the
//! first error, so what follows one is not checked); each socket
//! payload decodes (or not) without a panic, and what decodes says what the fixed header
//! says. A request the codec writes is read back as one message with its sequence number.
#![no_main]

use libfuzzer_sys::fuzz_target;

use common::record::{Family, SocketProto};
use common::sockets::codec::{self, Message};

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let mut count = 0;
    for message in codec::messages(data) {
        count += 1;
        // Each message has a 16-byte header, so there are at most len / 16 + 1 items.
        assert!(count <= data.len() / 16 + 1);
        let payload = match message {
            Ok(Message::Socket { payload, .. }) => payload,
            Ok(_) | Err(_) => continue,
        };
        let range = data.as_ptr_range();
        assert!(range.contains(&payload.as_ptr()) || payload.is_empty());
        for proto in [SocketProto::Tcp, SocketProto::Udp, SocketProto::Raw] {
            if let Ok(record) = codec::parse_inet(payload, proto) {
                let family = match payload[0] {
                    codec::AF_INET => Family::Ipv4,
                    _ => Family::Ipv6,
                };
                assert_eq!(record.family, family);
                assert_eq!(record.state.number(), payload[1]);
                let port = u16::from_be_bytes([payload[4], payload[5]]);
                assert_eq!(record.local_port, Some(port));
                assert_eq!(record.inode, u64::from(u32_at(payload, 68)));
                serde_json::to_string(&record).expect("a record serialises");
            }
        }
        if let Ok(record) = codec::parse_unix(payload) {
            assert_eq!(record.state.number(), payload[2]);
            assert_eq!(record.inode, u64::from(u32_at(payload, 4)));
        }
    }
    // The writing side: a request, read back.
    if let Some((head, program)) = data.split_first_chunk::<8>() {
        let seq = u32::from_ne_bytes(head[..4].try_into().unwrap());
        let states = u32::from_ne_bytes(head[4..].try_into().unwrap());
        let program = program.get(..program.len().min(1024) & !3);
        let request =
            codec::inet_request(seq, codec::AF_INET, codec::IPPROTO_TCP, 0, states, program);
        let read: Vec<_> = codec::messages(&request).collect();
        assert_eq!(read.len(), 1, "{read:?}");
        match &read[0] {
            Ok(Message::Socket {
                seq: got,
                payload,
                interrupted,
            }) => {
                assert_eq!(*got, seq);
                assert!(!interrupted, "a request has no NLM_F_DUMP_INTR");
                assert_eq!(u32_at(payload, 4), states);
            }
            other => panic!("a request reads back as {other:?}"),
        }
        let request = codec::unix_request(seq, states, codec::UDIAG_SHOW_NAME);
        assert!(matches!(
            codec::messages(&request).next(),
            Some(Ok(Message::Socket { seq: got, .. })) if got == seq
        ));
    }
});
