//! The port result: what a scan found out about one (address, port, protocol).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::contract::output::{Record, TextRow};
use crate::services::ports::Proto;

/// What a port scan found out about one (address, port, protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortRecord {
    /// The target as given: a name, or the address itself.
    pub host: String,
    /// The address that was probed.
    pub address: IpAddr,
    pub port: u16,
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    /// Round-trip time of the answer that decided the state, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// When the state became final (RFC 3339, UTC).
    pub time: String,
}

/// Port states as nmap defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    /// Something accepts connections.
    Open,
    /// Reachable, and nothing listens.
    Closed,
    /// No answer, or an answer that says a filter is in the way.
    Filtered,
    /// No answer where an open port may say nothing either (a UDP service that ignores a
    /// probe it does not understand), so open and filtered cannot be told apart. nmap's
    /// spelling, with the bar.
    #[serde(rename = "open|filtered")]
    OpenFiltered,
}

/// Why a port (or a host, in host discovery) was given its state, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The connection was accepted.
    SynAck,
    /// The connection was refused (a TCP reset).
    ConnRefused,
    /// Nothing came back before the last retry timed out.
    NoResponse,
    /// ICMP host unreachable.
    HostUnreach,
    /// ICMP network unreachable.
    NetUnreach,
    /// ICMP administratively prohibited (a firewall's reject).
    AdminProhibited,
    /// A datagram came back from the port (UDP): something there answered.
    UdpResponse,
    /// ICMP port unreachable (UDP): the host is there, and nothing listens.
    PortUnreach,
    /// An ICMP echo reply (host discovery): the host is up.
    EchoReply,
}

impl PortState {
    /// Every state, in the order [`index`](Self::index) numbers them.
    pub const ALL: [PortState; 4] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::OpenFiltered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Filtered => "filtered",
            Self::OpenFiltered => "open|filtered",
        }
    }

    /// The state's position in [`PortState::ALL`], for tables indexed by state.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SynAck => "syn-ack",
            Self::ConnRefused => "conn-refused",
            Self::NoResponse => "no-response",
            Self::HostUnreach => "host-unreach",
            Self::NetUnreach => "net-unreach",
            Self::AdminProhibited => "admin-prohibited",
            Self::UdpResponse => "udp-response",
            Self::PortUnreach => "port-unreach",
            Self::EchoReply => "echo-reply",
        }
    }
}

impl Record for PortRecord {
    const TEXT_HEADER: &'static [&'static str] = &["host", "port/proto", "state", "reason"];

    fn write_text(&self, row: &mut TextRow) {
        row.field(&self.host)
            .field(format_args!("{}/{}", self.port, self.proto))
            .field(self.state.as_str())
            .field(self.reason.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::output::Format;
    use crate::contract::record::test_support::{formatted, text_of};

    #[test]
    fn port_record_text_is_host_port_state_reason() {
        let record = PortRecord {
            host: "localhost".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 22,
            proto: Proto::Tcp,
            state: PortState::Open,
            reason: Reason::SynAck,
            rtt_ms: Some(0.05),
            time: "2026-11-27T17:14:54.123Z".into(),
        };
        assert_eq!(text_of(&record), "localhost 22/tcp open syn-ack\n");
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["state"], "open");
        assert_eq!(json["reason"], "syn-ack");
        assert_eq!(json["proto"], "tcp");
        let back: PortRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn every_state_is_spelled_alike_in_text_json_and_csv() {
        for state in PortState::ALL {
            let record = PortRecord {
                host: "h".into(),
                address: "198.18.0.1".parse().unwrap(),
                port: 53,
                proto: Proto::Udp,
                state,
                reason: Reason::NoResponse,
                rtt_ms: None,
                time: "2026-11-27T17:14:54.123Z".into(),
            };
            let name = state.as_str();
            assert_eq!(text_of(&record), format!("h 53/udp {name} no-response\n"));
            let json = serde_json::to_value(&record).unwrap();
            assert_eq!(json["state"], name);
            let back: PortRecord = serde_json::from_value(json).unwrap();
            assert_eq!(back.state, state);
            let csv = formatted(&record, Format::Csv);
            assert!(
                csv.ends_with(&format!(",{name},no-response,,2026-11-27T17:14:54.123Z\n")),
                "{csv}"
            );
            assert_eq!(PortState::ALL[state.index()], state);
        }
        assert_eq!(PortState::OpenFiltered.as_str(), "open|filtered");
    }
}
