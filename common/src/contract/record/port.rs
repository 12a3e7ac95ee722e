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
}

/// Why a port was given its state, in nmap's words.
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
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Filtered => "filtered",
        }
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
    use crate::contract::record::test_support::text_of;

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
}
