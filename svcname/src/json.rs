//! Reading just the port fields of an NDJSON object, without building it. A small
//! validating scanner (RFC 8259, with serde_json's rules on UTF-8, surrogates and nesting)
//! checks the whole line and keeps only the top-level fields svcname needs: building each
//! object with serde_json cost three times as much, and most of a svcname run is this. The
//! annotation is then spliced in before the closing brace, so every other field keeps its
//! bytes and its place. The unit tests check the scanner against serde_json.

use std::fmt;

use common::services::ports::{Proto, ProtoNames};

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
    /// Where the value of a top-level `ports` field is (proctree's array of sockets), as
    /// `start..end` in the line.
    pub nested: Option<(usize, usize)>,
}

/// The field that holds an array of port objects: proctree's `ports`.
pub(crate) const NESTED_PORTS: &str = "ports";

/// A port field's value, as found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PortValue {
    Number(u64),
    Text(String),
    Null,
    /// A negative or fractional number, a boolean, an array or an object.
    Invalid,
}

/// Why a line is not one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    what: &'static str,
    /// 1-based column (byte) where it was noticed.
    column: usize,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.what, self.column)
    }
}

/// The bytes that end a run of plain ASCII inside a string: the quote, the backslash,
/// control characters and the start of any multi-byte UTF-8 sequence.
static STOPS_A_STRING: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] =
            byte < 0x20 || byte >= 0x80 || byte == b'"' as usize || byte == b'\\' as usize;
        byte += 1;
    }
    table
};

/// The first byte of `bytes` in [`STOPS_A_STRING`]. Eight bytes are tested at once (SWAR:
/// each test sets the top bit of every byte lane that matches; the lowest lane set is the
/// first match, as a borrow only ever spreads to higher lanes), which halves the cost of a
/// line: strings are most of NDJSON.
fn find_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_lanes = |word: u64| word.wrapping_sub(ONES) & !word;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // XOR with 2 turns the quote into 0x20 and keeps control characters below it, so one
        // "below 0x21" test finds both.
        let quote_or_control = word ^ (ONES * 2);
        let found = ((quote_or_control.wrapping_sub(ONES * 0x21) & !quote_or_control)
            | zero_lanes(word ^ (ONES * u64::from(b'\\')))
            | word)
            & HIGH;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| STOPS_A_STRING[usize::from(b)])
        .map(|stop| at + stop)
}

/// Byte equality in a plain loop: keys are short, shorter than a library call's set-up.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// serde_json's recursion limit, so both accept the same documents.
const MAX_DEPTH: usize = 128;

/// The keys a scan looks for, prepared once for every line.
pub(crate) struct Keys {
    port_fields: Vec<String>,
    output_fields: Vec<String>,
    /// The bits of [`key_hash`] of every name looked for.
    filter: [u64; 4],
}

impl Keys {
    /// The fields that hold ports, and those svcname adds (to notice an object that went
    /// through svcname before).
    pub fn new(port_fields: Vec<String>, output_fields: Vec<String>) -> Self {
        let mut filter = [0; 4];
        for name in port_fields
            .iter()
            .chain(&output_fields)
            .map(String::as_bytes)
            .chain([&b"proto"[..], NESTED_PORTS.as_bytes()])
        {
            let hash = key_hash(name);
            filter[hash / 64] |= 1 << (hash % 64);
        }
        Self {
            port_fields,
            output_fields,
            filter,
        }
    }
}

/// Scans `line` as one JSON object, keeping the port fields and `proto`. `scanned` is
/// filled in place, so its buffer serves line after line.
pub(crate) fn scan(line: &[u8], keys: &Keys, scanned: &mut Scanned) -> Result<(), ScanError> {
    let port_fields = &keys.port_fields[..];
    let output_fields = &keys.output_fields[..];
    if scanned.ports.len() == port_fields.len() {
        scanned.ports.fill(None);
    } else {
        scanned.ports.clear();
        scanned.ports.resize(port_fields.len(), None);
    }
    scanned.proto = None;
    scanned.has_output_field = false;
    scanned.nested = None;
    let filter = keys.filter;
    let mut scanner = Scanner {
        bytes: line,
        at: 0,
        text: String::new(),
        filter,
    };
    scanner.skip_space();
    scanner.expect(b'{', "expected an object")?;
    scanner.skip_space();
    if scanner.peek() == Some(b'}') {
        scanner.at += 1;
    } else {
        // Each token is first looked for where it usually is, right after the one before;
        // only if it is not there is space skipped.
        loop {
            if scanner.peek() != Some(b'"') {
                scanner.skip_space();
            }
            let key = scanner.key(port_fields, output_fields)?;
            if scanner.peek() == Some(b':') {
                scanner.at += 1;
            } else {
                scanner.skip_space();
                scanner.expect(b':', "expected ':'")?;
            }
            scanner.skip_space();
            match key {
                Key::Port(index) => scanned.ports[index] = Some(scanner.port_value()?),
                Key::Proto => scanned.proto = Some(scanner.proto_value()?),
                Key::Output => {
                    scanned.has_output_field = true;
                    scanner.value(1)?;
                }
                Key::Nested => {
                    let start = scanner.at;
                    scanner.value(1)?;
                    scanned.nested = Some((start, scanner.at));
                }
                Key::Other => scanner.value(1)?,
            }
            let after = if let Some(byte @ (b',' | b'}')) = scanner.peek() {
                scanner.at += 1;
                Some(byte)
            } else {
                scanner.skip_space();
                scanner.next()
            };
            match after {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(scanner.error_before("expected ',' or '}'")),
            }
        }
    }
    scanner.skip_space();
    if scanner.at != line.len() {
        return Err(scanner.error("trailing characters"));
    }
    Ok(())
}

/// Where the closing brace of a scanned object is, to insert fields before it.
pub(crate) fn closing_brace(line: &[u8]) -> usize {
    line.iter()
        .rposition(|&b| b == b'}')
        .expect("a scanned object ends with a brace")
}

/// Where each element of an array is, as `start..end` in `line`; `span` is where the array
/// is in it, as [`Scanned::nested`] gives it. Empty for a value that is not an array; the
/// line has been scanned, so it is valid JSON.
pub(crate) fn array_elements(line: &[u8], span: (usize, usize)) -> Vec<(usize, usize)> {
    let mut elements = Vec::new();
    let mut scanner = Scanner {
        bytes: &line[..span.1],
        at: span.0,
        text: String::new(),
        filter: [0; 4],
    };
    if scanner.next() != Some(b'[') {
        return elements;
    }
    loop {
        scanner.skip_space();
        if scanner.peek() == Some(b']') {
            return elements;
        }
        let start = scanner.at;
        if scanner.value(2).is_err() {
            return elements;
        }
        elements.push((start, scanner.at));
        scanner.skip_space();
        if scanner.next() != Some(b',') {
            return elements;
        }
    }
}

enum Key {
    Port(usize),
    Proto,
    Output,
    Nested,
    Other,
}

/// A key's place in [`Keys::filter`], from its length and its first and last bytes: keys
/// of the same length as a name looked for (host and port, state and proto) seldom share
/// those too, so most are told apart from every name by one bit.
fn key_hash(key: &[u8]) -> usize {
    let first = usize::from(key.first().copied().unwrap_or(0));
    let last = usize::from(key.last().copied().unwrap_or(0));
    (key.len().wrapping_mul(61) + first * 7 + last) & 255
}

/// The hot parts (strings, keys, scalars) are inlined into one loop, so the cursor stays in
/// a register; containers, escapes and errors are out of line.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The decoded text of a string with escapes (rare), reused.
    text: String,
    /// [`Keys::filter`].
    filter: [u64; 4],
}

#[expect(
    clippy::inline_always,
    reason = "measured with callgrind: a fifth fewer instructions per NDJSON line"
)]
impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    #[cold]
    fn error(&self, what: &'static str) -> ScanError {
        ScanError {
            what,
            column: self.at + 1,
        }
    }

    #[cold]
    fn error_before(&self, what: &'static str) -> ScanError {
        ScanError {
            what,
            column: self.at,
        }
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ScanError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    #[inline(always)]
    fn skip_space(&mut self) {
        // NDJSON seldom has space between tokens: one comparison tells.
        if self.peek().is_none_or(|b| b > b' ') {
            return;
        }
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn key(&mut self, port_fields: &[String], output_fields: &[String]) -> Result<Key, ScanError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        let (raw, escaped) = self.string()?;
        let key: &[u8] = if escaped { self.text.as_bytes() } else { raw };
        let hash = key_hash(key);
        if self.filter[hash / 64] & (1 << (hash % 64)) == 0 {
            return Ok(Key::Other);
        }
        Ok(
            if let Some(index) = port_fields.iter().position(|f| same(f.as_bytes(), key)) {
                Key::Port(index)
            } else if key == b"proto" {
                Key::Proto
            } else if key == NESTED_PORTS.as_bytes() {
                Key::Nested
            } else if output_fields.iter().any(|f| same(f.as_bytes(), key)) {
                Key::Output
            } else {
                Key::Other
            },
        )
    }

    /// Reads a string (the cursor on its opening quote). Returns its raw bytes between the
    /// quotes and whether it had escapes, in which case its decoded text is in `self.text`.
    #[inline(always)]
    fn string(&mut self) -> Result<(&'a [u8], bool), ScanError> {
        self.at += 1;
        let start = self.at;
        // Most strings are plain ASCII: their first stop is the closing quote.
        if let Some(stop) = find_stop(&self.bytes[start..])
            && self.bytes[start + stop] == b'"'
        {
            self.at = start + stop + 1;
            return Ok((&self.bytes[start..start + stop], false));
        }
        self.string_with_stops(start)
    }

    /// The rest of [`Scanner::string`]: escapes, control characters and UTF-8.
    #[inline(never)]
    fn string_with_stops(&mut self, start: usize) -> Result<(&'a [u8], bool), ScanError> {
        let mut escaped = false;
        let mut ascii = true;
        loop {
            let rest = &self.bytes[self.at..];
            let Some(stop) = find_stop(rest) else {
                self.at = self.bytes.len();
                return Err(self.error("unterminated string"));
            };
            let byte = rest[stop];
            self.at += stop + 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1f => return Err(self.error_before("control character in a string")),
                0x80.. => ascii = false,
                _ => {}
            }
        }
        let raw = &self.bytes[start..self.at - 1];
        if !ascii && std::str::from_utf8(raw).is_err() {
            return Err(self.error_before("invalid UTF-8 in a string"));
        }
        if escaped {
            self.text = decode(raw);
        }
        Ok((raw, escaped))
    }

    /// Checks one escape (the cursor after its backslash).
    fn escape(&mut self) -> Result<(), ScanError> {
        match self.next() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => {
                let unit = self.hex4()?;
                if (0xDC00..0xE000).contains(&unit) {
                    return Err(self.error_before("lone trailing surrogate"));
                }
                if (0xD800..0xDC00).contains(&unit) {
                    if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                        return Err(self.error_before("lone leading surrogate"));
                    }
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error_before("lone leading surrogate"));
                    }
                }
                Ok(())
            }
            _ => Err(self.error_before("invalid escape")),
        }
    }

    fn hex4(&mut self) -> Result<u32, ScanError> {
        let mut unit = 0;
        for _ in 0..4 {
            let digit = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error_before("invalid \\u escape"))?;
            unit = unit * 16 + digit;
        }
        Ok(unit)
    }

    /// Skips any value, checking it.
    #[inline(always)]
    fn value(&mut self, depth: usize) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => self.container(b'}', depth, true),
            Some(b'[') => self.container(b']', depth, false),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(false).map(|_| ()),
            _ => Err(self.error("expected a value")),
        }
    }

    #[inline(never)]
    fn container(&mut self, close: u8, depth: usize, object: bool) -> Result<(), ScanError> {
        if depth + 1 >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_space();
            if object {
                if self.peek() != Some(b'"') {
                    return Err(self.error("expected a string key"));
                }
                self.string()?;
                self.skip_space();
                self.expect(b':', "expected ':'")?;
                self.skip_space();
            }
            self.value(depth + 1)?;
            self.skip_space();
            match self.next() {
                Some(b',') => {}
                Some(b) if b == close => return Ok(()),
                _ => return Err(self.error_before("expected ',' or a closing bracket")),
            }
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// Reads a number; with `keep`, returns its value when it is a whole number that fits in
    /// a u64 (only port fields need one).
    #[inline(always)]
    fn number(&mut self, keep: bool) -> Result<Option<u64>, ScanError> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.at += 1;
                }
            }
            _ => return Err(self.error_before("invalid number")),
        }
        let integer_end = self.at;
        let mut whole = !negative;
        if self.peek() == Some(b'.') {
            whole = false;
            self.at += 1;
            self.digits()?;
        }
        let mut exponent = false;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            whole = false;
            exponent = true;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits()?;
        }
        // serde_json refuses a number beyond a double's range (`2.2e1332`, or some 310
        // digits), as readers that keep numbers as doubles must; only a number that could be
        // one (an exponent, or very long) is parsed to find out (found by fuzz/svcname_line).
        if (exponent || self.at - start > 300) && !self.is_finite(start) {
            return Err(self.error_before("number out of range"));
        }
        if !whole || !keep {
            return Ok(None);
        }
        // Digits only, checked above: each fits in a u64 step by step or the number is
        // too large for a port anyway.
        let mut value: u64 = 0;
        for &digit in &self.bytes[start..integer_end] {
            match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            {
                Some(next) => value = next,
                None => return Ok(None),
            }
        }
        Ok(Some(value))
    }

    /// Whether the number from `start` to here is within a double's range.
    #[cold]
    fn is_finite(&self, start: usize) -> bool {
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    }

    fn digits(&mut self) -> Result<(), ScanError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.error("invalid number"));
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        Ok(())
    }

    #[inline(always)]
    fn port_value(&mut self) -> Result<PortValue, ScanError> {
        match self.peek() {
            Some(b'"') => {
                let (raw, escaped) = self.string()?;
                let text = if escaped {
                    self.text.clone()
                } else {
                    String::from_utf8_lossy(raw).into_owned()
                };
                Ok(PortValue::Text(text))
            }
            Some(b'n') => self.literal(b"null").map(|()| PortValue::Null),
            Some(b'-' | b'0'..=b'9') => {
                let negative_or_fraction = self.number(true)?;
                Ok(negative_or_fraction.map_or(PortValue::Invalid, PortValue::Number))
            }
            _ => self.value(1).map(|()| PortValue::Invalid),
        }
    }

    #[inline(always)]
    fn proto_value(&mut self) -> Result<Option<Proto>, ScanError> {
        if self.peek() != Some(b'"') {
            self.value(1)?;
            return Ok(None);
        }
        let (raw, escaped) = self.string()?;
        if escaped {
            return Ok(Proto::from_name(
                self.text.as_bytes(),
                ProtoNames::WithIpv6Suffix,
            ));
        }
        Ok(Proto::from_name(raw, ProtoNames::WithIpv6Suffix))
    }
}

/// Decodes a checked string body with escapes.
fn decode(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let mut unit = hex(&mut chars);
                if (0xD800..0xDC00).contains(&unit) {
                    chars.next();
                    chars.next();
                    let low = hex(&mut chars);
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                }
                out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn hex(chars: &mut std::str::Chars<'_>) -> u32 {
    chars
        .take(4)
        .fold(0, |unit, c| unit * 16 + c.to_digit(16).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn scan_one(line: &[u8]) -> Result<Scanned, ScanError> {
        let mut scanned = Scanned::default();
        let keys = Keys::new(fields(&["port", "local_port"]), fields(&["service"]));
        scan(line, &keys, &mut scanned).map(|()| scanned)
    }

    /// The `ports` array is found at the top level only, and taken apart into its elements.
    #[test]
    fn nested_port_arrays() {
        let line = br#"{"a":{"ports":[1]},"ports": [ {"port":22} , "x",[3],{} ] ,"b":2}"#;
        let scanned = scan_one(line).unwrap();
        let (start, end) = scanned.nested.expect("the top-level array");
        assert_eq!(&line[start..end], br#"[ {"port":22} , "x",[3],{} ]"#);
        let elements: Vec<&[u8]> = array_elements(line, (start, end))
            .into_iter()
            .map(|(start, end)| &line[start..end])
            .collect();
        assert_eq!(elements, [&br#"{"port":22}"#[..], b"\"x\"", b"[3]", b"{}"]);
        let line = br#"{"ports":null}"#;
        let span = scan_one(line).unwrap().nested.unwrap();
        assert!(array_elements(line, span).is_empty());
        assert_eq!(scan_one(br#"{"port":22}"#).unwrap().nested, None);
    }

    #[test]
    fn stops_in_strings_are_found_at_every_lane() {
        for stop in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff] {
            for len in 0..20 {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    if at < len {
                        bytes[at] = stop;
                        bytes.extend_from_slice(b"\"x\\");
                    }
                    let expected = bytes.iter().position(|&b| STOPS_A_STRING[usize::from(b)]);
                    assert_eq!(find_stop(&bytes), expected, "{bytes:?}");
                }
            }
        }
        assert_eq!(find_stop(b"~!#[]{} 0123456789"), None);
    }

    #[test]
    fn keeps_only_what_is_asked() {
        let line = br#"{"host":"a","port":22,"proto":"tcp","nested":{"port":9},"list":[1,2.5e3,-0,true,null]}"#;
        let scanned = scan_one(line).unwrap();
        assert_eq!(scanned.ports, [Some(PortValue::Number(22)), None]);
        assert_eq!(scanned.proto, Some(Some(Proto::Tcp)));
        assert!(!scanned.has_output_field);
        assert_eq!(closing_brace(line), line.len() - 1);
    }

    #[test]
    fn odd_values_and_existing_output() {
        let line = br#"{"port":"53/udp","local_port":-1,"service":"x","proto":6}"#;
        let scanned = scan_one(line).unwrap();
        assert_eq!(
            scanned.ports,
            [
                Some(PortValue::Text("53/udp".into())),
                Some(PortValue::Invalid)
            ]
        );
        assert_eq!(scanned.proto, Some(None));
        assert!(scanned.has_output_field);
        let escaped = scan_one(br#"{"p\u006frt":"2\u0032","proto":"UDP6"}"#).unwrap();
        assert_eq!(escaped.ports[0], Some(PortValue::Text("22".into())));
        assert_eq!(escaped.proto, Some(Some(Proto::Udp)));
        let big = scan_one(br#"{"port":1.5,"local_port":99999999999999999999999}"#).unwrap();
        assert_eq!(
            big.ports,
            [Some(PortValue::Invalid), Some(PortValue::Invalid)]
        );
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for bad in [
            &b"{\"port\":22"[..],
            b"{\"port\":22} x",
            b"[1]",
            b"{port:22}",
            b"{\"a\":\xff}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":01}",
            b"{\"a\":1.}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":\"tab\there\"}",
            b"{\"a\":[1,]}",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":tru}",
            b"",
        ] {
            assert!(scan_one(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(scan_one(deep.as_bytes()).is_err());
    }

    /// Found by the fuzz target `svcname_line`: a number beyond a double's range is not
    /// JSON to serde_json (nor so to the scanner); one that only underflows is.
    #[test]
    fn numbers_beyond_a_doubles_range_are_refused_as_serde_json_refuses_them() {
        let huge_integer = format!("{{\"n\":{}}}", "9".repeat(400));
        let long_integer = format!("{{\"n\":{}}}", "9".repeat(305));
        for line in [
            &b"{\"pit\":2.2e1332\n}"[..],
            b"{\"port\":22,\"x\":-1E+400}",
            huge_integer.as_bytes(),
            b"{\"x\":1e-400,\"y\":0e99999999999999999999}",
            b"{\"x\":1.7976931348623157e308}",
            long_integer.as_bytes(),
        ] {
            let theirs =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line).is_ok();
            assert_eq!(
                scan_one(line).is_ok(),
                theirs,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(scan_one(b"{\"pit\":2.2e1332\n}").is_err());
    }

    /// The scanner accepts exactly what serde_json accepts, over a few thousand mutations
    /// of real records (a tiny xorshift generator keeps the test deterministic).
    #[test]
    fn agrees_with_serde_json() {
        let seeds: [&[u8]; 4] = [
            br#"{"host":"localhost","address":"127.0.0.1","port":22,"proto":"tcp","state":"open","rtt_ms":0.05}"#,
            br#"{"proto":"udp","local_port":53,"remote_port":0,"comm":"a\"b\\c\u00e9\ud83d\ude00","args":["x",{"y":[null,true,false,-1.5e-3]}]}"#,
            b"{\"n\": \"caf\xc3\xa9\" , \"e\" :{} , \"l\":[ ] }",
            b"{}",
        ];
        let alphabet = b"{}[]\":,.-+eE0123456789 \\/ntrfu\"abcx\xc3\xa9\xff\x01";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut line = seeds[round % seeds.len()].to_vec();
            for _ in 0..=random(3) {
                let at = random(line.len() + 1);
                match random(3) {
                    0 if at < line.len() => {
                        line.remove(at);
                    }
                    1 if at < line.len() => line[at] = alphabet[random(alphabet.len())],
                    _ => line.insert(at, alphabet[random(alphabet.len())]),
                }
            }
            let ours = scan_one(&line).is_ok();
            let theirs =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&line).is_ok();
            assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&line));
            accepted += usize::from(ours);
        }
        assert!(
            (2_000..18_000).contains(&accepted),
            "the mutations should give both outcomes often: {accepted} accepted"
        );
    }
}
