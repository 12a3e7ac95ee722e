//! The ports each process listens on (`--ports`): the listening sockets from
//! `common::host::sockets`, their owners from one scan of the fd tables (`common::host::owners`). Only run
//! when asked: the scan reads every fd of every process.

use std::collections::{HashMap, HashSet};

use common::contract::error::{Error, Result};
use common::contract::record::{ListenPort, SocketProto, SocketState};
use common::host::owners::OwnerMap;
use common::host::sockets::{self, Query, Source};

use crate::read::Process;

/// The listening sockets of every process, and the processes whose fds may not be read.
pub struct Ports {
    by_pid: HashMap<u32, Vec<ListenPort>>,
    owners: OwnerMap,
}

/// What is known of one process's ports.
pub enum Of<'a> {
    Known(&'a [ListenPort]),
    /// Its fd table may not be read: it may listen anywhere.
    Denied,
}

impl Ports {
    /// Lists the listening sockets of proctree's network namespace and finds their owners;
    /// the problems are sentences for stderr, after which the answer may be incomplete.
    pub fn read() -> Result<(Self, Vec<String>)> {
        let query = Query {
            protos: vec![SocketProto::Tcp, SocketProto::Udp],
            states: 1 << SocketState::Listen.number() | 1 << SocketState::Unconn.number(),
            ..Query::all()
        };
        let listing = sockets::list(&query, Source::Auto);
        // A TCP socket in CLOSE is one that was never bound or never listened, and a UDP
        // socket on port 0 was never bound: neither receives anything.
        let listening: Vec<_> = listing
            .records
            .iter()
            .filter(|r| match r.proto {
                SocketProto::Tcp => r.state == SocketState::Listen,
                SocketProto::Udp => r.state == SocketState::Unconn,
                SocketProto::Raw | SocketProto::Unix => false,
            })
            .filter(|r| r.inode != 0 && r.local_port.is_some_and(|p| p != 0))
            .collect();
        let wanted: HashSet<u64> = listening.iter().map(|r| r.inode).collect();
        let owners = OwnerMap::scan(Some(&wanted)).map_err(|e| Error::input("reading /proc", e))?;
        let mut by_pid: HashMap<u32, Vec<ListenPort>> = HashMap::new();
        for record in listening {
            let (Some(address), Some(port)) = (record.local_address, record.local_port) else {
                continue;
            };
            let port = ListenPort {
                proto: record.proto,
                address,
                port,
            };
            for owner in owners.owners(record.inode) {
                by_pid.entry(owner.pid).or_default().push(port);
            }
        }
        for ports in by_pid.values_mut() {
            ports.sort_unstable_by_key(|p| (p.proto, p.port, p.address));
            // One socket in two fds of a process (dup, or SO_REUSEPORT twins) is one port.
            ports.dedup();
        }
        Ok((Self { by_pid, owners }, listing.problems))
    }

    pub fn of(&self, process: &Process) -> Of<'_> {
        let pid = process.stat.pid;
        // A kernel thread holds no user-space fds, so there is nothing to be denied.
        if self.owners.is_denied(pid) && !process.stat.is_kthread() {
            Of::Denied
        } else {
            Of::Known(self.by_pid.get(&pid).map_or(&[], Vec::as_slice))
        }
    }
}
