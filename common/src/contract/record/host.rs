//! The host result: what host discovery found out about one address, before (or instead
//! of, with nmap's `-sn`) its port scan.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::contract::output::{Record, TextRow};
use crate::contract::record::Reason;

/// What host discovery found out about one address. The fields mean what a
/// [`PortRecord`](crate::contract::record::PortRecord)'s of the same names mean, and come
/// in the same order, less the port and protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The target as given: a name, or the address itself.
    pub host: String,
    /// The address that was probed.
    pub address: IpAddr,
    pub state: HostState,
    pub reason: Reason,
    /// Round-trip time of the answer that showed the host up, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// When the state became final (RFC 3339, UTC).
    pub time: String,
}

/// Whether a host answered, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Something at the address answered a discovery probe.
    Up,
    /// Nothing answered, or the answer said the host cannot be reached.
    Down,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl Record for HostRecord {
    const TEXT_HEADER: &'static [&'static str] = &["host", "state", "reason"];

    fn write_text(&self, row: &mut TextRow) {
        row.field(&self.host)
            .field(self.state.as_str())
            .field(self.reason.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::output::Format;
    use crate::contract::record::test_support::{formatted, text_of};

    fn record() -> HostRecord {
        HostRecord {
            host: "198.18.1.7".into(),
            address: "198.18.1.7".parse().unwrap(),
            state: HostState::Up,
            reason: Reason::EchoReply,
            rtt_ms: Some(0.042),
            time: "2026-12-04T19:00:00.123Z".into(),
        }
    }

    #[test]
    fn host_record_text_is_host_state_reason() {
        assert_eq!(text_of(&record()), "198.18.1.7 up echo-reply\n");
        let down = HostRecord {
            state: HostState::Down,
            reason: Reason::NoResponse,
            rtt_ms: None,
            ..record()
        };
        assert_eq!(text_of(&down), "198.18.1.7 down no-response\n");
    }

    #[test]
    fn json_and_csv_carry_every_field_under_the_port_records_names() {
        let json = serde_json::to_value(record()).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["host", "address", "state", "reason", "rtt_ms", "time"]
        );
        assert_eq!(json["state"], "up");
        assert_eq!(json["reason"], "echo-reply");
        let back: HostRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record());
        assert_eq!(
            formatted(&record(), Format::Csv),
            "host,address,state,reason,rtt_ms,time\n\
             198.18.1.7,198.18.1.7,up,echo-reply,0.042,2026-12-04T19:00:00.123Z\n"
        );
    }
}
