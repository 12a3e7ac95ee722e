//! Bytes from the kernel that are usually text: a process name, an argument, a socket path.
//! They are bytes to the kernel, so every record that carries one (ProcessRecord,
//! SocketRecord) holds an [`OsText`], which keeps them without loss in JSON and escapes them
//! by the one rule of `common::contract::text` in text and CSV (docs/FORMAT.md, "Text that is not
//! UTF-8").

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::contract::text;

/// Bytes from the kernel (a name, an argument, a path) that are usually UTF-8 but need not
/// be. In JSON: a string when they are valid UTF-8; otherwise an object
/// `{"base64": <the bytes, standard base64>, "lossy": <the text with U+FFFD for bad bytes>}`,
/// so nothing is lost and nothing is guessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsText(pub Vec<u8>);

impl OsText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as one text token (`\\`, `\n`, `\xHH`, ...): the form of a CSV cell, which
    /// must stay one line and lose no byte, as a text field does.
    pub fn escaped(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        text::escape_token(&self.0, &mut out);
        out
    }
}

impl From<&[u8]> for OsText {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<Vec<u8>> for OsText {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for OsText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Ok(text) = std::str::from_utf8(&self.0) {
            serializer.serialize_str(text)
        } else {
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("base64", &base64_encode(&self.0))?;
            map.serialize_entry("lossy", &String::from_utf8_lossy(&self.0))?;
            map.end()
        }
    }
}

impl<'de> Deserialize<'de> for OsText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OsTextVisitor;

        impl<'de> Visitor<'de> for OsTextVisitor {
            type Value = OsText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an object with a base64 field")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<OsText, E> {
                Ok(OsText(text.as_bytes().to_vec()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OsText, A::Error> {
                let mut bytes = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "base64" {
                        let encoded: String = map.next_value()?;
                        bytes = Some(
                            base64_decode(&encoded)
                                .ok_or_else(|| de::Error::custom("invalid base64"))?,
                        );
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                bytes
                    .map(OsText)
                    .ok_or_else(|| de::Error::missing_field("base64"))
            }
        }

        deserializer.deserialize_any(OsTextVisitor)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding), which jq decodes with `@base64d`.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut n = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = BASE64.iter().position(|&b| b == c)?;
        n = n << 6 | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(n >> bits & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"\xff\x00\xfe", "/wD+"),
        ];
        for (bytes, encoded) in cases {
            assert_eq!(base64_encode(bytes), *encoded);
            assert_eq!(base64_decode(encoded).unwrap(), *bytes);
        }
    }

    #[test]
    fn json_is_a_string_for_utf8_and_base64_otherwise() {
        let name = OsText(b"bad\xff\xfe\x1b[1m".to_vec());
        let json = serde_json::to_value(&name).unwrap();
        assert_eq!(json["base64"], "YmFk//4bWzFt");
        assert_eq!(json["lossy"], "bad\u{fffd}\u{fffd}\u{1b}[1m");
        assert_eq!(serde_json::from_value::<OsText>(json).unwrap(), name);
        let plain = OsText(b"a\nb".to_vec());
        assert_eq!(serde_json::to_value(&plain).unwrap(), "a\nb");
    }

    #[test]
    fn escaped_is_the_text_token() {
        let name = OsText(b"s\x1b[31m\x07\n\xff x\\".to_vec());
        assert_eq!(name.escaped(), "s\\x1b[31m\\x07\\n\\xff\\x20x\\\\");
    }
}
