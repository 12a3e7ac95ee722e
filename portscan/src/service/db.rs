//! The probes and match rules of version detection, in the grammar of nmap's
//! `nmap-service-probes` (https://nmap.org/book/vscan-fileformat.html): our own file
//! (`probes.txt`, compiled in) is written in it, so one parser reads ours and, where nmap is
//! installed, nmap's own at run time.
//!
//! Patterns are compiled with PCRE2, the engine nmap itself uses, so a pattern of nmap's
//! means here what it means there (lookarounds, backreferences, `\0`, the `s` and `i` flags),
//! and it matches bytes, not text: banners are often binary. They are compiled the first
//! time a response is matched against them, since nmap's file holds some twelve thousand
//! and one scan meets a handful of services.

use std::cell::OnceCell;
use std::fmt::Write as _;

use pcre2::bytes::{Captures, Regex, RegexBuilder};

use common::services::ports::Proto;

/// A probe: bytes to send on a fresh connection, and the rules its answers are matched by.
#[derive(Debug)]
pub struct Probe {
    pub proto: Proto,
    pub name: String,
    pub payload: Vec<u8>,
    /// Ports where it is most likely to help: tried first there, whatever its rarity.
    pub ports: Vec<(u16, u16)>,
    /// As `ports`, inside a TLS tunnel.
    pub ssl_ports: Vec<(u16, u16)>,
    /// 1 (helps often) to 9 (rarely): tried on other ports only up to the intensity.
    pub rarity: u8,
    /// How long to wait for its answer, in milliseconds.
    pub wait_ms: u64,
    /// A connection closed without a word sooner than this (NULL probe) is `tcpwrapped`.
    pub tcpwrapped_ms: u64,
    /// Other probes whose rules are also tried on its answers.
    pub fallback: Vec<String>,
    pub matches: Vec<Rule>,
}

/// nmap's default for a probe that names no `totalwaitms`.
const DEFAULT_WAIT_MS: u64 = 5000;
/// nmap's default `tcpwrappedms`.
const DEFAULT_TCPWRAPPED_MS: u64 = 3000;

impl Probe {
    /// Whether `port` is in its `ports` line.
    pub fn likes(&self, port: u16) -> bool {
        self.ports
            .iter()
            .any(|&(first, last)| (first..=last).contains(&port))
    }
}

/// A `match` or `softmatch` line.
#[derive(Debug)]
pub struct Rule {
    pub service: String,
    /// A softmatch names the service but not the version: probing goes on.
    pub soft: bool,
    pattern: Vec<u8>,
    caseless: bool,
    dotall: bool,
    compiled: OnceCell<Option<Regex>>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub extra_info: Option<String>,
    pub cpe: Vec<String>,
}

/// What a rule says of an answer it matched, its templates filled in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    pub service: String,
    pub soft: bool,
    pub product: Option<String>,
    pub version: Option<String>,
    pub extra_info: Option<String>,
    pub cpe: Vec<String>,
}

impl Rule {
    /// What the rule says of `answer`, if it matches. A pattern PCRE2 refuses matches
    /// nothing (nmap's file is written for its own PCRE build; one odd line should not
    /// stop the rest).
    pub fn apply(&self, answer: &[u8]) -> Option<Found> {
        let regex = self
            .compiled
            .get_or_init(|| {
                let pattern = String::from_utf8_lossy(&self.pattern);
                RegexBuilder::new()
                    .caseless(self.caseless)
                    .dotall(self.dotall)
                    // Patterns are bytes: `\xff` is the byte, not U+00FF.
                    .utf(false)
                    .build(&pattern)
                    .ok()
            })
            .as_ref()?;
        let captures = regex.captures(answer).ok()??;
        let fill = |template: &Option<String>| {
            template
                .as_deref()
                .map(|t| fill_template(t, &captures))
                .filter(|text| !text.is_empty())
        };
        Some(Found {
            service: self.service.clone(),
            soft: self.soft,
            product: fill(&self.product),
            version: fill(&self.version),
            extra_info: fill(&self.extra_info),
            cpe: self
                .cpe
                .iter()
                .map(|t| fill_template(t, &captures))
                .collect(),
        })
    }
}

/// The whole file: its probes in file order, and the ports never probed (`Exclude`).
#[derive(Debug, Default)]
pub struct ProbeDb {
    pub probes: Vec<Probe>,
    /// The `Exclude` line's ranges, each with its protocol: nmap's own file excludes the
    /// printers' TCP ports only (`T:9100-9107`), so a UDP service there is still probed.
    pub excluded: Vec<(Proto, u16, u16)>,
}

impl ProbeDb {
    /// Reads a file in nmap's grammar. Lines it does not know are skipped, as nmap skips
    /// directives newer than itself; a malformed known line is an error naming the line.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let mut db = ProbeDb::default();
        for (number, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            db.line(line)
                .map_err(|why| format!("line {}: {why}", number + 1))?;
        }
        Ok(db)
    }

    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        let (word, rest) = split_word(line);
        let rest = rest.trim_ascii_start();
        if word == b"Probe" {
            self.probes.push(parse_probe(rest)?);
            return Ok(());
        }
        if word == b"Exclude" {
            self.excluded = parse_excluded(rest)?;
            return Ok(());
        }
        let Some(probe) = self.probes.last_mut() else {
            return Err("a directive before the first Probe".into());
        };
        let text = || String::from_utf8_lossy(rest).into_owned();
        match word {
            b"match" | b"softmatch" => probe.matches.push(parse_rule(rest, word == b"softmatch")?),
            b"ports" => probe.ports = parse_ranges(&text())?,
            b"sslports" => probe.ssl_ports = parse_ranges(&text())?,
            b"rarity" => probe.rarity = text().parse().map_err(|_| "a bad rarity")?,
            b"totalwaitms" => probe.wait_ms = text().parse().map_err(|_| "a bad totalwaitms")?,
            b"tcpwrappedms" => {
                probe.tcpwrapped_ms = text().parse().map_err(|_| "a bad tcpwrappedms")?;
            }
            b"fallback" => probe.fallback = text().split(',').map(str::to_owned).collect(),
            _ => {}
        }
        Ok(())
    }

    /// The probe named `name` (of `proto`).
    pub fn probe(&self, proto: Proto, name: &str) -> Option<usize> {
        self.probes
            .iter()
            .position(|p| p.proto == proto && p.name == name)
    }

    /// Whether `port` of `proto` is in the `Exclude` line (nmap's printer ports, TCP
    /// 9100-9107).
    pub fn excludes(&self, proto: Proto, port: u16) -> bool {
        self.excluded
            .iter()
            .any(|&(of, first, last)| of == proto && (first..=last).contains(&port))
    }
}

fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(u8::is_ascii_whitespace) {
        Some(at) => (&line[..at], &line[at..]),
        None => (line, &[]),
    }
}

/// `TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|` (and nmap's optional `no-payload`).
fn parse_probe(rest: &[u8]) -> Result<Probe, String> {
    let (proto, rest) = split_word(rest);
    let proto = match proto {
        b"TCP" => Proto::Tcp,
        b"UDP" => Proto::Udp,
        _ => return Err("a Probe's protocol is TCP or UDP".into()),
    };
    let (name, rest) = split_word(rest.trim_ascii_start());
    let rest = rest.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b"q") else {
        return Err("a Probe needs q|payload|".into());
    };
    let (payload, _) = delimited(rest).ok_or("a Probe's payload is not closed")?;
    Ok(Probe {
        proto,
        name: String::from_utf8_lossy(name).into_owned(),
        payload: unescape(payload)?,
        ports: Vec::new(),
        ssl_ports: Vec::new(),
        rarity: 1,
        wait_ms: DEFAULT_WAIT_MS,
        tcpwrapped_ms: DEFAULT_TCPWRAPPED_MS,
        fallback: Vec::new(),
        matches: Vec::new(),
    })
}

/// `service m|pattern|flags p/product/ v/version/ i/info/ cpe:/a:x:y/a`; the fields nmap
/// has beyond these (h, o, d) are read and left aside.
fn parse_rule(rest: &[u8], soft: bool) -> Result<Rule, String> {
    let (service, rest) = split_word(rest);
    let rest = rest.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b"m") else {
        return Err("a match needs m|pattern|".into());
    };
    let (pattern, mut rest) = delimited(rest).ok_or("a match's pattern is not closed")?;
    let flags_end = rest
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let flags = &rest[..flags_end];
    rest = &rest[flags_end..];
    let mut rule = Rule {
        service: String::from_utf8_lossy(service).into_owned(),
        soft,
        pattern: pattern.to_vec(),
        caseless: flags.contains(&b'i'),
        dotall: flags.contains(&b's'),
        compiled: OnceCell::new(),
        product: None,
        version: None,
        extra_info: None,
        cpe: Vec::new(),
    };
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return Ok(rule);
        }
        let (key, after) = if let Some(after) = rest.strip_prefix(b"cpe:") {
            (&b"cpe"[..], after)
        } else {
            (&rest[..1], &rest[1..])
        };
        let (value, after) = delimited(after).ok_or("a version field is not closed")?;
        let value = String::from_utf8_lossy(value).into_owned();
        // A cpe may end in `a` (nmap: "the value is an application"), a flag to skip.
        rest = after.strip_prefix(b"a").unwrap_or(after);
        match key {
            b"p" => rule.product = Some(value),
            b"v" => rule.version = Some(value),
            b"i" => rule.extra_info = Some(value),
            b"cpe" => rule.cpe.push(format!("cpe:/{value}")),
            _ => {}
        }
    }
}

/// The text between the delimiter `text` starts with and its next occurrence, and what
/// follows it.
fn delimited(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&delimiter, body) = text.split_first()?;
    let end = body.iter().position(|&b| b == delimiter)?;
    Some((&body[..end], &body[end + 1..]))
}

/// A payload's escapes, as nmap reads them: `\\`, `\0`, `\a`, `\b`, `\f`, `\n`, `\r`,
/// `\t`, `\v`, `\xHH`.
fn unescape(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escaped = bytes.next().ok_or("a payload ends in a backslash")?;
        out.push(match escaped {
            b'0' => 0,
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'x' => {
                let hex = [bytes.next(), bytes.next()];
                let [Some(high), Some(low)] = hex else {
                    return Err("a \\x escape needs two hex digits".into());
                };
                let digits = [high, low];
                let digits = std::str::from_utf8(&digits).map_err(|_| "a bad \\x escape")?;
                u8::from_str_radix(digits, 16).map_err(|_| "a bad \\x escape")?
            }
            other => other,
        });
    }
    Ok(out)
}

/// `80,443,8000-8010` (nmap's `ports`; a `T:`/`U:` prefix is dropped).
fn parse_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let item = item
                .strip_prefix("T:")
                .or_else(|| item.strip_prefix("U:"))
                .unwrap_or(item);
            let bad = || format!("a bad port range '{item}'");
            if let Some((first, last)) = item.split_once('-') {
                Ok((
                    first.parse().map_err(|_| bad())?,
                    last.parse().map_err(|_| bad())?,
                ))
            } else {
                let port = item.parse().map_err(|_| bad())?;
                Ok((port, port))
            }
        })
        .collect()
}

/// `Exclude T:9100-9107`, in the grammar of nmap's `-p`: a `T:` or `U:` prefix holds for
/// the ranges after it up to the next prefix, and ranges before any prefix are of both
/// protocols.
fn parse_excluded(text: &[u8]) -> Result<Vec<(Proto, u16, u16)>, String> {
    let text = String::from_utf8_lossy(text);
    let mut protos: &[Proto] = &[Proto::Tcp, Proto::Udp];
    let mut excluded = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let item = if let Some(rest) = item.strip_prefix("T:") {
            protos = &[Proto::Tcp];
            rest
        } else if let Some(rest) = item.strip_prefix("U:") {
            protos = &[Proto::Udp];
            rest
        } else {
            item
        };
        for (first, last) in parse_ranges(item)? {
            excluded.extend(protos.iter().map(|&proto| (proto, first, last)));
        }
    }
    Ok(excluded)
}

/// Fills a template: `$1`..`$9` with the captures, `$P(n)` with capture n's printable
/// bytes, `$SUBST(n,"from","to")` with capture n where each `from` becomes `to`, and
/// `$I(n,">")` / `$I(n,"<")` with capture n read as a big- or little-endian integer.
fn fill_template(template: &str, captures: &Captures<'_>) -> String {
    let group = |n: usize| captures.get(n).map_or(&[][..], |m| m.as_bytes());
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(digit) = rest.chars().next().and_then(|c| c.to_digit(10)) {
            out.push_str(&String::from_utf8_lossy(group(digit as usize)));
            rest = &rest[1..];
        } else if let Some((name, args, after)) = helper(rest) {
            let n = args
                .first()
                .and_then(|a| a.parse::<usize>().ok())
                .unwrap_or(0);
            match name {
                "P" => out.extend(
                    group(n)
                        .iter()
                        .filter(|b| b.is_ascii_graphic() || **b == b' ')
                        .map(|&b| char::from(b)),
                ),
                "SUBST" if args.len() == 3 => {
                    let text = String::from_utf8_lossy(group(n));
                    out.push_str(&text.replace(args[1].as_str(), &args[2]));
                }
                "I" => {
                    let bytes = group(n);
                    let little = args.get(1).is_some_and(|order| order == "<");
                    let value = if little {
                        bytes.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b))
                    } else {
                        bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b))
                    };
                    let _ = write!(out, "{value}");
                }
                _ => {}
            }
            rest = after;
        } else {
            out.push('$');
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// `NAME(arg,"arg",...)` at the start of `text`: the name, the arguments (quotes removed)
/// and what follows the closing parenthesis.
fn helper(text: &str) -> Option<(&str, Vec<String>, &str)> {
    let open = text.find('(')?;
    let name = &text[..open];
    if !["P", "SUBST", "I"].contains(&name) {
        return None;
    }
    let mut args = vec![String::new()];
    let mut quoted = false;
    for (at, c) in text[open + 1..].char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => args.push(String::new()),
            ')' if !quoted => {
                let args = args.into_iter().map(|a| a.trim().to_owned()).collect();
                return Some((name, args, &text[open + 1 + at + 1..]));
            }
            c => args.last_mut()?.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(text: &str) -> ProbeDb {
        ProbeDb::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn reads_probes_and_their_directives() {
        let db = db(r"
# a comment
Exclude T:9100-9107
Probe TCP NULL q||
totalwaitms 6000
tcpwrappedms 3000
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)[ -]{1,2}Debian[ -_]([^\r\n]+)\r?\n| p/OpenSSH/ v/$2 Debian $3/ i/protocol $1/ cpe:/a:openbsd:openssh:$2/a
softmatch ftp m|^220 |
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80,8000-8010
fallback NULL
");
        assert_eq!(db.excluded, vec![(Proto::Tcp, 9100, 9107)]);
        assert!(db.excludes(Proto::Tcp, 9103) && !db.excludes(Proto::Tcp, 9108));
        assert!(!db.excludes(Proto::Udp, 9103), "T: excludes TCP only");
        let null = &db.probes[0];
        assert_eq!(
            (null.name.as_str(), null.wait_ms, null.matches.len()),
            ("NULL", 6000, 2)
        );
        let get = &db.probes[1];
        assert_eq!(get.payload, b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(get.ports, vec![(80, 80), (8000, 8010)]);
        assert!(get.likes(8005) && !get.likes(81));
        assert_eq!(get.fallback, vec!["NULL"]);
        let found = null.matches[0]
            .apply(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
            .unwrap();
        assert_eq!(found.product.as_deref(), Some("OpenSSH"));
        assert_eq!(found.version.as_deref(), Some("9.2p1 Debian 2+deb12u3"));
        assert_eq!(found.extra_info.as_deref(), Some("protocol 2.0"));
        assert_eq!(found.cpe, vec!["cpe:/a:openbsd:openssh:9.2p1"]);
        assert!(null.matches[1].apply(b"220 hi\r\n").unwrap().soft);
        assert!(null.matches[1].apply(b"230 hi\r\n").is_none());
    }

    /// A prefix holds up to the next one; ranges before any are of both protocols.
    #[test]
    fn excluded_ranges_keep_their_protocol() {
        type Range = (Proto, u16, u16);
        let (tcp, udp) = (Proto::Tcp, Proto::Udp);
        let table: &[(&str, &[Range])] = &[
            ("T:9100-9107", &[(tcp, 9100, 9107)]),
            ("U:53", &[(udp, 53, 53)]),
            (
                "T:1,2,U:3-4,5",
                &[(tcp, 1, 1), (tcp, 2, 2), (udp, 3, 4), (udp, 5, 5)],
            ),
            ("7,T:8", &[(tcp, 7, 7), (udp, 7, 7), (tcp, 8, 8)]),
        ];
        for (text, want) in table {
            assert_eq!(parse_excluded(text.as_bytes()).unwrap(), *want, "{text}");
        }
        assert!(parse_excluded(b"T:x").is_err());
    }

    #[test]
    fn udp_probes_are_their_own_beside_tcp_ones_of_the_same_name() {
        let db = db(r"
Probe TCP SIPOptions q|OPTIONS sip:a SIP/2.0\r\n\r\n|
match sip m|^SIP/2\.0 | p/tcp/
Probe UDP SIPOptions q|OPTIONS sip:a SIP/2.0\r\n\r\n|
rarity 5
ports U:5060,5070-5071
match sip m|^SIP/2\.0 | p/udp/
Probe UDP NTPRequest q|\x23\0\0\0|
");
        let tcp = db.probe(Proto::Tcp, "SIPOptions").unwrap();
        let udp = db.probe(Proto::Udp, "SIPOptions").unwrap();
        assert_eq!((tcp, udp), (0, 1));
        let sip = &db.probes[udp];
        assert_eq!((sip.proto, sip.rarity), (Proto::Udp, 5));
        assert_eq!(sip.ports, vec![(5060, 5060), (5070, 5071)]);
        let found = sip.matches[0].apply(b"SIP/2.0 200 OK\r\n").unwrap();
        assert_eq!(found.product.as_deref(), Some("udp"));
        assert_eq!(db.probes[2].payload, b"\x23\0\0\0");
        assert_eq!(db.probe(Proto::Tcp, "NTPRequest"), None);
    }

    #[test]
    fn payload_escapes_are_nmaps() {
        let table: &[(&str, &[u8])] = &[
            (r"a\r\n", b"a\r\n"),
            (r"\0\x01\xff", b"\0\x01\xff"),
            (r"\\\t", b"\\\t"),
        ];
        for (text, bytes) in table {
            assert_eq!(unescape(text.as_bytes()).unwrap(), *bytes, "{text}");
        }
        assert!(unescape(br"\x1").is_err());
    }

    #[test]
    fn flags_and_binary_answers() {
        let db = db("Probe TCP NULL q||\nmatch x m|^hello.world\\xff|si p/X/\n");
        let rule = &db.probes[0].matches[0];
        assert!(rule.apply(b"HELLO\nWORLD\xff").is_some());
        let strict = db_rule("match x m|^hello.world|");
        assert!(strict.apply(b"HELLO\nWORLD").is_none());
    }

    fn db_rule(line: &str) -> Rule {
        let mut db = db(&format!("Probe TCP NULL q||\n{line}\n"));
        db.probes.remove(0).matches.remove(0)
    }

    #[test]
    fn templates_fill_helpers() {
        let rule = db_rule(
            r#"match x m|^(\w+)-(\w+)\0(..)| p/$P(1)/ v/$SUBST(2,"_",".")/ i/build $I(3,">")/"#,
        );
        assert!(rule.apply(b"A\x01B-1_2\0\x01\x02").is_none());
        let found = rule.apply(b"AB-1_2\0\x01\x02").unwrap();
        assert_eq!(found.product.as_deref(), Some("AB"));
        assert_eq!(found.version.as_deref(), Some("1.2"));
        assert_eq!(found.extra_info.as_deref(), Some("build 258"));
    }

    #[test]
    fn lookarounds_and_backreferences_compile() {
        let rule = db_rule(r"match x m|^(a)(?=b)b\1| p/ok/");
        assert!(rule.apply(b"aba").is_some());
        assert!(rule.apply(b"abb").is_none());
    }

    #[test]
    fn malformed_lines_are_errors_with_their_number() {
        let error = ProbeDb::parse(b"Probe TCP NULL q||\nmatch x m|open\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(ProbeDb::parse(b"match x m|a|\n").is_err());
    }
}
