//! The port result: what a scan found out about one (address, port, protocol).

use std::net::IpAddr;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::contract::baseline::Baselined;
use crate::contract::output::{Record, TextRow};
use crate::contract::record::os_text::OsText;
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
    /// With -sV (open TCP ports): the service's name (`ssh`, `http`, `tcpwrapped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// With -sV: the software (`OpenSSH`), where a rule names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// With -sV: the software's version (`9.2p1 Debian 2+deb12u3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// With -sV: what else the rule tells (`protocol 2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_info: Option<String>,
    /// With -sV: `ssl` where the service speaks inside TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    /// With -sV: CPE names of the software, separated by spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
    /// With -sV: the first bytes the service said (at most 1 KiB), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<OsText>,
    /// With -sV: how the service was named: `probed` (an answer matched a rule) or
    /// `table` (only the port number's usual service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// With -sV: how sure the name is, 0 to 10 (nmap's `conf`: 10 probed, 3 table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// With -sV, in a TLS tunnel: the server certificate's subject (`CN=example`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    /// With -sV, in a TLS tunnel: the certificate's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
    /// With -sV, in a TLS tunnel: the certificate's subject alternative names (DNS names
    /// and addresses), separated by spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_names: Option<String>,
    /// With -sV, in a TLS tunnel: when the certificate expires (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<String>,
    /// With -A, on an open TCP port: the host's operating-system family as the hint
    /// names it (`Linux`, `Windows`, `BSD`, `macOS`, `Solaris`, `network device`), or
    /// `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_family: Option<String>,
    /// With -A: the distribution (or BSD) a banner names, where it agrees (`Debian`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_distribution: Option<String>,
    /// With -A: how sure the hint is, in percent; 0 for `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_accuracy: Option<u8>,
    /// With -A: what the hint was told from (and what could not be seen), `; ` between
    /// the pieces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_evidence: Option<String>,
    /// Whether CSV has the -A columns, as `version_columns` for -sV's.
    #[serde(skip)]
    pub os_columns: bool,
    /// Whether CSV has the -sV columns: set on every record of a -sV run, so that its rows
    /// are all as wide as its header, and on no other, so that a plain scan's CSV keeps its
    /// columns. (JSON leaves out a -sV field that is null.)
    #[serde(skip)]
    pub version_columns: bool,
}

/// How version detection named a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// An answer to a probe matched a rule.
    Probed,
    /// Nothing matched: the port number's usual service.
    Table,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Probed => "probed",
            Self::Table => "table",
        }
    }
}

/// A record with every field empty (`0.0.0.0`, port 0), to fill with struct update syntax:
/// most records leave the -sV fields out.
impl Default for PortRecord {
    fn default() -> Self {
        Self {
            host: String::new(),
            address: IpAddr::from([0, 0, 0, 0]),
            port: 0,
            proto: Proto::Tcp,
            state: PortState::Open,
            reason: Reason::SynAck,
            rtt_ms: None,
            time: String::new(),
            service: None,
            product: None,
            version: None,
            extra_info: None,
            tunnel: None,
            cpe: None,
            banner: None,
            method: None,
            confidence: None,
            cert_subject: None,
            cert_issuer: None,
            cert_names: None,
            cert_not_after: None,
            os_family: None,
            os_distribution: None,
            os_accuracy: None,
            os_evidence: None,
            os_columns: false,
            version_columns: false,
        }
    }
}

impl PortRecord {
    /// The version column of nmap's report: product, version and extra information
    /// (`OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)`); empty where none is known.
    pub fn version_line(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        words.extend(self.product.clone());
        words.extend(self.version.clone());
        words.extend(self.extra_info.as_ref().map(|info| format!("({info})")));
        words.join(" ")
    }
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
    /// A TCP reset answered a SYN (-sS): nothing listens.
    Reset,
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
            Self::Reset => "reset",
        }
    }
}

impl Record for PortRecord {
    const TEXT_HEADER: &'static [&'static str] = &["host", "port/proto", "state", "reason"];

    /// With -sV two more: the service (`ssl/http` in a tunnel), and the version line that
    /// joins product, version and extra_info, as nmap's VERSION column does.
    fn text_header(&self) -> &'static [&'static str] {
        if self.version_columns {
            &[
                "host",
                "port/proto",
                "state",
                "reason",
                "service",
                "version",
            ]
        } else {
            Self::TEXT_HEADER
        }
    }

    /// With -sV, the service and its version line follow, free text last.
    fn write_text(&self, row: &mut TextRow) {
        row.field(&self.host)
            .field(format_args!("{}/{}", self.port, self.proto))
            .field(self.state.as_str())
            .field(self.reason.as_str());
        if let Some(service) = &self.service {
            match &self.tunnel {
                Some(tunnel) => row.bytes(format!("{tunnel}/{service}").as_bytes()),
                None => row.bytes(service.as_bytes()),
            };
            let version = self.version_line();
            if !version.is_empty() {
                row.free_text(version.as_bytes());
            }
        }
    }

    fn csv(&self) -> impl Serialize + '_ {
        CsvPort(self)
    }
}

/// A scanned port is the same from run to run by its address, protocol and number; its
/// state, and with -sV in both runs its service, product and version, are compared.
impl Baselined for PortRecord {
    const COMPARED: &'static [&'static str] = &["state", "service", "product", "version"];
    const NAME: &'static str = "port";
    const TOOL: &'static str = "portscan";

    fn identity(&self) -> String {
        format!("{} {}/{}", self.address, self.port, self.proto)
    }

    fn compares(&self, earlier: &Self, field: &str) -> bool {
        field == "state" || (self.method.is_some() && earlier.method.is_some())
    }
}

/// [`PortRecord`] for CSV: the banner escaped as in text (`\r`, `\n`, `\xHH`), since a
/// cell holds text, not bytes.
struct CsvPort<'a>(&'a PortRecord);

impl Serialize for CsvPort<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let fields = match (r.version_columns, r.os_columns) {
            (_, true) => 25,
            (true, false) => 21,
            (false, false) => 8,
        };
        let mut s = serializer.serialize_struct("PortRecord", fields)?;
        s.serialize_field("host", &r.host)?;
        s.serialize_field("address", &r.address)?;
        s.serialize_field("port", &r.port)?;
        s.serialize_field("proto", &r.proto)?;
        s.serialize_field("state", &r.state)?;
        s.serialize_field("reason", &r.reason)?;
        s.serialize_field("rtt_ms", &r.rtt_ms)?;
        s.serialize_field("time", &r.time)?;
        if !r.version_columns {
            return s.end();
        }
        s.serialize_field("service", &r.service)?;
        s.serialize_field("product", &r.product)?;
        s.serialize_field("version", &r.version)?;
        s.serialize_field("extra_info", &r.extra_info)?;
        s.serialize_field("tunnel", &r.tunnel)?;
        s.serialize_field("cpe", &r.cpe)?;
        s.serialize_field("banner", &r.banner.as_ref().map(OsText::escaped))?;
        s.serialize_field("method", &r.method)?;
        s.serialize_field("confidence", &r.confidence)?;
        s.serialize_field("cert_subject", &r.cert_subject)?;
        s.serialize_field("cert_issuer", &r.cert_issuer)?;
        s.serialize_field("cert_names", &r.cert_names)?;
        s.serialize_field("cert_not_after", &r.cert_not_after)?;
        if r.os_columns {
            s.serialize_field("os_family", &r.os_family)?;
            s.serialize_field("os_distribution", &r.os_distribution)?;
            s.serialize_field("os_accuracy", &r.os_accuracy)?;
            s.serialize_field("os_evidence", &r.os_evidence)?;
        }
        s.end()
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
            ..PortRecord::default()
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
    fn version_fields_follow_in_text_and_the_banner_is_exact_in_json() {
        let record = PortRecord {
            host: "localhost".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 22,
            service: Some("ssh".into()),
            product: Some("OpenSSH".into()),
            version: Some("9.2p1".into()),
            extra_info: Some("protocol 2.0".into()),
            banner: Some(OsText::from(&b"SSH-2.0-OpenSSH_9.2p1\r\n"[..])),
            method: Some(Method::Probed),
            confidence: Some(10),
            version_columns: true,
            ..PortRecord::default()
        };
        assert_eq!(
            text_of(&record),
            "localhost 22/tcp open syn-ack ssh OpenSSH 9.2p1 (protocol 2.0)\n"
        );
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["banner"], "SSH-2.0-OpenSSH_9.2p1\r\n");
        assert_eq!(json["method"], "probed");
        let back: PortRecord = serde_json::from_value(json).unwrap();
        // The CSV width is the run's, not the record's: it does not travel in JSON.
        let back = PortRecord {
            version_columns: true,
            ..back
        };
        assert_eq!(back, record);
        let csv = formatted(&record, Format::Csv);
        assert!(
            csv.contains(",SSH-2.0-OpenSSH_9.2p1\\r\\n,probed,10,,,,\n"),
            "{csv}"
        );
        let bare = PortRecord {
            service: None,
            product: None,
            version: None,
            extra_info: None,
            banner: None,
            method: None,
            confidence: None,
            ..record
        };
        assert_eq!(text_of(&bare), "localhost 22/tcp open syn-ack\n");
        let json = serde_json::to_value(&bare).unwrap();
        assert!(json.get("service").is_none(), "{json}");
        let csv = formatted(&bare, Format::Csv);
        assert!(csv.starts_with("host,address,port,proto,state,reason,rtt_ms,time,service,"));
        assert!(csv.ends_with(",,,,,,,,,,,,\n"), "{csv}");
    }

    #[test]
    fn os_fields_follow_the_version_fields_in_json_and_csv_only() {
        let record = PortRecord {
            host: "localhost".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 22,
            service: Some("ssh".into()),
            os_family: Some("Linux".into()),
            os_distribution: Some("Debian".into()),
            os_accuracy: Some(98),
            os_evidence: Some("ICMP echo reply TTL 64; 22/tcp names a system".into()),
            version_columns: true,
            os_columns: true,
            ..PortRecord::default()
        };
        // Text records keep -sV's shape: the evidence is the report's.
        assert_eq!(text_of(&record), "localhost 22/tcp open syn-ack ssh\n");
        let json = serde_json::to_value(&record).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys[keys.len() - 4..],
            ["os_family", "os_distribution", "os_accuracy", "os_evidence"]
        );
        assert_eq!(json["os_accuracy"], 98);
        let csv = formatted(&record, Format::Csv);
        let (header, row) = csv.split_once('\n').unwrap();
        assert!(
            header.ends_with(",cert_not_after,os_family,os_distribution,os_accuracy,os_evidence"),
            "{header}"
        );
        assert!(
            row.ends_with(",Linux,Debian,98,ICMP echo reply TTL 64; 22/tcp names a system\n"),
            "{row}"
        );
        // Without -A, neither JSON nor CSV has them.
        let plain = PortRecord {
            os_family: None,
            os_distribution: None,
            os_accuracy: None,
            os_evidence: None,
            os_columns: false,
            ..record
        };
        assert!(
            serde_json::to_value(&plain)
                .unwrap()
                .get("os_family")
                .is_none()
        );
        assert!(!formatted(&plain, Format::Csv).contains("os_family"));
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
                ..PortRecord::default()
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
