//! ss's filter language, from the arguments after the options (`state established '( dport =
//! :443 or sport = :22 )'`): the leading `state` and `exclude` words become the kernel's
//! state mask, the expression a [`Node`] the kernel runs as a filter program and sockls
//! checks again on each record. The grammar is ss's (misc/ssfilter.y): `and`, `or` and
//! juxtaposition group from the left with equal precedence, `not` binds to what follows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::contract::record::{SocketProto, SocketRecord, SocketState};
use common::host::sockets::Query;
use common::host::sockets::bytecode::{HostCondition, Node, Side};

/// What the filter arguments select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The state mask (a bit per [`SocketState::number`]) when `state` or `exclude` was given.
    pub states: Option<u32>,
    pub expression: Option<Node>,
}

impl Selection {
    /// Whether a record passes the expression. A socket without an address (UNIX) passes
    /// none; a missing remote end (a listener) is the unspecified address and port 0, as
    /// the kernel sees it.
    pub fn matches(&self, record: &SocketRecord) -> bool {
        let Some(expression) = &self.expression else {
            return true;
        };
        if record.proto == SocketProto::Unix {
            return false;
        }
        let Some(local) = record.local_address else {
            return false;
        };
        let unspecified = match local {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        expression.accepts(
            (local, record.local_port.unwrap_or(0)),
            (
                record.remote_address.unwrap_or(unspecified),
                record.remote_port.unwrap_or(0),
            ),
        )
    }
}

fn bit(state: SocketState) -> u32 {
    1 << state.number()
}

/// SYN-RECV as ss means it: the kernel reports request sockets (NEW-SYN-RECV) as SYN-RECV.
fn syn_recv() -> u32 {
    bit(SocketState::SynRecv) | bit(SocketState::NewSynRecv)
}

/// ss's state names and groups (misc/ss.c `scan_state`), and sockls's own names: the one
/// table for `state` and `exclude` words and for `--state`.
pub fn state_mask(name: &str) -> Result<u32, String> {
    use SocketState::{
        CloseWait, Closing, Established, FinWait1, FinWait2, LastAck, Listen, SynSent, TimeWait,
        Unconn,
    };
    let all = Query::ALL_STATES;
    let connected = all & !(bit(Unconn) | bit(Listen));
    let bucket = syn_recv() | bit(TimeWait);
    Ok(match name.to_ascii_lowercase().as_str() {
        "all" => all,
        "connected" => connected,
        "synchronized" => connected & !bit(SynSent),
        "bucket" => bucket,
        "big" => all & !bucket,
        "established" | "estab" => bit(Established),
        "syn-sent" => bit(SynSent),
        "syn-recv" | "syn-rcv" | "new-syn-recv" => syn_recv(),
        "fin-wait-1" => bit(FinWait1),
        "fin-wait-2" => bit(FinWait2),
        "time-wait" => bit(TimeWait),
        "closed" | "close" | "unconnected" | "unconn" => bit(Unconn),
        "close-wait" => bit(CloseWait),
        "last-ack" => bit(LastAck),
        "listening" | "listen" => bit(Listen),
        "closing" => bit(Closing),
        _ => return Err(format!("'{name}' is not a socket state")),
    })
}

/// A word of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Not,
    And,
    Or,
    /// `src`, `dst`: an address condition.
    Host(Side),
    /// `sport`, `dport`: a port condition.
    Port(Side),
    Compare(Comparison),
    /// Anything else: an address or a port.
    Word(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    Greater,
    AtMost,
    AtLeast,
}

fn token(word: &str) -> Token {
    match word {
        "(" => Token::Open,
        ")" => Token::Close,
        "!" | "not" => Token::Not,
        "&" | "&&" | "and" => Token::And,
        "|" | "||" | "or" => Token::Or,
        "src" => Token::Host(Side::Local),
        "dst" => Token::Host(Side::Remote),
        "sport" => Token::Port(Side::Local),
        "dport" => Token::Port(Side::Remote),
        "=" | "==" | "eq" => Token::Compare(Comparison::Equal),
        "!=" | "ne" | "neq" => Token::Compare(Comparison::NotEqual),
        "<" | "lt" => Token::Compare(Comparison::Less),
        ">" | "gt" => Token::Compare(Comparison::Greater),
        "<=" | "le" | "leq" => Token::Compare(Comparison::AtMost),
        ">=" | "ge" | "geq" => Token::Compare(Comparison::AtLeast),
        other => Token::Word(other.to_owned()),
    }
}

/// Turns a service name (`https`) into its port, or says why it cannot.
pub type PortNames<'a> = &'a dyn Fn(&str) -> Result<u16, String>;

/// Parses the arguments after the options: `state`/`exclude` words first, then the
/// expression. Each argument is split at blanks, so a quoted expression and one word per
/// argument read alike; ports given by name go through `names`. The error says why, for
/// `sockls: filter: WHY`.
pub fn parse(args: &[String], names: PortNames<'_>) -> Result<Selection, String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    let mut at = 0;
    let mut states = None;
    while let Some(&word) = words.get(at) {
        let excluding = match word {
            "state" => false,
            "exclude" | "excl" => true,
            _ => break,
        };
        let name = words
            .get(at + 1)
            .ok_or_else(|| format!("'{word}' needs a state name"))?;
        let mask = state_mask(name)?;
        states = Some(if excluding {
            states.unwrap_or(Query::ALL_STATES) & !mask
        } else {
            states.unwrap_or(0) | mask
        });
        at += 2;
    }
    let tokens: Vec<Token> = words[at..].iter().map(|w| token(w)).collect();
    let mut parser = Parser {
        tokens,
        at: 0,
        names,
    };
    let expression = if parser.tokens.is_empty() {
        None
    } else {
        let node = parser.list()?;
        // A list stops at the end or at a ')' it did not open.
        if parser.peek().is_some() {
            return Err("')' without '('".into());
        }
        Some(node)
    };
    Ok(Selection { states, expression })
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    names: PortNames<'a>,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// exprlist: expr, then any number of (`and` | `or` | nothing) expr, from the left.
    fn list(&mut self) -> Result<Node, String> {
        let mut node = self.expr()?;
        loop {
            match self.peek() {
                None | Some(Token::Close) => return Ok(node),
                Some(Token::Or) => {
                    self.at += 1;
                    node = Node::Or(Box::new(node), Box::new(self.expr()?));
                }
                Some(Token::And) => {
                    self.at += 1;
                    node = Node::And(Box::new(node), Box::new(self.expr()?));
                }
                Some(_) => node = Node::And(Box::new(node), Box::new(self.expr()?)),
            }
        }
    }

    fn expr(&mut self) -> Result<Node, String> {
        match self.next() {
            Some(Token::Open) => {
                let node = self.list()?;
                match self.next() {
                    Some(Token::Close) => Ok(node),
                    _ => Err("'(' without ')'".into()),
                }
            }
            Some(Token::Not) => Ok(Node::Not(Box::new(self.expr()?))),
            Some(Token::Host(side)) => {
                let comparison = self.comparison();
                let condition = host_condition(&self.operand(side, false)?, self.names)?;
                let node = Node::Host(side, condition);
                match comparison {
                    Comparison::Equal => Ok(node),
                    Comparison::NotEqual => Ok(Node::Not(Box::new(node))),
                    _ => Err(format!(
                        "{} takes = or != an address",
                        side_name(side, false)
                    )),
                }
            }
            Some(Token::Port(side)) => {
                let comparison = self.comparison();
                let word = self.operand(side, true)?;
                let port = port_operand(&word, self.names)?;
                let node = match (comparison, port) {
                    (Comparison::Equal, port) => {
                        Node::Host(side, HostCondition { prefix: None, port })
                    }
                    (Comparison::NotEqual, port) => Node::Not(Box::new(Node::Host(
                        side,
                        HostCondition { prefix: None, port },
                    ))),
                    (_, None) => return Err(format!("'{word}': a comparison needs a port number")),
                    (Comparison::AtLeast, Some(port)) => Node::PortAtLeast(side, port),
                    (Comparison::AtMost, Some(port)) => Node::PortAtMost(side, port),
                    (Comparison::Greater, Some(port)) => {
                        Node::Not(Box::new(Node::PortAtMost(side, port)))
                    }
                    (Comparison::Less, Some(port)) => {
                        Node::Not(Box::new(Node::PortAtLeast(side, port)))
                    }
                };
                Ok(node)
            }
            Some(Token::Word(word)) if matches!(word.as_str(), "state" | "exclude" | "excl") => {
                Err(format!("'{word}' words come before the expression"))
            }
            Some(Token::Word(word)) => Err(format!(
                "'{word}' is not a condition (src, dst, sport, dport)"
            )),
            Some(Token::Close) => Err("')' where a condition was expected".into()),
            Some(Token::And | Token::Or) => {
                Err("'and' or 'or' without a condition before it".into())
            }
            Some(Token::Compare(_)) => Err("a comparison without src, dst, sport or dport".into()),
            None => Err("the expression ends where a condition was expected".into()),
        }
    }

    /// The comparison after `src`, `sport` and the like; none means `=`.
    fn comparison(&mut self) -> Comparison {
        match self.peek() {
            Some(&Token::Compare(comparison)) => {
                self.at += 1;
                comparison
            }
            _ => Comparison::Equal,
        }
    }

    fn operand(&mut self, side: Side, port: bool) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word)) => Ok(word),
            _ => Err(format!(
                "{} needs {}",
                side_name(side, port),
                if port {
                    "a port (:22)"
                } else {
                    "an address (10.0.0.0/8, [::1]:22, :22)"
                }
            )),
        }
    }
}

fn side_name(side: Side, port: bool) -> &'static str {
    match (side, port) {
        (Side::Local, false) => "src",
        (Side::Remote, false) => "dst",
        (Side::Local, true) => "sport",
        (Side::Remote, true) => "dport",
    }
}

/// A port as `sport`/`dport` take it: `:22`, `22`, `:ssh` (a service name), or `*` (any).
fn port_operand(word: &str, names: PortNames<'_>) -> Result<Option<u16>, String> {
    let port = word.strip_prefix(':').unwrap_or(word);
    if port.is_empty() || port == "*" {
        return Ok(None);
    }
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse::<u16>()
            .map(Some)
            .map_err(|_| format!("'{word}' is not a port number"));
    }
    names(port).map(Some)
}

/// An address as `src`/`dst` take it: `ADDR[/LEN][:PORT]`, `[V6ADDR[/LEN]][:PORT]` (also
/// `[V6ADDR]/LEN`), `*:PORT`, `:PORT`; `*` for any address or port.
fn host_condition(word: &str, names: PortNames<'_>) -> Result<HostCondition, String> {
    let bad = |why: &str| format!("'{word}': {why}");
    let (address, port) = if let Some(rest) = word.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| bad("'[' without ']'"))?;
        // [2001:db8::]/32 as well as [2001:db8::/32].
        match after.split_once(':') {
            Some((length, port)) => (format!("{inside}{length}"), Some(port)),
            None => (format!("{inside}{after}"), None),
        }
    } else {
        // The port follows the last ':' (after any '/'): v6 addresses need brackets.
        let search_from = word.find('/').unwrap_or(0);
        match word[search_from..].rfind(':') {
            Some(colon) => (
                word[..search_from + colon].to_owned(),
                Some(&word[search_from + colon + 1..]),
            ),
            None => (word.to_owned(), None),
        }
    };
    let port = match port {
        Some(port) => port_operand(port, names).map_err(|why| bad(&why))?,
        None => None,
    };
    let prefix = if address.is_empty() || address == "*" {
        None
    } else {
        let (address, length) = match address.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (address.as_str(), None),
        };
        let address: IpAddr = address
            .parse()
            .ok()
            .or_else(|| abbreviated_ipv4(address).map(IpAddr::V4))
            .ok_or_else(|| bad("not an address (10.0.0.0/8, [::1]:22, *:22, :22)"))?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let length = match length {
            None => most,
            Some(length) => length
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= most)
                .ok_or_else(|| bad(&format!("the prefix length is 0 to {most}")))?,
        };
        Some((address, length))
    };
    Ok(HostCondition { prefix, port })
}

/// An IPv4 address of fewer than four numbers, the missing bytes zero, as ss takes it
/// (iproute2's get_addr_ipv4): `193.233.7` is 193.233.7.0, `127` is 127.0.0.0, so that ss's
/// `dst 193.233.7/24` and `127/8` work. Decimal only, without leading zeros: ss reads the
/// numbers as C does, `010` as 8 and `0x7f` as 127, which a filter would not mean.
fn abbreviated_ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0_u8; 4];
    let mut numbers = text.split('.');
    for octet in &mut octets {
        let Some(number) = numbers.next() else {
            break;
        };
        let decimal = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        if !decimal || (number.len() > 1 && number.starts_with('0')) {
            return None;
        }
        *octet = number.parse().ok()?;
    }
    numbers.next().is_none().then(|| Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service table of one name.
    fn names(name: &str) -> Result<u16, String> {
        match name {
            "https" => Ok(443),
            _ => Err(format!("'{name}' is not a port number or service name")),
        }
    }

    fn parse_words(text: &str) -> Result<Selection, String> {
        parse(&[text.to_owned()], &names)
    }

    fn host(side: Side, prefix: Option<(&str, u8)>, port: Option<u16>) -> Node {
        Node::Host(
            side,
            HostCondition {
                prefix: prefix.map(|(a, l)| (a.parse().unwrap(), l)),
                port,
            },
        )
    }

    #[test]
    fn states_come_first_and_accumulate() {
        let selection = parse_words("state established state time-wait").unwrap();
        assert_eq!(
            selection.states,
            Some(bit(SocketState::Established) | bit(SocketState::TimeWait))
        );
        assert_eq!(selection.expression, None);
        let selection = parse_words("exclude listening exclude closed").unwrap();
        assert_eq!(
            selection.states,
            Some(Query::ALL_STATES & !bit(SocketState::Listen) & !bit(SocketState::Unconn))
        );
        assert_eq!(
            parse_words("state bucket").unwrap().states,
            Some(syn_recv() | bit(SocketState::TimeWait))
        );
        assert_eq!(
            parse_words("state synchronized").unwrap().states.unwrap() & bit(SocketState::SynSent),
            0
        );
        assert!(parse_words("state nonsense").is_err());
        assert!(parse_words("state").is_err());
    }

    #[test]
    fn quoted_and_split_expressions_read_alike() {
        let quoted = parse(
            &[
                "state".into(),
                "established".into(),
                "( dport = :https or sport = :22 )".into(),
            ],
            &names,
        )
        .unwrap();
        let split: Vec<String> = "state established ( dport == :443 || sport eq 22 )"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(quoted, parse(&split, &names).unwrap());
        assert_eq!(
            quoted.expression,
            Some(Node::Or(
                Box::new(host(Side::Remote, None, Some(443))),
                Box::new(host(Side::Local, None, Some(22)))
            ))
        );
    }

    #[test]
    fn and_or_group_from_the_left_and_not_binds_tight() {
        let a = host(Side::Local, None, Some(1));
        let b = host(Side::Local, None, Some(2));
        let c = host(Side::Local, None, Some(3));
        assert_eq!(
            parse_words("sport = :1 or sport = :2 and sport = :3")
                .unwrap()
                .expression,
            Some(Node::And(
                Box::new(Node::Or(Box::new(a.clone()), Box::new(b.clone()))),
                Box::new(c.clone())
            ))
        );
        assert_eq!(
            parse_words("! sport = :1 sport = :2").unwrap().expression,
            Some(Node::And(Box::new(Node::Not(Box::new(a))), Box::new(b)))
        );
    }

    #[test]
    fn comparisons_are_the_kernels_ge_and_le() {
        let expression = |text| parse_words(text).unwrap().expression.unwrap();
        assert_eq!(
            expression("sport < :1024"),
            Node::Not(Box::new(Node::PortAtLeast(Side::Local, 1024)))
        );
        assert_eq!(
            expression("dport gt 80"),
            Node::Not(Box::new(Node::PortAtMost(Side::Remote, 80)))
        );
        assert_eq!(
            expression("dport >= :80"),
            Node::PortAtLeast(Side::Remote, 80)
        );
        assert_eq!(
            expression("dport != :22"),
            Node::Not(Box::new(host(Side::Remote, None, Some(22))))
        );
    }

    #[test]
    fn addresses_take_prefixes_ports_and_brackets() {
        let expression = |text| parse_words(text).unwrap().expression.unwrap();
        assert_eq!(
            expression("dst 10.0.0.0/8"),
            host(Side::Remote, Some(("10.0.0.0", 8)), None)
        );
        assert_eq!(
            expression("src [::1]"),
            host(Side::Local, Some(("::1", 128)), None)
        );
        assert_eq!(
            expression("src [::1]:22"),
            host(Side::Local, Some(("::1", 128)), Some(22))
        );
        assert_eq!(
            expression("src [2001:db8::/32]"),
            host(Side::Local, Some(("2001:db8::", 32)), None)
        );
        assert_eq!(
            expression("src [2001:db8::]/32:80"),
            host(Side::Local, Some(("2001:db8::", 32)), Some(80))
        );
        assert_eq!(
            expression("dst 127.0.0.1/8:22"),
            host(Side::Remote, Some(("127.0.0.1", 8)), Some(22))
        );
        assert_eq!(expression("src *:22"), host(Side::Local, None, Some(22)));
        assert_eq!(expression("src :22"), host(Side::Local, None, Some(22)));
        assert_eq!(
            expression("dst = 127.0.0.1"),
            host(Side::Remote, Some(("127.0.0.1", 32)), None)
        );
    }

    #[test]
    fn ipv4_addresses_may_be_abbreviated_as_in_ss() {
        let expression = |text| parse_words(text).unwrap().expression.unwrap();
        for (text, side, address, length, port) in [
            ("dst 193.233.7/24", Side::Remote, "193.233.7.0", 24, None),
            ("dst 127/8", Side::Remote, "127.0.0.0", 8, None),
            ("src 10.1/16:22", Side::Local, "10.1.0.0", 16, Some(22)),
            ("src 10", Side::Local, "10.0.0.0", 32, None),
            ("src 0/0", Side::Local, "0.0.0.0", 0, None),
        ] {
            assert_eq!(
                expression(text),
                host(side, Some((address, length)), port),
                "{text}"
            );
        }
        for text in [
            "dst 1.2.3.4.5",
            "dst 1..2",
            "dst 1.2.",
            "dst 256/8",
            "dst 010/8",
            "dst 0x7f/8",
            "dst 1.-2",
        ] {
            let error = parse_words(text).unwrap_err();
            assert!(error.contains("not an address"), "{text}: {error}");
        }
    }

    #[test]
    fn malformed_expressions_say_why() {
        for (text, why) in [
            ("( sport = :22", "without ')'"),
            ("sport = :22 )", "without '('"),
            ("sport =", "needs a port"),
            ("sport = :x", "not a port number or service name"),
            ("sport = :70000", "not a port number"),
            ("dst 10.0.0.0/33", "prefix length"),
            ("dst ::1", "not an address"),
            ("dst < 10.0.0.1", "takes = or !="),
            ("sport < *", "needs a port number"),
            ("and sport = :1", "without a condition"),
            ("established", "not a condition"),
            ("sport = :1 state listening", "come before the expression"),
        ] {
            let error = parse_words(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
