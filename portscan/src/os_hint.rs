//! The operating-system hint of `-A` (issue #12): what system a host likely runs, told
//! only from what can be seen without guessing, and said with its evidence and a
//! confidence, or as "unknown" where the evidence is thin or disagrees. nmap's -O sends
//! crafted probes and matches a database of thousands of stacks; this looks at three
//! things any host shows: the TTL of its ICMP echo reply (which initial TTL it counts
//! down from: 64 Linux, the BSDs and macOS; 128 Windows; 255 Solaris and network gear),
//! the window and options of its SYN-ACK where a raw socket can see one (their order
//! differs between stacks, as p0f's signatures show), and banners that name a system
//! (`OpenSSH 9.2p1 Debian 2+deb12u3`, `cpe:/o:...`).
//!
//! The inference ([`infer`]) is a pure function of the evidence; the gathering
//! (`gather`) holds the sockets; [`Hinting`] is the observer between -sV's `Probing`
//! and the printer that holds each host's open ports and end until scanning and probing
//! are over (the scan's loop must not wait on it), then gathers each host's evidence, and
//! hands the printer the hint before the ports.

pub mod gather;
pub(crate) mod tcp;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::contract::error::Result;
use common::contract::record::{PortState, Reason};
use common::services::ports::Proto;
use nix::sys::signalfd::SignalFd;

use crate::engine::{Observer, TargetPort};
use crate::service::{Identified, Identity};
use crate::targets::Host;

pub use tcp::Segment;

/// A family of operating systems, as far as the evidence can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Linux,
    Windows,
    /// FreeBSD, OpenBSD, NetBSD.
    Bsd,
    MacOs,
    Solaris,
    /// A router, switch or other appliance (TTL 255, which Solaris shares).
    NetworkDevice,
}

impl Family {
    /// The name records and the report give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linux => "Linux",
            Self::Windows => "Windows",
            Self::Bsd => "BSD",
            Self::MacOs => "macOS",
            Self::Solaris => "Solaris",
            Self::NetworkDevice => "network device",
        }
    }

    /// nmap's `<osclass>` attributes: vendor, osfamily, type.
    pub fn nmap_class(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Linux => ("Linux", "Linux", "general purpose"),
            Self::Windows => ("Microsoft", "Windows", "general purpose"),
            Self::Bsd => ("BSD", "BSD", "general purpose"),
            Self::MacOs => ("Apple", "Mac OS X", "general purpose"),
            Self::Solaris => ("Oracle", "Solaris", "general purpose"),
            Self::NetworkDevice => ("unknown", "embedded", "specialized"),
        }
    }

    /// The CPE of the family's system, where one names it whole.
    pub fn cpe(self) -> Option<&'static str> {
        match self {
            Self::Linux => Some("cpe:/o:linux:linux_kernel"),
            Self::Windows => Some("cpe:/o:microsoft:windows"),
            Self::MacOs => Some("cpe:/o:apple:mac_os_x"),
            Self::Solaris => Some("cpe:/o:oracle:solaris"),
            Self::Bsd | Self::NetworkDevice => None,
        }
    }
}

/// The families a host whose packets start at `initial` TTL may run.
fn families_of_ttl(initial: u8) -> &'static [Family] {
    match initial {
        64 => &[Family::Linux, Family::Bsd, Family::MacOs],
        128 => &[Family::Windows],
        255 => &[Family::Solaris, Family::NetworkDevice],
        _ => &[],
    }
}

/// The initial TTL a packet that arrives with `ttl` most likely left with: the smallest
/// of the values systems use (32, 64, 128, 255) not below it, since each router on the
/// way takes one off and paths are far shorter than the gaps between them.
pub fn initial_ttl(ttl: u8) -> u8 {
    [32, 64, 128]
        .into_iter()
        .find(|&initial| ttl <= initial)
        .unwrap_or(255)
}

/// SYN-ACK option layouts of the stacks we tell apart, answering a SYN that offers every
/// option (as Linux's connect() does): (initial TTL, layout, family). After p0f's
/// `[tcp:response]` signatures; EOL padding at the end is left out of the layout read.
const SYN_ACK_LAYOUTS: &[(u8, &str, Family)] = &[
    (64, "mss,sok,ts,nop,ws", Family::Linux),
    // Linux with timestamps turned off.
    (64, "mss,nop,nop,sok,nop,ws", Family::Linux),
    (64, "mss,nop,ws,sok,ts", Family::Bsd),
    (64, "mss,nop,nop,sok,nop,ws,nop,nop,ts", Family::Bsd),
    (64, "mss,nop,ws,nop,nop,ts,sok", Family::MacOs),
    (128, "mss,nop,ws,sok,ts", Family::Windows),
    (128, "mss,nop,ws,nop,nop,sok", Family::Windows),
    (128, "mss,nop,ws,nop,nop,ts,nop,nop,sok", Family::Windows),
];

/// The family whose SYN-ACK has `layout` and starts at `initial` TTL, if one does.
fn family_of_syn_ack(initial: u8, layout: &str) -> Option<Family> {
    let layout = layout.trim_end_matches(",eol");
    SYN_ACK_LAYOUTS
        .iter()
        .find(|(ttl, known, _)| *ttl == initial && *known == layout)
        .map(|(_, _, family)| *family)
}

/// Words in a banner that name a system: (word, family, distribution). Matched whole,
/// in any case.
const SYSTEM_WORDS: &[(&str, Family, Option<&str>)] = &[
    ("debian", Family::Linux, Some("Debian")),
    ("ubuntu", Family::Linux, Some("Ubuntu")),
    ("raspbian", Family::Linux, Some("Raspbian")),
    ("fedora", Family::Linux, Some("Fedora")),
    ("centos", Family::Linux, Some("CentOS")),
    ("red hat", Family::Linux, Some("Red Hat")),
    ("rhel", Family::Linux, Some("Red Hat")),
    ("alpine", Family::Linux, Some("Alpine")),
    ("suse", Family::Linux, Some("SUSE")),
    ("gentoo", Family::Linux, Some("Gentoo")),
    ("linux", Family::Linux, None),
    ("windows", Family::Windows, None),
    ("win32", Family::Windows, None),
    ("win64", Family::Windows, None),
    ("microsoft", Family::Windows, None),
    ("freebsd", Family::Bsd, Some("FreeBSD")),
    ("openbsd", Family::Bsd, Some("OpenBSD")),
    ("netbsd", Family::Bsd, Some("NetBSD")),
    ("darwin", Family::MacOs, None),
    ("mac os x", Family::MacOs, None),
    ("macos", Family::MacOs, None),
    ("solaris", Family::Solaris, None),
    ("sunos", Family::Solaris, None),
];

/// Operating-system CPE prefixes (`cpe:/o:`): (prefix, family, distribution).
const SYSTEM_CPES: &[(&str, Family, Option<&str>)] = &[
    ("cpe:/o:debian:", Family::Linux, Some("Debian")),
    ("cpe:/o:canonical:ubuntu", Family::Linux, Some("Ubuntu")),
    ("cpe:/o:redhat:", Family::Linux, Some("Red Hat")),
    ("cpe:/o:fedoraproject:", Family::Linux, Some("Fedora")),
    ("cpe:/o:linux:", Family::Linux, None),
    ("cpe:/o:microsoft:windows", Family::Windows, None),
    ("cpe:/o:freebsd:", Family::Bsd, Some("FreeBSD")),
    ("cpe:/o:openbsd:", Family::Bsd, Some("OpenBSD")),
    ("cpe:/o:netbsd:", Family::Bsd, Some("NetBSD")),
    ("cpe:/o:apple:", Family::MacOs, None),
    ("cpe:/o:sun:", Family::Solaris, None),
    ("cpe:/o:oracle:solaris", Family::Solaris, None),
];

/// What a system-naming text says: its family and distribution, the most precise
/// mention winning (a distribution over a bare family). `None` if it names no system, or
/// names two families.
pub fn system_named(texts: &[&str]) -> Option<(Family, Option<&'static str>)> {
    let mut found: Vec<(Family, Option<&'static str>)> = Vec::new();
    for text in texts {
        let lower = text.to_ascii_lowercase();
        // A CPE names its vendor too (`cpe:/a:openbsd:openssh`): only an `o` (system)
        // CPE counts, and its words are not read again as words.
        let (cpes, words): (Vec<&str>, Vec<&str>) = lower
            .split_ascii_whitespace()
            .partition(|token| token.starts_with("cpe:/"));
        for cpe in cpes {
            found.extend(
                SYSTEM_CPES
                    .iter()
                    .filter(|(prefix, _, _)| cpe.starts_with(prefix))
                    .map(|(_, family, distribution)| (*family, *distribution)),
            );
        }
        let words = words.join(" ");
        found.extend(
            SYSTEM_WORDS
                .iter()
                .filter(|(word, _, _)| contains_word(&words, word))
                .map(|(_, family, distribution)| (*family, *distribution)),
        );
    }
    let family = found.first()?.0;
    if found.iter().any(|(other, _)| *other != family) {
        return None;
    }
    let distribution = found.iter().find_map(|(_, distribution)| *distribution);
    Some((family, distribution))
}

/// Whether `word` stands in `text` on its own, not inside a longer word ("linux" in
/// "Linux 6.1" or "x86_64-linux", not in "linuxconf").
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// One thing seen of a host, or one thing that could not be looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The TTL (IPv4) or hop limit (IPv6) of its ICMP echo reply.
    Echo { ttl: u8 },
    /// The SYN-ACK of a connect() to `port`, read on a raw socket.
    SynAck {
        port: u16,
        ttl: u8,
        segment: Segment,
    },
    /// A service's identity that names a system.
    Banner {
        port: u16,
        said: String,
        family: Family,
        distribution: Option<&'static str>,
    },
    /// What could not be seen, and why.
    Unseen(String),
}

/// What one piece of evidence says: the families it allows, and how much it weighs. A
/// TTL alone weighs 1 (many systems share one), a SYN-ACK's layout 2, a banner 3.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vote {
    families: Vec<Family>,
    weight: u32,
}

impl Evidence {
    fn vote(&self) -> Option<Vote> {
        let (families, weight) = match self {
            Self::Echo { ttl } => (families_of_ttl(initial_ttl(*ttl)).to_vec(), 1),
            Self::SynAck { ttl, segment, .. } => {
                let initial = initial_ttl(*ttl);
                match family_of_syn_ack(initial, &segment.layout()) {
                    Some(family) => (vec![family], 2),
                    None => (families_of_ttl(initial).to_vec(), 1),
                }
            }
            Self::Banner { family, .. } => (vec![*family], 3),
            Self::Unseen(_) => return None,
        };
        (!families.is_empty()).then_some(Vote { families, weight })
    }

    /// The evidence in a line: what was seen and what it points to.
    pub fn describe(&self) -> String {
        let pointing = |vote: Option<Vote>| match vote {
            Some(vote) => {
                let names: Vec<&str> = vote.families.iter().map(|f| f.name()).collect();
                format!(" -> {}", names.join(" or "))
            }
            None => " -> no family".to_owned(),
        };
        match self {
            Self::Echo { ttl } => format!(
                "ICMP echo reply TTL {ttl} (initial {}, {} hops){}",
                initial_ttl(*ttl),
                initial_ttl(*ttl) - ttl,
                pointing(self.vote())
            ),
            Self::SynAck { port, ttl, segment } => format!(
                "SYN-ACK from {port}/tcp: TTL {ttl}, window {}, options {} ({}){}",
                segment.window,
                segment.layout(),
                segment.values(),
                pointing(self.vote())
            ),
            Self::Banner {
                port,
                said,
                family,
                distribution,
            } => format!(
                "{port}/tcp names a system: {said} -> {}{}",
                family.name(),
                distribution.map_or(String::new(), |d| format!(" ({d})"))
            ),
            Self::Unseen(why) => why.clone(),
        }
    }

    /// The hops on the way, from a TTL seen.
    fn hops(&self) -> Option<u8> {
        match self {
            Self::Echo { ttl } | Self::SynAck { ttl, .. } => Some(initial_ttl(*ttl) - ttl),
            _ => None,
        }
    }
}

/// Why a hint is "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Too little was seen to name a family.
    Thin,
    /// What was seen points to different families.
    Contradictory,
}

/// What the evidence says of a host's system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The family, or why none is named.
    pub verdict: std::result::Result<Family, Unknown>,
    /// The distribution (or BSD) a banner named, where it agrees with the family.
    pub distribution: Option<&'static str>,
    /// How sure, in percent; 0 when unknown.
    pub accuracy: u8,
    /// Each piece of evidence in a line, in the order gathered.
    pub evidence: Vec<String>,
    /// Routers on the way, from the TTL seen.
    pub distance: Option<u8>,
    /// The open port whose SYN-ACK was read, if one was.
    pub port_used: Option<u16>,
    /// The family banners name, for nmap's "Service Info: OS:" line.
    pub service_family: Option<Family>,
}

impl Hint {
    /// "Linux (Debian)", "Windows", or "unknown".
    pub fn name(&self) -> String {
        match (self.verdict, self.distribution) {
            (Ok(family), Some(distribution)) => format!("{} ({distribution})", family.name()),
            (Ok(family), None) => family.name().to_owned(),
            (Err(_), _) => "unknown".to_owned(),
        }
    }

    /// The family's name, or "unknown".
    pub fn family_name(&self) -> &'static str {
        self.verdict.map_or("unknown", Family::name)
    }

    /// The evidence in one line, `; ` between its pieces.
    pub fn evidence_line(&self) -> String {
        self.evidence.join("; ")
    }
}

/// Below this weight of evidence for a family, it is not named.
const LEAST_SUPPORT: u32 = 2;
/// Below this accuracy, the hint is "unknown".
const LEAST_ACCURACY: u32 = 50;
/// The accuracy never claimed: this is a hint, not a fingerprint.
const MOST_ACCURACY: u32 = 98;

/// The hint `evidence` gives: the family with the most weight behind it, if that is at
/// least [`LEAST_SUPPORT`] and no other family has as much; its accuracy 30% plus 12 per
/// unit of weight for it (at most 98%), less 25 per unit against it; "unknown" below 50%.
/// The same TTL seen twice (echo and SYN-ACK) counts once.
pub fn infer(evidence: &[Evidence]) -> Hint {
    let mut votes: Vec<Vote> = Vec::new();
    for vote in evidence.iter().filter_map(Evidence::vote) {
        if vote.weight == 1 && votes.contains(&vote) {
            continue;
        }
        votes.push(vote);
    }
    let mut support: HashMap<Family, u32> = HashMap::new();
    for vote in &votes {
        for family in &vote.families {
            *support.entry(*family).or_default() += vote.weight;
        }
    }
    let mut ranked: Vec<(Family, u32)> = support.into_iter().collect();
    ranked.sort_by(|(a, a_weight), (b, b_weight)| b_weight.cmp(a_weight).then(a.cmp(b)));
    let total: u32 = votes.iter().map(|vote| vote.weight).sum();
    let verdict = match ranked.as_slice() {
        [] => Err(Unknown::Thin),
        [(_, weight), ..] if *weight < LEAST_SUPPORT => Err(Unknown::Thin),
        [(_, first), (_, second), ..] if first == second => Err(Unknown::Contradictory),
        [(family, weight), ..] => {
            let against = total - weight;
            let accuracy = (30 + 12 * weight).min(MOST_ACCURACY);
            match accuracy.checked_sub(25 * against) {
                Some(accuracy) if accuracy >= LEAST_ACCURACY => Ok((*family, accuracy)),
                _ => Err(Unknown::Contradictory),
            }
        }
    };
    let banners = || {
        evidence.iter().filter_map(|seen| match seen {
            Evidence::Banner {
                family,
                distribution,
                ..
            } => Some((*family, *distribution)),
            _ => None,
        })
    };
    let distribution = verdict.ok().and_then(|(family, _)| {
        let named: Vec<&str> = banners()
            .filter(|(of, _)| *of == family)
            .filter_map(|(_, distribution)| distribution)
            .collect();
        let first = *named.first()?;
        named.iter().all(|other| *other == first).then_some(first)
    });
    let service_family = banners()
        .next()
        .map(|(family, _)| family)
        .filter(|family| banners().all(|(other, _)| other == *family));
    Hint {
        verdict: verdict.map(|(family, _)| family),
        distribution,
        accuracy: verdict.map_or(0, |(_, accuracy)| {
            u8::try_from(accuracy).expect("at most 98")
        }),
        evidence: evidence.iter().map(Evidence::describe).collect(),
        distance: evidence.iter().find_map(Evidence::hops),
        port_used: evidence.iter().find_map(|seen| match seen {
            Evidence::SynAck { port, .. } => Some(*port),
            _ => None,
        }),
        service_family,
    }
}

/// The evidence the identities of a host's open ports give: each that names a system.
fn banner_evidence(port: u16, identity: &Identity) -> Option<Evidence> {
    let banner = identity
        .banner
        .as_ref()
        .map(|banner| String::from_utf8_lossy(banner.as_bytes()).into_owned())
        .unwrap_or_default();
    // The greeting's first line and an HTTP Server header: what a server says of
    // itself, not a page's text.
    let first_line = banner.lines().next().unwrap_or_default();
    let server = banner
        .lines()
        .find(|line| line.len() > 7 && line[..7].eq_ignore_ascii_case("server:"))
        .unwrap_or_default();
    let fields = [
        identity.product.as_deref().unwrap_or_default(),
        identity.version.as_deref().unwrap_or_default(),
        identity.extra_info.as_deref().unwrap_or_default(),
        identity.cpe.as_deref().unwrap_or_default(),
        first_line,
        server,
    ];
    let (family, distribution) = system_named(&fields)?;
    // As the report's VERSION column says it: product, version, (extra info).
    let said: Vec<String> = [&identity.product, &identity.version]
        .into_iter()
        .flatten()
        .cloned()
        .chain(identity.extra_info.as_ref().map(|info| format!("({info})")))
        .collect();
    let said = if said.is_empty() {
        first_line.trim().to_owned()
    } else {
        said.join(" ")
    };
    Some(Evidence::Banner {
        port,
        said,
        family,
        distribution,
    })
}

/// A printer that takes hints as well as results.
pub trait Hinted: Identified {
    /// The hint of `host`, before its open ports and its end.
    fn os_hint(&mut self, host: &Host, hint: Hint) -> Result<()>;
}

/// An open TCP port held until its host is done.
struct HeldPort {
    port: TargetPort,
    state: (PortState, Reason),
    rtt: Option<Duration>,
    identity: Option<Identity>,
}

/// The observer between -sV's `Probing` and the printer: holds each host's open TCP
/// ports (with their identities) and its end, and once the scan and the probing are over
/// ([`finish`](Hinting::finish)) gathers each host's evidence, and gives the printer the
/// hint, the ports and the end, in that order.
pub struct Hinting<'a, O> {
    inner: &'a mut O,
    gatherer: gather::Gatherer<'a>,
    held: HashMap<Host, Vec<HeldPort>>,
    /// Hosts that answered some probe: up, with or without an open port.
    answered: HashSet<Host>,
    /// Hosts whose end came, in order, waiting for [`finish`](Hinting::finish).
    done: Vec<Host>,
}

impl<'a, O: Hinted> Hinting<'a, O> {
    /// Gathering stops at a signal on `signals`, as the scan does.
    pub fn new(inner: &'a mut O, signals: &'a SignalFd, sockets: gather::HintSockets) -> Self {
        Self {
            inner,
            gatherer: gather::Gatherer::new(signals, sockets),
            held: HashMap::new(),
            answered: HashSet::new(),
            done: Vec::new(),
        }
    }
}

impl<O: Hinted> Hinting<'_, O> {
    /// Once scanning and probing are over: gathers the evidence of each host that is done
    /// and gives the printer its hint, its open ports and its end, host by host (unless
    /// the run was `interrupted`: then the ports and ends alone). What is still held goes
    /// on too, without a hint (after an interrupt, hosts in progress). Whether a signal
    /// stopped the gathering.
    pub fn finish(mut self, interrupted: bool) -> Result<bool> {
        for host in std::mem::take(&mut self.done) {
            let held = self.held.remove(&host).unwrap_or_default();
            self.answered.remove(&host);
            if !interrupted && !self.gatherer.interrupted() {
                let evidence = self.evidence(&host, &held);
                if !self.gatherer.interrupted() {
                    self.inner.os_hint(&host, infer(&evidence))?;
                }
            }
            for port in held {
                self.inner
                    .identified(&host, port.port, port.state, port.rtt, port.identity)?;
            }
            self.inner.host_done(&host)?;
        }
        for (host, held) in std::mem::take(&mut self.held) {
            for port in held {
                self.inner
                    .identified(&host, port.port, port.state, port.rtt, port.identity)?;
            }
        }
        Ok(self.gatherer.interrupted())
    }

    /// What can be seen of `host`, whose open ports are `held`.
    fn evidence(&mut self, host: &Host, held: &[HeldPort]) -> Vec<Evidence> {
        let mut open: Vec<u16> = held
            .iter()
            .filter(|held| held.port.proto == Proto::Tcp)
            .map(|held| held.port.port)
            .collect();
        open.sort_unstable();
        if open.is_empty() {
            // An echo's TTL alone names no family: it is not worth a wait per host.
            return vec![Evidence::Unseen(
                "no open TCP port: no SYN-ACK or banner to read, and a TTL alone would name \
                 no family"
                    .to_owned(),
            )];
        }
        let rtt = held.iter().filter_map(|held| held.rtt).min();
        let mut evidence = self.gatherer.gather(host.address, &open, rtt);
        evidence.extend(
            held.iter()
                .filter_map(|held| banner_evidence(held.port.port, held.identity.as_ref()?)),
        );
        evidence
    }
}

impl<O: Hinted> Identified for Hinting<'_, O> {
    fn identified(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: (PortState, Reason),
        rtt: Option<Duration>,
        identity: Option<Identity>,
    ) -> Result<()> {
        self.held.entry(host.clone()).or_default().push(HeldPort {
            port,
            state,
            rtt,
            identity,
        });
        Ok(())
    }
}

impl<O: Hinted> Observer for Hinting<'_, O> {
    fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        if reason != Reason::NoResponse {
            self.answered.insert(host.clone());
        }
        self.inner.result(host, port, state, reason, rtt)
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.inner.host_failed(host, why);
    }

    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration) {
        self.inner.icmp_limited(host, interval, remaining);
    }

    /// A host with something to look at waits for [`finish`](Hinting::finish): its end
    /// may come while the scan still runs, whose loop must not wait on the gathering.
    fn host_done(&mut self, host: &Host) -> Result<()> {
        if self.held.contains_key(host) || self.answered.contains(host) {
            self.done.push(host.clone());
            return Ok(());
        }
        self.inner.host_done(host)
    }

    fn progress(&mut self, now: Instant, done: u64, total: u64) -> Result<()> {
        self.inner.progress(now, done, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcp::TcpOption::{Mss, Nop, SackPermitted, Timestamps, WindowScale};

    fn syn_ack(port: u16, ttl: u8, window: u16, options: Vec<tcp::TcpOption>) -> Evidence {
        Evidence::SynAck {
            port,
            ttl,
            segment: Segment {
                source_port: port,
                destination_port: 40000,
                flags: 0x12,
                window,
                options,
            },
        }
    }

    fn linux_syn_ack(ttl: u8) -> Evidence {
        let options = vec![Mss(65495), SackPermitted, Timestamps, Nop, WindowScale(7)];
        syn_ack(22, ttl, 65483, options)
    }

    fn windows_syn_ack() -> Evidence {
        let options = vec![Mss(1460), Nop, WindowScale(8), Nop, Nop, SackPermitted];
        syn_ack(445, 127, 65535, options)
    }

    fn banner(text: &str) -> Evidence {
        let (family, distribution) = system_named(&[text]).unwrap();
        Evidence::Banner {
            port: 22,
            said: text.to_owned(),
            family,
            distribution,
        }
    }

    /// A printer that writes down what it is given, in order.
    #[derive(Default)]
    struct Written(Vec<String>);

    impl Observer for Written {
        fn result(
            &mut self,
            host: &Host,
            port: TargetPort,
            state: PortState,
            _reason: Reason,
            _rtt: Option<Duration>,
        ) -> Result<()> {
            let state = state.as_str();
            self.0.push(format!("{} {} {state}", host.label, port.port));
            Ok(())
        }
        fn host_failed(&mut self, _host: &Host, _why: &str) {}
        fn icmp_limited(&mut self, _host: &Host, _interval: Duration, _remaining: Duration) {}
        fn host_done(&mut self, host: &Host) -> Result<()> {
            self.0.push(format!("{} done", host.label));
            Ok(())
        }
        fn progress(&mut self, _now: Instant, _done: u64, _total: u64) -> Result<()> {
            Ok(())
        }
    }

    impl Identified for Written {
        fn identified(
            &mut self,
            host: &Host,
            port: TargetPort,
            _state: (PortState, Reason),
            _rtt: Option<Duration>,
            identity: Option<Identity>,
        ) -> Result<()> {
            let product = identity.and_then(|identity| identity.product);
            self.0
                .push(format!("{} {} open {product:?}", host.label, port.port));
            Ok(())
        }
    }

    impl Hinted for Written {
        fn os_hint(&mut self, host: &Host, hint: Hint) -> Result<()> {
            self.0.push(format!("{} hint {}", host.label, hint.name()));
            Ok(())
        }
    }

    #[test]
    fn hints_come_after_the_scan_before_each_hosts_ports_and_end() {
        use common::contract::record::Method;
        use nix::sys::signal::SigSet;

        let host = |label: &str, address: &str| Host {
            label: label.to_owned(),
            address: address.parse().unwrap(),
            index: 0,
        };
        let (quiet, shown) = (host("quiet", "127.0.0.3"), host("shown", "127.0.0.2"));
        let tcp = |port| TargetPort {
            proto: Proto::Tcp,
            port,
        };
        let identity = Identity {
            service: "ssh".to_owned(),
            product: Some("OpenSSH".to_owned()),
            version: Some("9.2p1 Debian 2+deb12u3".to_owned()),
            extra_info: None,
            tunnel: None,
            cpe: None,
            banner: None,
            method: Method::Probed,
            confidence: 10,
            certificate: None,
        };
        // No signal ever comes to this descriptor.
        let signals = SignalFd::new(&SigSet::empty()).unwrap();
        let rtt = Some(Duration::from_millis(1));
        let open = (PortState::Open, Reason::SynAck);
        for interrupted in [false, true] {
            let mut written = Written::default();
            // No socket: what the hint gathers is said unseen.
            let sockets = gather::HintSockets {
                pinger: None,
                raw_tcp: [None, None],
            };
            let mut hinting = Hinting::new(&mut written, &signals, sockets);
            hinting
                .result(&quiet, tcp(1), PortState::Closed, Reason::ConnRefused, rtt)
                .unwrap();
            hinting.host_done(&quiet).unwrap();
            // Port 1 of 127.0.0.2 refuses: no SYN-ACK, but the banner names Debian.
            hinting
                .identified(&shown, tcp(1), open, rtt, Some(identity.clone()))
                .unwrap();
            hinting.host_done(&shown).unwrap();
            let never_done = host("cut", "127.0.0.4");
            hinting
                .identified(&never_done, tcp(2), open, rtt, None)
                .unwrap();
            assert!(!hinting.finish(interrupted).unwrap());
            let mut expected = vec![
                "quiet 1 closed",
                "quiet hint unknown",
                "quiet done",
                "shown hint Linux (Debian)",
                "shown 1 open Some(\"OpenSSH\")",
                "shown done",
                "cut 2 open None",
            ];
            if interrupted {
                expected.retain(|line| !line.contains(" hint "));
            }
            assert_eq!(written.0, expected, "interrupted: {interrupted}");
        }
    }

    #[test]
    fn the_initial_ttl_is_the_next_common_value_up() {
        for (ttl, initial) in [
            (1, 32),
            (32, 32),
            (33, 64),
            (64, 64),
            (52, 64),
            (65, 128),
            (128, 128),
            (113, 128),
            (129, 255),
            (255, 255),
            (240, 255),
        ] {
            assert_eq!(initial_ttl(ttl), initial, "{ttl}");
        }
    }

    #[test]
    fn banners_name_systems_by_whole_words_and_cpes() {
        type Case<'a> = (&'a [&'a str], Option<(Family, Option<&'a str>)>);
        let cases: &[Case<'_>] = &[
            (
                &["OpenSSH", "9.2p1 Debian 2+deb12u3", "protocol 2.0"],
                Some((Family::Linux, Some("Debian"))),
            ),
            (
                &[
                    "OpenSSH",
                    "8.9p1 Ubuntu 3ubuntu0.6",
                    "Ubuntu Linux; protocol 2.0",
                ],
                Some((Family::Linux, Some("Ubuntu"))),
            ),
            (
                &["Apache httpd", "2.4.62", "(Debian)"],
                Some((Family::Linux, Some("Debian"))),
            ),
            (
                &["Microsoft IIS httpd", "10.0"],
                Some((Family::Windows, None)),
            ),
            (
                &["OpenSSH", "for_Windows_8.1"],
                Some((Family::Windows, None)),
            ),
            (
                &["cpe:/a:openbsd:openssh:9.2p1 cpe:/o:linux:linux_kernel"],
                Some((Family::Linux, None)),
            ),
            (
                &["cpe:/o:freebsd:freebsd:14.1"],
                Some((Family::Bsd, Some("FreeBSD"))),
            ),
            (
                &["SSH-2.0-OpenSSH_9.7 FreeBSD-20240806"],
                Some((Family::Bsd, Some("FreeBSD"))),
            ),
            // cpe:/a:openbsd:openssh is an application, not the system.
            (&["OpenSSH", "9.6", "cpe:/a:openbsd:openssh:9.6"], None),
            (&["nginx", "1.22.1"], None),
            // Inside a longer word, no system is named.
            (&["linuxconf", "debianutils"], None),
            // Two families: no answer.
            (&["Debian", "Windows"], None),
        ];
        for (texts, expected) in cases {
            assert_eq!(system_named(texts), *expected, "{texts:?}");
        }
    }

    #[test]
    fn syn_ack_layouts_name_their_stacks_with_their_ttl() {
        let cases = [
            (64, "mss,sok,ts,nop,ws", Some(Family::Linux)),
            (64, "mss,nop,nop,sok,nop,ws", Some(Family::Linux)),
            (64, "mss,nop,ws,sok,ts", Some(Family::Bsd)),
            (128, "mss,nop,ws,sok,ts", Some(Family::Windows)),
            (64, "mss,nop,ws,nop,nop,ts,sok,eol", Some(Family::MacOs)),
            // Linux's layout with Windows's TTL: neither.
            (128, "mss,sok,ts,nop,ws", None),
            (64, "mss", None),
        ];
        for (initial, layout, expected) in cases {
            assert_eq!(
                family_of_syn_ack(initial, layout),
                expected,
                "{initial} {layout}"
            );
        }
    }

    #[test]
    fn evidence_combines_into_a_family_a_distribution_and_a_confidence() {
        // (evidence, name, accuracy)
        let no_raw = || Evidence::Unseen("no raw socket".to_owned());
        let cases: Vec<(Vec<Evidence>, &str, u8)> = vec![
            // All three agree.
            (
                vec![
                    Evidence::Echo { ttl: 64 },
                    linux_syn_ack(64),
                    banner("OpenSSH 9.2p1 Debian 2+deb12u3"),
                ],
                "Linux (Debian)",
                98,
            ),
            // The echo and the SYN-ACK: Linux's layout.
            (
                vec![Evidence::Echo { ttl: 64 }, linux_syn_ack(64)],
                "Linux",
                66,
            ),
            // The echo and a banner.
            (
                vec![Evidence::Echo { ttl: 63 }, no_raw(), banner("Ubuntu")],
                "Linux (Ubuntu)",
                78,
            ),
            // The SYN-ACK alone.
            (vec![linux_syn_ack(64)], "Linux", 54),
            (
                vec![
                    Evidence::Echo { ttl: 125 },
                    windows_syn_ack(),
                    banner("Microsoft IIS"),
                ],
                "Windows",
                98,
            ),
            // Thin: a TTL alone, however clear; nothing at all.
            (vec![Evidence::Echo { ttl: 128 }], "unknown", 0),
            (vec![Evidence::Echo { ttl: 64 }, no_raw()], "unknown", 0),
            (vec![no_raw()], "unknown", 0),
            (vec![], "unknown", 0),
            // The same TTL seen in the echo and an unknown SYN-ACK counts once.
            (
                vec![
                    Evidence::Echo { ttl: 64 },
                    syn_ack(80, 64, 1000, vec![Mss(1460)]),
                ],
                "unknown",
                0,
            ),
            // Contradictions: a Windows banner on a Linux stack.
            (
                vec![
                    Evidence::Echo { ttl: 64 },
                    linux_syn_ack(64),
                    banner("Windows"),
                ],
                "unknown",
                0,
            ),
            (vec![banner("Debian"), windows_syn_ack()], "unknown", 0),
        ];
        for (evidence, name, accuracy) in cases {
            let hint = infer(&evidence);
            assert_eq!(
                (hint.name().as_str(), hint.accuracy),
                (name, accuracy),
                "{evidence:?}"
            );
            assert_eq!(hint.evidence.len(), evidence.len());
        }
        let contradictory = infer(&[linux_syn_ack(64), banner("Windows")]);
        assert_eq!(contradictory.verdict, Err(Unknown::Contradictory));
        assert_eq!(
            infer(&[Evidence::Echo { ttl: 64 }]).verdict,
            Err(Unknown::Thin)
        );
    }

    #[test]
    fn a_hint_says_its_evidence_distance_and_port() {
        let hint = infer(&[
            Evidence::Echo { ttl: 61 },
            linux_syn_ack(61),
            banner("OpenSSH 9.2p1 Debian 2+deb12u3"),
        ]);
        assert_eq!(hint.distance, Some(3));
        assert_eq!(hint.port_used, Some(22));
        assert_eq!(hint.service_family, Some(Family::Linux));
        assert_eq!(
            hint.evidence,
            [
                "ICMP echo reply TTL 61 (initial 64, 3 hops) -> Linux or BSD or macOS",
                "SYN-ACK from 22/tcp: TTL 61, window 65483, options mss,sok,ts,nop,ws \
                 (mss 65495, window scale 7) -> Linux",
                "22/tcp names a system: OpenSSH 9.2p1 Debian 2+deb12u3 -> Linux (Debian)",
            ]
        );
        // Banners that disagree on the distribution name none.
        let mixed = infer(&[linux_syn_ack(64), banner("Debian"), banner("Ubuntu")]);
        assert_eq!(mixed.name(), "Linux");
    }
}
