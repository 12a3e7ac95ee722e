//! The socket record: one socket as sockls lists it, with its owning process when asked.
//! A socket held by several processes (after a fork, or passed over a UNIX socket) gives one
//! record per owner, as lsof does, so that records stay flat.

use std::fmt;
use std::net::IpAddr;

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::contract::baseline::Baselined;
use crate::contract::output::{Record, TextRow};
use crate::contract::record::OsText;

/// One socket, or one (socket, owner) pair when owners are asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketRecord {
    pub proto: SocketProto,
    pub family: Family,
    pub sock_type: SockType,
    pub state: SocketState,
    /// None for UNIX sockets.
    pub local_address: Option<IpAddr>,
    /// For raw sockets, the IP protocol number, as the kernel reports it.
    pub local_port: Option<u16>,
    pub remote_address: Option<IpAddr>,
    pub remote_port: Option<u16>,
    /// Bytes waiting to be read; for a listening socket, connections waiting to be accepted.
    pub recv_q: u32,
    /// Bytes not yet acknowledged; for a listening socket, the accept backlog.
    pub send_q: u32,
    pub uid: Option<u32>,
    /// The name of `uid`, where the user database knows it.
    pub user: Option<String>,
    pub inode: u64,
    /// The kernel's socket cookie: a key that is not reused while the host runs (netlink
    /// source only).
    pub cookie: Option<u64>,
    /// UNIX sockets: the bound path, bytes to the kernel; abstract names start with `@`.
    pub path: Option<OsText>,
    /// UNIX sockets: the inode of the peer socket (netlink source only).
    pub peer: Option<u64>,
    /// With owners asked for: whether one was found, and why not.
    pub owner: Option<OwnerStatus>,
    pub pid: Option<u32>,
    /// The owner's name (/proc/PID/comm), bytes that the process chose.
    pub comm: Option<OsText>,
    pub fd: Option<u32>,
    /// TCP internals (`-i`): smoothed round-trip time and its variance, in milliseconds.
    pub rtt_ms: Option<f64>,
    pub rttvar_ms: Option<f64>,
    /// Congestion window, in segments.
    pub cwnd: Option<u32>,
    /// Retransmitted segments over the connection's life.
    pub retransmits: Option<u32>,
    /// Delivery rate estimate, in bytes per second.
    pub delivery_rate: Option<u64>,
    /// The congestion control algorithm (cubic, bbr, ...).
    pub congestion: Option<String>,
    /// Socket memory (`-m`), in bytes, as the kernel's sk_meminfo reports it.
    pub rmem_alloc: Option<u32>,
    pub rcvbuf: Option<u32>,
    pub wmem_alloc: Option<u32>,
    pub sndbuf: Option<u32>,
    pub fwd_alloc: Option<u32>,
    pub wmem_queued: Option<u32>,
    pub optmem: Option<u32>,
    pub backlog: Option<u32>,
    /// Packets dropped before they reached the socket's queue.
    pub drops: Option<u32>,
    /// With `--netns` or `--all-netns`: the network namespace, by name where it has one
    /// (`ip netns`), else `pid:N`, the path given, or `net:[INODE]`.
    pub netns: Option<String>,
    /// `-o`, TCP: the timer pending on the socket, if any (the kernel's idiag_timer).
    pub timer: Option<SocketTimer>,
    /// `-o`: when that timer fires, in milliseconds from the dump (idiag_expires).
    pub timer_expires_ms: Option<u32>,
    /// `-o`: retransmissions (or, for `keepalive` and `persist`, probes) sent unanswered so
    /// far (idiag_retrans).
    pub timer_retrans: Option<u8>,
    /// IPv6 sockets, from netlink: whether IPV6_V6ONLY is set (INET_DIAG_SKV6ONLY). A socket
    /// bound to `::` without it takes IPv4 too, and text shows its address as `*`, as ss does.
    pub v6only: Option<bool>,
}

/// The timer pending on a TCP socket, named as `ss -o` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketTimer {
    /// The retransmission timer (also the loss probe and reordering timers).
    On,
    Keepalive,
    /// The time-wait timer.
    Timewait,
    /// The zero window probe timer.
    Persist,
    /// A number this version does not know.
    Unknown,
}

impl SocketTimer {
    /// The kernel's idiag_timer: 0 is none.
    pub fn from_number(number: u8) -> Option<Self> {
        match number {
            0 => None,
            1 => Some(Self::On),
            2 => Some(Self::Keepalive),
            3 => Some(Self::Timewait),
            4 => Some(Self::Persist),
            _ => Some(Self::Unknown),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Keepalive => "keepalive",
            Self::Timewait => "timewait",
            Self::Persist => "persist",
            Self::Unknown => "unknown",
        }
    }
}

/// The protocol of a socket, as `ss` and netstat name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketProto {
    Tcp,
    Udp,
    Raw,
    Unix,
}

/// The address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
    Unix,
}

/// The socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
    Raw,
}

/// A socket state. TCP sockets go through all of them; the others use `established`
/// (connected), `listen` and `unconn` (not connected), as in `ss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SocketState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    /// Closed or never connected (the kernel's TCP_CLOSE).
    Unconn,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
}

impl SocketState {
    pub const ALL: [SocketState; 12] = [
        Self::Established,
        Self::SynSent,
        Self::SynRecv,
        Self::FinWait1,
        Self::FinWait2,
        Self::TimeWait,
        Self::Unconn,
        Self::CloseWait,
        Self::LastAck,
        Self::Listen,
        Self::Closing,
        Self::NewSynRecv,
    ];

    /// The kernel's number for the state (include/net/tcp_states.h).
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_number(number: u8) -> Option<Self> {
        Self::ALL.get(usize::from(number).checked_sub(1)?).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Established => "established",
            Self::SynSent => "syn-sent",
            Self::SynRecv => "syn-recv",
            Self::FinWait1 => "fin-wait-1",
            Self::FinWait2 => "fin-wait-2",
            Self::TimeWait => "time-wait",
            Self::Unconn => "unconn",
            Self::CloseWait => "close-wait",
            Self::LastAck => "last-ack",
            Self::Listen => "listen",
            Self::Closing => "closing",
            Self::NewSynRecv => "new-syn-recv",
        }
    }
}

impl fmt::Display for SocketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the owner of a socket is known, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerStatus {
    /// `pid`, `comm` and `fd` name the owner.
    Known,
    /// No process holds the socket (time-wait, orphaned, or only the kernel holds it).
    None,
    /// Not found, and some processes' fds could not be read: one of them may hold it.
    Denied,
    /// The owning process ended while it was being read.
    Gone,
}

impl OwnerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Known => "known",
            Self::None => "none",
            Self::Denied => "denied",
            Self::Gone => "gone",
        }
    }
}

impl SocketProto {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Raw => "raw",
            Self::Unix => "unix",
        }
    }
}

impl fmt::Display for SocketProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SockType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Dgram => "dgram",
            Self::Seqpacket => "seqpacket",
            Self::Raw => "raw",
        }
    }
}

/// `ADDR:PORT`, `[ADDR]:PORT` for IPv6, `*` for a port 0 (no peer, or any); `*` for the
/// address of a dual-stack socket's `::` (the third field), which is any address of either
/// family, as ss shows it.
struct Endpoint(Option<IpAddr>, Option<u16>, bool);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(IpAddr::V6(address)) if self.2 && address.is_unspecified() => f.write_str("*:")?,
            Some(IpAddr::V6(address)) => write!(f, "[{address}]:")?,
            Some(address) => write!(f, "{address}:")?,
            None => f.write_str("*:")?,
        }
        match self.1 {
            Some(port) if port != 0 => write!(f, "{port}"),
            _ => f.write_str("*"),
        }
    }
}

impl SocketRecord {
    /// A record with only the kernel's identity of the socket filled in; the lister sets the
    /// rest.
    pub fn new(
        proto: SocketProto,
        family: Family,
        sock_type: SockType,
        state: SocketState,
    ) -> Self {
        Self {
            proto,
            family,
            sock_type,
            state,
            local_address: None,
            local_port: None,
            remote_address: None,
            remote_port: None,
            recv_q: 0,
            send_q: 0,
            uid: None,
            user: None,
            inode: 0,
            cookie: None,
            path: None,
            peer: None,
            owner: None,
            pid: None,
            comm: None,
            fd: None,
            rtt_ms: None,
            rttvar_ms: None,
            cwnd: None,
            retransmits: None,
            delivery_rate: None,
            congestion: None,
            rmem_alloc: None,
            rcvbuf: None,
            wmem_alloc: None,
            sndbuf: None,
            fwd_alloc: None,
            wmem_queued: None,
            optmem: None,
            backlog: None,
            drops: None,
            netns: None,
            timer: None,
            timer_expires_ms: None,
            timer_retrans: None,
            v6only: None,
        }
    }

    /// The text of the UNIX socket's type as `ss` shows it in its first column.
    fn text_proto(&self) -> &'static str {
        match (self.proto, self.sock_type) {
            (SocketProto::Unix, SockType::Stream) => "u_str",
            (SocketProto::Unix, SockType::Dgram) => "u_dgr",
            (SocketProto::Unix, _) => "u_seq",
            (proto, _) => proto.as_str(),
        }
    }
}

impl SocketRecord {
    /// The listener `--expect-listen` wanted on `port` and did not find: only its protocol,
    /// port and state are known, the rest is absent.
    pub fn expected_listener(proto: crate::services::ports::Proto, port: u16) -> Self {
        let mut record = if proto == crate::services::ports::Proto::Udp {
            Self::new(
                SocketProto::Udp,
                Family::Ipv4,
                SockType::Dgram,
                SocketState::Unconn,
            )
        } else {
            Self::new(
                SocketProto::Tcp,
                Family::Ipv4,
                SockType::Stream,
                SocketState::Listen,
            )
        };
        record.local_port = Some(port);
        record
    }
}

/// A socket is the same from run to run by its local end (protocol, namespace, address
/// and port, or path) and its owner's command, never by its inode, cookie or the owner's
/// pid, which a restart changes; its state and user are compared.
impl Baselined for SocketRecord {
    const COMPARED: &'static [&'static str] = &["state", "user", "uid"];
    const NAME: &'static str = "socket";
    const TOOL: &'static str = "sockls";

    fn identity(&self) -> String {
        let path = self
            .path
            .as_ref()
            .map(|path| path.as_bytes().escape_ascii().to_string());
        let comm = self
            .comm
            .as_ref()
            .map(|comm| comm.as_bytes().escape_ascii().to_string());
        format!(
            "{} {:?} {:?} {:?} {:?} {:?}",
            self.text_proto(),
            self.netns,
            self.local_address,
            self.local_port,
            path,
            comm
        )
    }
}

impl Record for SocketRecord {
    /// `local` and `remote` join address and port (`ADDR:PORT`; for UNIX sockets the path and
    /// the peer inode); `owner` is `pid/fd` when known, else the owner status.
    const TEXT_HEADER: &'static [&'static str] = &[
        "proto", "state", "recv_q", "send_q", "local", "remote", "user", "inode", "owner", "comm",
        "netns",
    ];

    fn write_text(&self, row: &mut TextRow) {
        row.field(self.text_proto())
            .field(self.state)
            .field(self.recv_q)
            .field(self.send_q);
        if self.proto == SocketProto::Unix {
            row.bytes(self.path.as_ref().map_or(b"*", OsText::as_bytes))
                .optional(self.peer.filter(|&peer| peer != 0));
        } else {
            let dual_stack = self.v6only == Some(false);
            row.field(Endpoint(self.local_address, self.local_port, dual_stack))
                .field(Endpoint(self.remote_address, self.remote_port, dual_stack));
        }
        match (&self.user, self.uid) {
            (Some(user), _) => row.field(user),
            (None, uid) => row.optional(uid),
        };
        row.field(self.inode);
        match (self.owner, self.pid, self.fd) {
            (Some(OwnerStatus::Known), Some(pid), Some(fd)) => {
                row.field(format_args!("{pid}/{fd}"))
            }
            (Some(status), _, _) => row.field(status.as_str()),
            (None, _, _) => row.optional(None::<u32>),
        };
        // An absent comm is empty bytes, which `bytes` shows as `-`, as for a field without
        // a value.
        row.bytes(self.comm.as_ref().map_or(b"", OsText::as_bytes))
            .optional(self.netns.as_ref());
    }

    /// CSV cells hold names and paths escaped as in text, each cell one line.
    fn csv(&self) -> impl Serialize + '_ {
        CsvSocket(self)
    }
}

/// [`SocketRecord`] for CSV: the byte strings (`path`, `comm`) escaped as in text, as
/// proctree's CSV has them, so that a newline or an escape sequence in a name reaches no
/// terminal or CSV reader raw, and no byte is lost. The other fields as in JSON.
pub struct CsvSocket<'a>(&'a SocketRecord);

impl Serialize for CsvSocket<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut s = serializer.serialize_struct("SocketRecord", 40)?;
        s.serialize_field("proto", &r.proto)?;
        s.serialize_field("family", &r.family)?;
        s.serialize_field("sock_type", &r.sock_type)?;
        s.serialize_field("state", &r.state)?;
        s.serialize_field("local_address", &r.local_address)?;
        s.serialize_field("local_port", &r.local_port)?;
        s.serialize_field("remote_address", &r.remote_address)?;
        s.serialize_field("remote_port", &r.remote_port)?;
        s.serialize_field("recv_q", &r.recv_q)?;
        s.serialize_field("send_q", &r.send_q)?;
        s.serialize_field("uid", &r.uid)?;
        s.serialize_field("user", &r.user)?;
        s.serialize_field("inode", &r.inode)?;
        s.serialize_field("cookie", &r.cookie)?;
        s.serialize_field("path", &r.path.as_ref().map(OsText::escaped))?;
        s.serialize_field("peer", &r.peer)?;
        s.serialize_field("owner", &r.owner)?;
        s.serialize_field("pid", &r.pid)?;
        s.serialize_field("comm", &r.comm.as_ref().map(OsText::escaped))?;
        s.serialize_field("fd", &r.fd)?;
        s.serialize_field("rtt_ms", &r.rtt_ms)?;
        s.serialize_field("rttvar_ms", &r.rttvar_ms)?;
        s.serialize_field("cwnd", &r.cwnd)?;
        s.serialize_field("retransmits", &r.retransmits)?;
        s.serialize_field("delivery_rate", &r.delivery_rate)?;
        s.serialize_field("congestion", &r.congestion)?;
        s.serialize_field("rmem_alloc", &r.rmem_alloc)?;
        s.serialize_field("rcvbuf", &r.rcvbuf)?;
        s.serialize_field("wmem_alloc", &r.wmem_alloc)?;
        s.serialize_field("sndbuf", &r.sndbuf)?;
        s.serialize_field("fwd_alloc", &r.fwd_alloc)?;
        s.serialize_field("wmem_queued", &r.wmem_queued)?;
        s.serialize_field("optmem", &r.optmem)?;
        s.serialize_field("backlog", &r.backlog)?;
        s.serialize_field("drops", &r.drops)?;
        s.serialize_field("netns", &r.netns)?;
        s.serialize_field("timer", &r.timer)?;
        s.serialize_field("timer_expires_ms", &r.timer_expires_ms)?;
        s.serialize_field("timer_retrans", &r.timer_retrans)?;
        s.serialize_field("v6only", &r.v6only)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record::test_support::text_of;

    fn listener() -> SocketRecord {
        let mut record = SocketRecord::new(
            SocketProto::Tcp,
            Family::Ipv6,
            SockType::Stream,
            SocketState::Listen,
        );
        record.local_address = Some("::1".parse().unwrap());
        record.local_port = Some(22);
        record.remote_address = Some("::".parse().unwrap());
        record.remote_port = Some(0);
        record.send_q = 128;
        record.uid = Some(0);
        record.user = Some("root".into());
        record.inode = 4242;
        record.cookie = Some(77);
        record
    }

    #[test]
    fn text_has_the_proto_token_and_bracketed_ipv6() {
        let mut record = listener();
        assert_eq!(
            text_of(&record),
            "tcp listen 0 128 [::1]:22 [::]:* root 4242 - - -\n"
        );
        record.owner = Some(OwnerStatus::Known);
        record.pid = Some(10);
        record.fd = Some(3);
        record.comm = Some(OsText(b"ssh d".to_vec()));
        assert_eq!(
            text_of(&record),
            "tcp listen 0 128 [::1]:22 [::]:* root 4242 10/3 ssh\\x20d -\n"
        );
    }

    #[test]
    fn a_dual_stack_sockets_any_address_is_a_star_as_in_ss() {
        let mut record = listener();
        record.local_address = Some("::".parse().unwrap());
        assert_eq!(
            text_of(&record),
            "tcp listen 0 128 [::]:22 [::]:* root 4242 - - -\n",
            "v6only unknown (/proc/net)"
        );
        record.v6only = Some(true);
        assert!(text_of(&record).starts_with("tcp listen 0 128 [::]:22 [::]:* "));
        record.v6only = Some(false);
        assert!(text_of(&record).starts_with("tcp listen 0 128 *:22 *:* "));
        // Only the unspecified address stands for both families.
        record.local_address = Some("::1".parse().unwrap());
        assert!(text_of(&record).starts_with("tcp listen 0 128 [::1]:22 *:* "));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["v6only"], false);
    }

    #[test]
    fn unix_text_shows_path_and_peer() {
        let mut record = SocketRecord::new(
            SocketProto::Unix,
            Family::Unix,
            SockType::Dgram,
            SocketState::Unconn,
        );
        record.path = Some(OsText(b"@abstract".to_vec()));
        record.inode = 5;
        record.owner = Some(OwnerStatus::Denied);
        assert_eq!(
            text_of(&record),
            "u_dgr unconn 0 0 @abstract - - 5 denied - -\n"
        );
    }

    #[test]
    fn json_round_trips_with_snake_case_names() {
        let record = listener();
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["proto"], "tcp");
        assert_eq!(json["family"], "ipv6");
        assert_eq!(json["state"], "listen");
        assert_eq!(json["local_port"], 22);
        assert_eq!(json["local_address"], "::1");
        let back: SocketRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, record);
        // A record of an older sockls (a --baseline file) has no v6only, nor fields after it.
        let mut older = json;
        older.as_object_mut().unwrap().remove("v6only");
        let back: SocketRecord = serde_json::from_value(older).unwrap();
        assert_eq!(back, record);
    }

    fn csv_of(record: impl Serialize) -> Vec<u8> {
        let mut out = Vec::new();
        csv::Writer::from_writer(&mut out)
            .serialize(record)
            .unwrap();
        out
    }

    /// A UNIX listener whose path and owner's name hold control bytes and bytes that are
    /// not UTF-8.
    fn untrusted_names() -> SocketRecord {
        let mut record = SocketRecord::new(
            SocketProto::Unix,
            Family::Unix,
            SockType::Stream,
            SocketState::Listen,
        );
        record.path = Some(OsText(b"/tmp/s\x1b[31m\x07\n\xff\xfe.sock".to_vec()));
        record.inode = 6;
        record.owner = Some(OwnerStatus::Known);
        record.pid = Some(10);
        record.fd = Some(4);
        record.comm = Some(OsText(b"bad\xff\xfe\x1b[1m".to_vec()));
        record
    }

    #[test]
    fn names_and_paths_are_escaped_in_text_and_lossless_in_json() {
        let record = untrusted_names();
        assert_eq!(
            text_of(&record),
            "u_str listen 0 0 /tmp/s\\x1b[31m\\x07\\n\\xff\\xfe.sock - - 6 10/4 \
             bad\\xff\\xfe\\x1b[1m -\n"
        );
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["comm"]["base64"], "YmFk//4bWzFt");
        assert_eq!(
            json["path"]["lossy"],
            "/tmp/s\u{1b}[31m\u{7}\n\u{fffd}\u{fffd}.sock"
        );
        let back: SocketRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn csv_escapes_names_and_paths_and_keeps_the_json_keys() {
        let record = untrusted_names();
        let text = String::from_utf8(csv_of(record.csv())).unwrap();
        assert_eq!(text.lines().count(), 2, "a header and one row: {text:?}");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let json = serde_json::to_value(&record).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), keys);
        let row = reader.records().next().unwrap().unwrap();
        let cell = |name: &str| &row[keys.iter().position(|k| *k == name).unwrap()];
        assert_eq!(cell("path"), "/tmp/s\\x1b[31m\\x07\\n\\xff\\xfe.sock");
        assert_eq!(cell("comm"), "bad\\xff\\xfe\\x1b[1m");
        assert_eq!(cell("owner"), "known");
        assert_eq!(cell("netns"), "");
    }

    #[test]
    fn the_csv_form_does_not_drift_from_the_record() {
        // The CSV form lists the fields by hand: it must not drift from the record's own.
        let mut record = listener();
        record.rtt_ms = Some(0.25);
        record.congestion = Some("cubic".into());
        record.netns = Some("blue".into());
        record.timer = Some(SocketTimer::Keepalive);
        record.timer_expires_ms = Some(7_140_000);
        record.timer_retrans = Some(0);
        assert_eq!(csv_of(record.csv()), csv_of(&record));
    }

    #[test]
    fn state_numbers_follow_the_kernel() {
        assert_eq!(SocketState::from_number(1), Some(SocketState::Established));
        assert_eq!(SocketState::from_number(10), Some(SocketState::Listen));
        assert_eq!(SocketState::from_number(12), Some(SocketState::NewSynRecv));
        assert_eq!(SocketState::from_number(0), None);
        assert_eq!(SocketState::from_number(13), None);
        for state in SocketState::ALL {
            assert_eq!(SocketState::from_number(state.number()), Some(state));
        }
    }
}
