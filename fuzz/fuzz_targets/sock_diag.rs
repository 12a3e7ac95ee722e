//! The NETLINK_SOCK_DIAG reply codec (`common::host::sockets::codec`) on any datagram: splitting it
//! into messages always moves on and never reads past the input (the caller stops at the
//! first error, so what follows one is not checked); each socket
//! payload decodes (or not) without a panic, and what decodes says what the fixed header
//! says. A request the codec writes is read back as one message with its sequence number.
//! The dump reader (`common::host::sockets::netlink`), fed the input as a run of datagrams, ends
//! without a panic, its count of records handed over is right, and a dump it abandons part
//! way leaves a new socket behind.
#![no_main]

use std::cell::Cell;
use std::io;
use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;

use common::contract::record::{Family, SocketProto};
use common::host::sockets::codec::{self, Message};
use common::host::sockets::netlink::{DiagSocket, Transport};

/// Plays back datagrams cut from the input, each after a two-byte length; then EAGAIN.
struct Replay<'a> {
    rest: &'a [u8],
    restarts: &'a Cell<usize>,
}

impl Transport for Replay<'_> {
    fn send(&mut self, _request: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn recv(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let Some((head, rest)) = self.rest.split_first_chunk::<2>() else {
            return Err(io::Error::from_raw_os_error(11));
        };
        let len = usize::from(u16::from_le_bytes(*head)).min(rest.len());
        let (datagram, rest) = rest.split_at(len);
        let fits = len.min(buffer.len());
        buffer[..fits].copy_from_slice(&datagram[..fits]);
        self.rest = rest;
        Ok(len)
    }

    fn restart(&mut self) -> io::Result<()> {
        self.restarts.set(self.restarts.get() + 1);
        Ok(())
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let restarts = Cell::new(0);
    let mut socket = DiagSocket::new(Replay {
        rest: data,
        restarts: &restarts,
    });
    let seq = socket.next_seq();
    let request = codec::inet_request(seq, codec::AF_INET, codec::IPPROTO_TCP, 0, !0, None);
    let mut handed = 0;
    let outcome = socket.dump(&request, |payload| {
        codec::parse_inet(payload, SocketProto::Tcp)?;
        handed += 1;
        Ok(ControlFlow::Continue(()))
    });
    if let Err(failed) = &outcome {
        assert_eq!(failed.records, handed);
    }
    let abandoned = matches!(&outcome, Err(failed) if !failed.from_kernel);
    assert_eq!(restarts.get(), usize::from(abandoned));

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
