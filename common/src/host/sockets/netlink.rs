//! The NETLINK_SOCK_DIAG transport: one socket, one dump request at a time, the reply read
//! until its DONE message. Kernel errors, including one that cuts a dump short, come back
//! as errors, never as a shorter list. The reading is generic over the two system calls
//! ([`Transport`]), so that it is tested on byte streams that fail where a kernel could.

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::codec::{self, Message};

/// Large enough for the kernel's dump batches (it fills up to about 32 KiB per datagram).
const BUFFER: usize = 64 * 1024;

/// Where a dump's request goes and its reply comes from.
pub trait Transport {
    fn send(&mut self, request: &[u8]) -> io::Result<()>;

    /// Reads one datagram into `buffer` and returns its length, which is larger than the
    /// buffer when the datagram did not fit (and was cut).
    fn recv(&mut self, buffer: &mut [u8]) -> io::Result<usize>;

    /// Starts afresh after a dump was abandoned part way: the kernel would still be in that
    /// dump, and refuses the next request on the socket with EBUSY until it is read out.
    fn restart(&mut self) -> io::Result<()>;
}

/// A NETLINK_SOCK_DIAG socket in the caller's network namespace.
pub struct Kernel(OwnedFd);

impl Kernel {
    fn open() -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        Ok(Self(fd))
    }
}

impl Transport for Kernel {
    fn send(&mut self, request: &[u8]) -> io::Result<()> {
        sendto(
            self.0.as_raw_fd(),
            request,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        Ok(())
    }

    fn recv(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            // MSG_TRUNC: a netlink socket then returns the datagram's real length.
            match recv(self.0.as_raw_fd(), buffer, MsgFlags::MSG_TRUNC) {
                Err(Errno::EINTR) => {}
                other => return Ok(other?),
            }
        }
    }

    fn restart(&mut self) -> io::Result<()> {
        *self = Self::open()?;
        Ok(())
    }
}

/// A sock_diag conversation: requests numbered in turn, replies read into one buffer.
pub struct DiagSocket<T = Kernel> {
    transport: T,
    seq: u32,
    buffer: Vec<u8>,
}

/// How a dump that reached its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dumped {
    Complete,
    /// The kernel flagged the reply NLM_F_DUMP_INTR: its table changed while it was being
    /// dumped, so a socket may be missing or repeated. Another dump may come out whole.
    Interrupted,
    /// The caller asked for no more records.
    Stopped,
}

/// A failed dump, and how many socket records it had handed over before failing: none
/// means a caller can fall back to another source without having listed anything twice.
#[derive(Debug)]
pub struct DumpError {
    pub error: io::Error,
    pub records: usize,
    /// The kernel sent the error as its answer (and so has ended the dump).
    pub from_kernel: bool,
}

impl DiagSocket<Kernel> {
    pub fn open() -> io::Result<Self> {
        Ok(Self::new(Kernel::open()?))
    }
}

impl<T: Transport> DiagSocket<T> {
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            seq: 0,
            buffer: vec![0; BUFFER],
        }
    }

    /// The sequence number the next request should carry.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `request` (built with the sequence number of [`DiagSocket::next_seq`]) and hands
    /// each socket payload of the reply to `each`, until it breaks.
    pub fn dump(
        &mut self,
        request: &[u8],
        each: impl FnMut(&[u8]) -> Result<ControlFlow<()>, codec::DecodeError>,
    ) -> Result<Dumped, DumpError> {
        let outcome = self.read_dump(request, each);
        // The kernel's own error ends its dump; a failure of ours, or a stop, leaves it part
        // way. Should a new socket fail to open, the next dump fails on the old one and is
        // reported.
        let abandoned = match &outcome {
            Ok(dumped) => *dumped == Dumped::Stopped,
            Err(failed) => !failed.from_kernel,
        };
        if abandoned {
            let _ = self.transport.restart();
        }
        outcome
    }

    fn read_dump(
        &mut self,
        request: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<ControlFlow<()>, codec::DecodeError>,
    ) -> Result<Dumped, DumpError> {
        let seq = self.seq;
        let mut records = 0;
        let mut interrupted = false;
        let fail = |error: io::Error, records: usize| DumpError {
            error,
            records,
            from_kernel: false,
        };
        self.transport
            .send(request)
            .map_err(|error| fail(error, 0))?;
        loop {
            let len = self
                .transport
                .recv(&mut self.buffer)
                .map_err(|error| fail(error, records))?;
            if len == 0 {
                return Err(fail(
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the dump ended without DONE"),
                    records,
                ));
            }
            if len > self.buffer.len() {
                let why = format!(
                    "a reply of {len} bytes was cut to the {}-byte buffer",
                    self.buffer.len()
                );
                return Err(fail(
                    io::Error::new(io::ErrorKind::InvalidData, why),
                    records,
                ));
            }
            for message in codec::messages(&self.buffer[..len]) {
                let message = message.map_err(|e| fail(invalid(&e), records))?;
                match message {
                    Message::Socket {
                        seq: got,
                        payload,
                        interrupted: flagged,
                    } if got == seq => {
                        let flow = each(payload).map_err(|e| fail(invalid(&e), records))?;
                        records += 1;
                        interrupted |= flagged;
                        if flow.is_break() {
                            return Ok(Dumped::Stopped);
                        }
                    }
                    Message::Done {
                        interrupted: flagged,
                    } => {
                        return Ok(if interrupted || flagged {
                            Dumped::Interrupted
                        } else {
                            Dumped::Complete
                        });
                    }
                    Message::Error(errno) => {
                        return Err(DumpError {
                            error: io::Error::from_raw_os_error(errno),
                            records,
                            from_kernel: true,
                        });
                    }
                    Message::Socket { .. } | Message::Other => {}
                }
            }
        }
    }
}

fn invalid(error: &codec::DecodeError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("undecodable sock_diag reply: {}", error.0),
    )
}

/// Replies made message by message, as the kernel lays them out, and a transport that plays
/// them back: the tests of a dump's failures, here and in `sockets`.
#[cfg(test)]
pub(crate) mod script {
    use std::collections::VecDeque;
    use std::io;

    use super::Transport;

    pub(crate) use super::codec::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR};
    pub const NLM_F_MULTI: u16 = super::codec::narrow_u16(nix::libc::NLM_F_MULTI);

    /// One netlink message: header, then `body`, padded to four bytes.
    pub fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = super::codec::message(kind, flags, seq, body);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    /// An `inet_diag_msg` for an established IPv4 TCP socket 127.0.0.1:`port` with `inode`,
    /// with the SHUTDOWN attribute the kernel adds to each.
    pub fn tcp(seq: u32, flags: u16, port: u16, inode: u32) -> Vec<u8> {
        let mut body = vec![0; 72];
        body[0] = super::codec::AF_INET;
        body[1] = 1; // TCP_ESTABLISHED
        body[4..6].copy_from_slice(&port.to_be_bytes());
        body[6..8].copy_from_slice(&40000u16.to_be_bytes());
        body[8..12].copy_from_slice(&[127, 0, 0, 1]);
        body[24..28].copy_from_slice(&[127, 0, 0, 1]);
        body[44..48].copy_from_slice(&inode.to_ne_bytes());
        body[68..72].copy_from_slice(&inode.to_ne_bytes());
        body.extend_from_slice(&[5, 0, 8, 0, 0, 0, 0, 0]);
        message(
            super::codec::SOCK_DIAG_BY_FAMILY,
            flags | NLM_F_MULTI,
            seq,
            &body,
        )
    }

    /// The end of a dump: a DONE message carrying `errno` (0, or negative for a failure).
    pub fn done(seq: u32, flags: u16, errno: i32) -> Vec<u8> {
        message(NLMSG_DONE, flags | NLM_F_MULTI, seq, &errno.to_ne_bytes())
    }

    /// An NLMSG_ERROR with a negative `errno` and the request's header echoed after it.
    pub fn error(seq: u32, errno: i32) -> Vec<u8> {
        let mut body = errno.to_ne_bytes().to_vec();
        body.extend_from_slice(&[0; 16]);
        message(NLMSG_ERROR, 0, seq, &body)
    }

    /// What one `recv` gives.
    pub enum Reply {
        Datagram(Vec<u8>),
        Fails(i32),
    }

    /// Plays back `replies`, one per `recv`; past their end, a `recv` fails with EAGAIN as
    /// a non-blocking socket with nothing to read would.
    #[derive(Default)]
    pub struct Script {
        pub replies: VecDeque<Reply>,
        pub requests: Vec<Vec<u8>>,
        pub restarts: usize,
    }

    impl Script {
        pub fn new(replies: impl IntoIterator<Item = Reply>) -> Self {
            Self {
                replies: replies.into_iter().collect(),
                ..Self::default()
            }
        }
    }

    impl Transport for Script {
        fn send(&mut self, request: &[u8]) -> io::Result<()> {
            self.requests.push(request.to_vec());
            Ok(())
        }

        fn recv(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            match self.replies.pop_front() {
                Some(Reply::Datagram(bytes)) => {
                    let fits = bytes.len().min(buffer.len());
                    buffer[..fits].copy_from_slice(&bytes[..fits]);
                    Ok(bytes.len())
                }
                Some(Reply::Fails(errno)) => Err(io::Error::from_raw_os_error(errno)),
                None => Err(io::Error::from_raw_os_error(11)),
            }
        }

        fn restart(&mut self) -> io::Result<()> {
            self.restarts += 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::script::{NLM_F_DUMP_INTR, Reply, Script, done, error, tcp};
    use super::*;
    use crate::contract::record::SocketProto;

    use nix::libc::{EIO, ENOBUFS};

    /// Runs one dump request over `replies`; the inodes of the records handed over, and the
    /// outcome. A dump the kernel did not end itself must leave a new socket behind.
    fn dump(replies: Vec<Reply>) -> (Vec<u64>, Result<Dumped, DumpError>) {
        let mut socket = DiagSocket::new(Script::new(replies));
        let seq = socket.next_seq();
        let request = codec::inet_request(seq, codec::AF_INET, codec::IPPROTO_TCP, 0, !0, None);
        let mut inodes = Vec::new();
        let outcome = socket.dump(&request, |payload| {
            inodes.push(codec::parse_inet(payload, SocketProto::Tcp)?.inode);
            Ok(ControlFlow::Continue(()))
        });
        assert_eq!(socket.transport.requests, [request]);
        let restarted = matches!(&outcome, Err(failed) if !failed.from_kernel);
        assert_eq!(socket.transport.restarts, usize::from(restarted));
        (inodes, outcome)
    }

    fn datagram(messages: &[Vec<u8>]) -> Reply {
        Reply::Datagram(messages.concat())
    }

    fn failure(outcome: Result<Dumped, DumpError>) -> DumpError {
        match outcome {
            Ok(dumped) => panic!("the dump went through: {dumped:?}"),
            Err(failed) => failed,
        }
    }

    #[test]
    fn a_dump_over_several_datagrams_comes_whole() {
        let (inodes, outcome) = dump(vec![
            datagram(&[tcp(1, 0, 80, 11), tcp(1, 0, 81, 12)]),
            // A late answer to an earlier request is not part of this dump.
            datagram(&[tcp(0, 0, 82, 99), tcp(1, 0, 83, 13)]),
            datagram(&[done(1, 0, 0)]),
        ]);
        assert_eq!(inodes, [11, 12, 13]);
        assert_eq!(outcome.unwrap(), Dumped::Complete);
    }

    #[test]
    fn an_error_after_some_records_fails_the_dump_with_the_count() {
        // The kernel ends a dump that fails part way with the errno in its DONE message...
        let (inodes, outcome) = dump(vec![
            datagram(&[tcp(1, 0, 80, 11), tcp(1, 0, 81, 12)]),
            datagram(&[done(1, 0, -ENOBUFS)]),
        ]);
        assert_eq!(inodes, [11, 12]);
        let failed = failure(outcome);
        assert_eq!(failed.records, 2);
        assert_eq!(failed.error.raw_os_error(), Some(ENOBUFS));
        assert!(
            failed.from_kernel,
            "the kernel ended the dump: the socket stays"
        );
        // ... or with an NLMSG_ERROR, even in the datagram that carried records.
        let (inodes, outcome) = dump(vec![datagram(&[
            tcp(1, 0, 80, 11),
            error(1, -EIO),
            tcp(1, 0, 81, 12),
        ])]);
        assert_eq!(inodes, [11]);
        let failed = failure(outcome);
        assert_eq!(
            (failed.records, failed.error.raw_os_error()),
            (1, Some(EIO))
        );
    }

    #[test]
    fn a_refusal_up_front_has_no_records() {
        let (inodes, outcome) = dump(vec![datagram(&[error(1, -2)])]);
        assert!(inodes.is_empty());
        let failed = failure(outcome);
        assert_eq!((failed.records, failed.error.raw_os_error()), (0, Some(2)));
    }

    #[test]
    fn a_failed_recv_mid_dump_is_the_dumps_error() {
        let (inodes, outcome) = dump(vec![
            datagram(&[tcp(1, 0, 80, 11)]),
            Reply::Fails(ENOBUFS),
            datagram(&[done(1, 0, 0)]),
        ]);
        assert_eq!(inodes, [11]);
        let failed = failure(outcome);
        assert_eq!(
            (failed.records, failed.error.raw_os_error()),
            (1, Some(ENOBUFS))
        );
    }

    #[test]
    fn a_cut_message_fails_the_dump() {
        // A message whose header claims more bytes than the datagram holds.
        let mut cut = [tcp(1, 0, 80, 11), tcp(1, 0, 81, 12)].concat();
        cut.truncate(cut.len() - 10);
        let (inodes, outcome) = dump(vec![Reply::Datagram(cut), datagram(&[done(1, 0, 0)])]);
        assert_eq!(inodes, [11]);
        let failed = failure(outcome);
        assert_eq!(failed.records, 1);
        assert_eq!(failed.error.kind(), io::ErrorKind::InvalidData);
        assert!(
            failed.error.to_string().contains("does not fit"),
            "{}",
            failed.error
        );
        // A record too short for its fixed header.
        let mut short = tcp(1, 0, 80, 11);
        short.truncate(16 + 40);
        short[..4].copy_from_slice(&56u32.to_ne_bytes());
        let (inodes, outcome) = dump(vec![datagram(&[tcp(1, 0, 79, 10), short])]);
        assert_eq!(inodes, [10]);
        let failed = failure(outcome);
        assert_eq!(
            (failed.records, failed.error.kind()),
            (1, io::ErrorKind::InvalidData)
        );
        assert!(
            failed.error.to_string().contains("inet_diag_msg"),
            "{}",
            failed.error
        );
    }

    #[test]
    fn a_datagram_larger_than_the_buffer_is_an_error_not_a_shorter_list() {
        let records: Vec<Vec<u8>> = (0..800).map(|i| tcp(1, 0, 80, 1000 + i)).collect();
        let (inodes, outcome) = dump(vec![datagram(&records)]);
        assert!(inodes.is_empty(), "nothing is taken from a cut datagram");
        let failed = failure(outcome);
        assert_eq!(failed.error.kind(), io::ErrorKind::InvalidData);
        assert!(
            failed.error.to_string().contains("was cut"),
            "{}",
            failed.error
        );
    }

    #[test]
    fn a_reply_that_stops_without_done_is_an_error() {
        let (inodes, outcome) = dump(vec![
            datagram(&[tcp(1, 0, 80, 11)]),
            Reply::Datagram(Vec::new()),
        ]);
        assert_eq!(inodes, [11]);
        let failed = failure(outcome);
        assert_eq!(failed.error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_caller_can_stop_a_dump_and_the_socket_starts_afresh() {
        let mut socket = DiagSocket::new(Script::new(vec![
            datagram(&[tcp(1, 0, 80, 11), tcp(1, 0, 81, 12), tcp(1, 0, 82, 13)]),
            datagram(&[done(1, 0, 0)]),
        ]));
        let seq = socket.next_seq();
        let request = codec::inet_request(seq, codec::AF_INET, codec::IPPROTO_TCP, 0, !0, None);
        let mut inodes = Vec::new();
        let outcome = socket.dump(&request, |payload| {
            inodes.push(codec::parse_inet(payload, SocketProto::Tcp)?.inode);
            Ok(if inodes.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        });
        assert_eq!(outcome.unwrap(), Dumped::Stopped);
        assert_eq!(inodes, [11, 12]);
        assert_eq!(socket.transport.restarts, 1);
    }

    #[test]
    fn an_interrupted_dump_is_told_apart() {
        // The flag may come on any record, or only on DONE.
        let (inodes, outcome) = dump(vec![
            datagram(&[tcp(1, 0, 80, 11), tcp(1, NLM_F_DUMP_INTR, 81, 12)]),
            datagram(&[done(1, 0, 0)]),
        ]);
        assert_eq!(inodes, [11, 12]);
        assert_eq!(outcome.unwrap(), Dumped::Interrupted);
        let (_, outcome) = dump(vec![datagram(&[
            tcp(1, 0, 80, 11),
            done(1, NLM_F_DUMP_INTR, 0),
        ])]);
        assert_eq!(outcome.unwrap(), Dumped::Interrupted);
    }
}
