//! Reading just the port fields of an NDJSON object, without building it: the object is
//! validated whole by serde_json, but only the fields svcname needs are kept, so annotating
//! a million records costs little more than reading them. The annotation is then spliced in
//! before the closing brace, so every other field keeps its bytes and its place.

use std::fmt;

use common::ports::Proto;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

/// The fields found in one object.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Scanned {
    /// The value of each port field, by position in the list of port fields.
    pub ports: Vec<Option<PortValue>>,
    /// The `proto` field, where it is a string: `Some(None)` for a protocol without ports
    /// (`unix`, `raw`).
    #[expect(
        clippy::option_option,
        reason = "absent, a protocol without ports and a protocol are three answers"
    )]
    pub proto: Option<Option<Proto>>,
    /// The object already has a field svcname would add (it went through svcname before).
    pub has_output_field: bool,
}

/// A port field's value, as found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PortValue {
    Number(u64),
    Text(String),
    Null,
    /// A negative or fractional number, a boolean, an array or an object.
    Invalid,
}

/// Scans `line` as one JSON object, keeping the fields named in `port_fields` and `proto`.
pub(crate) fn scan(
    line: &[u8],
    port_fields: &[String],
    output_fields: &[String],
) -> Result<Scanned, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let scanned = de::Deserializer::deserialize_map(
        &mut deserializer,
        ObjectScan {
            port_fields,
            output_fields,
        },
    )?;
    deserializer.end()?;
    Ok(scanned)
}

/// Where the closing brace of a scanned object is, to insert fields before it.
pub(crate) fn closing_brace(line: &[u8]) -> usize {
    line.iter()
        .rposition(|&b| b == b'}')
        .expect("a scanned object ends with a brace")
}

struct ObjectScan<'a> {
    port_fields: &'a [String],
    output_fields: &'a [String],
}

enum Key {
    Port(usize),
    Proto,
    Output,
    Other,
}

impl<'de> Visitor<'de> for ObjectScan<'_> {
    type Value = Scanned;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        let mut scanned = Scanned {
            ports: vec![None; self.port_fields.len()],
            ..Scanned::default()
        };
        while let Some(key) = map.next_key_seed(KeySeed {
            port_fields: self.port_fields,
            output_fields: self.output_fields,
        })? {
            match key {
                Key::Port(index) => scanned.ports[index] = Some(map.next_value::<PortValue>()?),
                Key::Proto => scanned.proto = map.next_value::<ProtoValue>()?.0,
                Key::Output => {
                    scanned.has_output_field = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(scanned)
    }
}

struct KeySeed<'a> {
    port_fields: &'a [String],
    output_fields: &'a [String],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        if let Some(index) = self.port_fields.iter().position(|f| f == key) {
            Ok(Key::Port(index))
        } else if key == "proto" {
            Ok(Key::Proto)
        } else if self.output_fields.iter().any(|f| f == key) {
            Ok(Key::Output)
        } else {
            Ok(Key::Other)
        }
    }
}

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PortValueVisitor)
    }
}

struct PortValueVisitor;

impl<'de> Visitor<'de> for PortValueVisitor {
    type Value = PortValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a port")
    }

    fn visit_u64<E>(self, value: u64) -> Result<PortValue, E> {
        Ok(PortValue::Number(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<PortValue, E> {
        Ok(u64::try_from(value).map_or(PortValue::Invalid, PortValue::Number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<PortValue, E> {
        Ok(PortValue::Invalid)
    }

    fn visit_bool<E>(self, _: bool) -> Result<PortValue, E> {
        Ok(PortValue::Invalid)
    }

    fn visit_str<E>(self, value: &str) -> Result<PortValue, E> {
        Ok(PortValue::Text(value.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<PortValue, E> {
        Ok(PortValue::Null)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<PortValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(PortValue::Invalid)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PortValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(PortValue::Invalid)
    }
}

/// A `proto` field: read when it is a string (without allocating), ignored otherwise.
#[expect(
    clippy::option_option,
    reason = "absent, a protocol without ports and a protocol are three answers"
)]
struct ProtoValue(Option<Option<Proto>>);

impl<'de> Deserialize<'de> for ProtoValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ProtoVisitor)
    }
}

struct ProtoVisitor;

impl<'de> Visitor<'de> for ProtoVisitor {
    type Value = ProtoValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a protocol")
    }

    fn visit_str<E>(self, name: &str) -> Result<ProtoValue, E> {
        Ok(ProtoValue(Some(proto_of(name))))
    }

    fn visit_u64<E>(self, _: u64) -> Result<ProtoValue, E> {
        Ok(ProtoValue(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<ProtoValue, E> {
        Ok(ProtoValue(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<ProtoValue, E> {
        Ok(ProtoValue(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<ProtoValue, E> {
        Ok(ProtoValue(None))
    }

    fn visit_unit<E>(self) -> Result<ProtoValue, E> {
        Ok(ProtoValue(None))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ProtoValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ProtoValue(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProtoValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ProtoValue(None))
    }
}

/// A protocol name as tools print it: `tcp`, `TCP`, `tcp6`, `udp6`.
pub(crate) fn proto_of(name: &str) -> Option<Proto> {
    let name = name.strip_suffix('6').unwrap_or(name);
    Proto::ALL
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn keeps_only_what_is_asked() {
        let line = br#"{"host":"a","port":22,"proto":"tcp","nested":{"port":9},"list":[1,2]}"#;
        let scanned = scan(
            line,
            &fields(&["port", "local_port"]),
            &fields(&["service"]),
        )
        .unwrap();
        assert_eq!(scanned.ports, [Some(PortValue::Number(22)), None]);
        assert_eq!(scanned.proto, Some(Some(Proto::Tcp)));
        assert!(!scanned.has_output_field);
        assert_eq!(closing_brace(line), line.len() - 1);
    }

    #[test]
    fn odd_values_and_existing_output() {
        let line = br#"{"port":"53/udp","local_port":-1,"service":"x","proto":6}"#;
        let scanned = scan(
            line,
            &fields(&["port", "local_port"]),
            &fields(&["service"]),
        )
        .unwrap();
        assert_eq!(
            scanned.ports,
            [
                Some(PortValue::Text("53/udp".into())),
                Some(PortValue::Invalid)
            ]
        );
        assert_eq!(scanned.proto, None);
        assert!(scanned.has_output_field);
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        let names = fields(&["port"]);
        for bad in [
            &b"{\"port\":22"[..],
            b"{\"port\":22} x",
            b"[1]",
            b"{port:22}",
            b"{\"a\":\xff}",
        ] {
            assert!(
                scan(bad, &names, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
