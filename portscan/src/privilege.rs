//! The sockets that need privilege (raw ICMP for discovery and -A, raw TCP for -A's SYN-ACK
//! and for -sS)
//! are opened before anything is sent, and then the process gives up its privilege, as zmap
//! does: what parses a stranger's packets and banners never runs as root or with a
//! capability, so a flaw in it is worth no more than the user nobody.

use std::io;

use nix::unistd::{Gid, Uid, User, setgroups, setresgid, setresuid};
use rustix::thread::{CapabilitySet, CapabilitySets, set_capabilities, set_no_new_privs};
use socket2::{SockFilter, Socket};

use crate::discovery::{Pinger, run_token};
use crate::os_hint::gather::open_raw;
use crate::syn::SynSockets;
use common::contract::error::{Error, Result};

/// The user a root run becomes when it may: nobody, or its customary ids where the system
/// names no such user.
const NOBODY: &str = "nobody";
const NOBODY_ID: u32 = 65_534;

/// A classic BPF program that takes no packet (BPF_RET | BPF_K, 0): a raw TCP socket gets
/// a copy of every segment the host receives, and the scan's would fill it long before
/// the hint reads one. The hint takes the filter off when it starts.
const TAKE_NOTHING: [SockFilter; 1] = [SockFilter::new(0x06, 0, 0, 0)];

/// What a run needs opened while it still may.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// An ICMP echo socket: host discovery, -sn, -A.
    pub pinger: bool,
    /// Raw TCP sockets, one per family: -A.
    pub raw_tcp: bool,
    /// -sS's raw TCP and ICMP sockets: without them the run cannot be made.
    pub syn: bool,
    /// The run writes a file by name after the scan (--update-baseline's rename), so a root
    /// run keeps its uid, with no capability left, rather than becoming nobody.
    pub keeps_uid: bool,
}

/// The sockets opened with privilege, for the phases that use them.
pub struct Privileged {
    pub pinger: Option<Pinger>,
    /// IPv4's and IPv6's raw TCP socket, or why each could not be had; `None` unless asked.
    pub raw_tcp: [Option<io::Result<Socket>>; 2],
    /// -sS's sockets, if asked for.
    pub syn: Option<SynSockets>,
    /// Who the run now is, for the reader of -v: "nobody", or "root without capabilities".
    pub now: Option<&'static str>,
}

/// Opens what `needs` asks for, then gives up every privilege: root becomes nobody (or,
/// when `keeps_uid`, stays uid 0 with no capability), and a binary given capabilities
/// (setcap) drops them; no later execve could regain any. An unprivileged run is left as
/// it is. A drop that fails ends the run: scanning on with privilege would be worse.
pub fn open_then_drop(needs: Needs) -> Result<Privileged> {
    let pinger = needs.pinger.then(|| Pinger::open(run_token())).flatten();
    let raw_tcp = if needs.raw_tcp {
        let idle = |ipv6| {
            let socket = open_raw(ipv6)?;
            socket.attach_filter(&TAKE_NOTHING)?;
            Ok(socket)
        };
        [Some(idle(false)), Some(idle(true))]
    } else {
        [None, None]
    };
    let syn = if needs.syn {
        Some(SynSockets::open().map_err(|why| match why.kind() {
            io::ErrorKind::PermissionDenied => {
                Error::usage("-sS: needs CAP_NET_RAW (run as root, or use -sT)")
            }
            _ => Error::failed(format!("-sS: opening a raw socket: {why}")),
        })?)
    } else {
        None
    };
    let now = drop_privilege(needs.keeps_uid)
        .map_err(|why| Error::failed(format!("giving up privilege: {why}")))?;
    Ok(Privileged {
        pinger,
        raw_tcp,
        syn,
        now,
    })
}

/// Gives up root or any capability; says who the process now is, `None` if it had nothing
/// to give up.
fn drop_privilege(keeps_uid: bool) -> io::Result<Option<&'static str>> {
    let sets = rustix::thread::capabilities(None)?;
    let root = Uid::effective().is_root() || Uid::current().is_root();
    if !root && sets.permitted.is_empty() && sets.effective.is_empty() {
        return Ok(None);
    }
    set_no_new_privs(true)?;
    if root && !keeps_uid {
        let (uid, gid) = match User::from_name(NOBODY) {
            Ok(Some(user)) => (user.uid, user.gid),
            _ => (Uid::from_raw(NOBODY_ID), Gid::from_raw(NOBODY_ID)),
        };
        // Groups first, then the gid, then the uid: each later step takes away the power
        // the earlier ones need. Leaving uid 0 for good clears every capability set.
        setgroups(&[])?;
        setresgid(gid, gid, gid)?;
        setresuid(uid, uid, uid)?;
        return Ok(Some(NOBODY));
    }
    let none = CapabilitySet::empty();
    set_capabilities(
        None,
        CapabilitySets {
            effective: none,
            permitted: none,
            inheritable: none,
        },
    )?;
    Ok(Some(if root {
        "root without capabilities"
    } else {
        "this user without capabilities"
    }))
}
