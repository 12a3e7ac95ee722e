//! The service entry: what a port number means.

use serde::{Deserialize, Serialize};

use crate::contract::output::{Record, TextRow};
use crate::services::ports::Proto;

/// One entry of the service registry: what a port number means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub port: u16,
    pub proto: Proto,
    /// The service name (`ssh`), or `unknown`.
    pub service: String,
    /// IANA's range: `well-known` (0-1023), `registered` (1024-49151), `dynamic` (49152-65535).
    pub range: PortRange,
    /// The registry's description, where it has one.
    pub description: Option<String>,
    /// Which data source answered: `user`, `etc-services`, `iana`; absent for `unknown`.
    pub source: Option<String>,
    /// nmap's open-frequency for the port (0 to 1), where nmap's data is installed and asked for.
    pub frequency: Option<f64>,
    /// Why attackers target this port, for the ports they favour (with `--risk`).
    pub risk: Option<String>,
    /// The service's other names in the answering file (`www` for http); empty for none.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A [`ServiceRecord`] as a CSV row: the aliases in one cell, separated by spaces.
#[derive(Serialize)]
struct ServiceCsv<'a> {
    port: u16,
    proto: Proto,
    service: &'a str,
    range: PortRange,
    description: Option<&'a str>,
    source: Option<&'a str>,
    frequency: Option<f64>,
    risk: Option<&'a str>,
    aliases: String,
}

impl ServiceRecord {
    /// The free text that ends a text line: the description, then `[risk: ...]` and
    /// `[aliases: ...]` where there are any.
    pub fn free_text(&self) -> String {
        let mut free = self.description.clone().unwrap_or_default();
        let mut note = |label: &str, text: &str| {
            if !free.is_empty() {
                free.push(' ');
            }
            free.push('[');
            free.push_str(label);
            free.push_str(": ");
            free.push_str(text);
            free.push(']');
        };
        if let Some(risk) = &self.risk {
            note("risk", risk);
        }
        if !self.aliases.is_empty() {
            note("aliases", &self.aliases.join(" "));
        }
        free
    }
}

impl Record for ServiceRecord {
    const TEXT_HEADER: &'static [&'static str] = &["port/proto", "service", "range", "description"];

    fn write_text(&self, row: &mut TextRow) {
        row.field(format_args!("{}/{}", self.port, self.proto))
            .field(&self.service)
            .field(self.range.as_str());
        let free = self.free_text();
        if free.is_empty() {
            row.field("");
        } else {
            row.free_text(free.as_bytes());
        }
    }

    fn csv(&self) -> impl Serialize + '_ {
        ServiceCsv {
            port: self.port,
            proto: self.proto,
            service: &self.service,
            range: self.range,
            description: self.description.as_deref(),
            source: self.source.as_deref(),
            frequency: self.frequency,
            risk: self.risk.as_deref(),
            aliases: self.aliases.join(" "),
        }
    }
}

/// IANA's three ranges of port numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortRange {
    WellKnown,
    Registered,
    Dynamic,
}

impl PortRange {
    pub fn of(port: u16) -> Self {
        match port {
            0..=1023 => Self::WellKnown,
            1024..=49151 => Self::Registered,
            _ => Self::Dynamic,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WellKnown => "well-known",
            Self::Registered => "registered",
            Self::Dynamic => "dynamic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record::test_support::text_of;

    #[test]
    fn ranges_follow_iana() {
        assert_eq!(PortRange::of(0), PortRange::WellKnown);
        assert_eq!(PortRange::of(1023), PortRange::WellKnown);
        assert_eq!(PortRange::of(1024), PortRange::Registered);
        assert_eq!(PortRange::of(49151), PortRange::Registered);
        assert_eq!(PortRange::of(49152), PortRange::Dynamic);
        assert_eq!(PortRange::of(65535), PortRange::Dynamic);
    }

    #[test]
    fn service_record_text_ends_with_description_and_risk() {
        let mut record = ServiceRecord {
            port: 23,
            proto: Proto::Tcp,
            service: "telnet".into(),
            range: PortRange::WellKnown,
            description: Some("Telnet".into()),
            source: Some("iana".into()),
            frequency: None,
            risk: None,
            aliases: Vec::new(),
        };
        assert_eq!(text_of(&record), "23/tcp telnet well-known Telnet\n");
        record.risk = Some("plaintext logins".into());
        assert_eq!(
            text_of(&record),
            "23/tcp telnet well-known Telnet [risk: plaintext logins]\n"
        );
        record.aliases = vec!["tn".into(), "tty".into()];
        assert_eq!(
            text_of(&record),
            "23/tcp telnet well-known Telnet [risk: plaintext logins] [aliases: tn tty]\n"
        );
    }
}
