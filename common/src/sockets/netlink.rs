//! The NETLINK_SOCK_DIAG transport: one socket, one dump request at a time, the reply read
//! until its DONE message. Kernel errors, including one that cuts a dump short, come back
//! as errors, never as a shorter list.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::codec::{self, Message};

/// Large enough for the kernel's dump batches (it fills up to about 32 KiB per datagram).
const BUFFER: usize = 64 * 1024;

/// A sock_diag socket in the caller's network namespace.
pub struct DiagSocket {
    fd: OwnedFd,
    seq: u32,
    buffer: Vec<u8>,
}

/// A failed dump: whether any record had come before it tells a caller whether falling back
/// to another source can still give a complete list.
#[derive(Debug)]
pub struct DumpError {
    pub error: io::Error,
    pub records_seen: bool,
}

impl DiagSocket {
    pub fn open() -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        Ok(Self {
            fd,
            seq: 0,
            buffer: vec![0; BUFFER],
        })
    }

    /// The sequence number the next request should carry.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `request` (built with the sequence number of [`DiagSocket::next_seq`]) and hands
    /// each socket payload of the reply to `each`.
    pub fn dump(
        &mut self,
        request: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), codec::DecodeError>,
    ) -> Result<(), DumpError> {
        let seq = self.seq;
        let mut records_seen = false;
        let fail = |error: io::Error, records_seen: bool| DumpError {
            error,
            records_seen,
        };
        sendto(
            self.fd.as_raw_fd(),
            request,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(|e| fail(e.into(), false))?;
        loop {
            let len = loop {
                match recv(self.fd.as_raw_fd(), &mut self.buffer, MsgFlags::empty()) {
                    Err(Errno::EINTR) => {}
                    other => break other.map_err(|e| fail(e.into(), records_seen))?,
                }
            };
            if len == 0 {
                return Err(fail(
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the dump ended without DONE"),
                    records_seen,
                ));
            }
            for message in codec::messages(&self.buffer[..len]) {
                let message = message.map_err(|e| fail(invalid(&e), records_seen))?;
                match message {
                    Message::Socket { seq: got, payload } if got == seq => {
                        each(payload).map_err(|e| fail(invalid(&e), true))?;
                        records_seen = true;
                    }
                    Message::Done => return Ok(()),
                    Message::Error(errno) => {
                        return Err(fail(io::Error::from_raw_os_error(errno), records_seen));
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
