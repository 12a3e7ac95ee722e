//! Version detection (`-sV`, issue #12): what runs behind each open port, told by its
//! answers to probes matched against rules (`db`, in nmap's grammar), the probing done by
//! state machines (`stage`) on the scan's own event loop, each port as soon as the scan
//! finds it open.
//!
//! The results of the ports being probed are held ([`Probing`]) until each is identified,
//! so that each is printed once, with its service; every other result goes out as it
//! comes.

pub(crate) mod db;
pub(crate) mod stage;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::contract::error::{Error, Result};
use common::contract::record::{Method, OsText, PortState, Reason};
use common::services::ServiceDb;
use common::services::ports::Proto;
use socket2::Socket;

use crate::driver::{Driver, Wakeup};
use crate::engine::{FollowUp, Observer, TargetPort};
use crate::targets::Host;

pub use db::ProbeDb;
use stage::{Choice, Identifier};

/// portscan's own probes and rules, compiled in.
const BUILTIN: &str = include_str!("service/probes.txt");

/// nmap's confidence in a name an answer matched, and in one from the port table.
const PROBED_CONFIDENCE: u8 = 10;
const TABLE_CONFIDENCE: u8 = 3;
/// nmap's confidence in `tcpwrapped`.
const WRAPPED_CONFIDENCE: u8 = 8;

/// The probes and rules compiled into portscan.
pub fn builtin() -> ProbeDb {
    ProbeDb::parse(BUILTIN.as_bytes()).expect("the built-in probes file parses (a unit test)")
}

/// Where nmap keeps its probes (Debian's nmap-common).
const NMAP_PROBES: &str = "/usr/share/nmap/nmap-service-probes";

/// nmap's probes and rules, read now (`--probe-db nmap`), so users get its signatures
/// without our copying them.
pub fn nmap_db() -> Result<ProbeDb> {
    let text = std::fs::read(NMAP_PROBES).map_err(|e| Error::io(NMAP_PROBES, e))?;
    ProbeDb::parse(&text).map_err(|why| Error::failed(format!("{NMAP_PROBES}: {why}")))
}

/// What version detection says of one port: the fields of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub service: String,
    pub product: Option<String>,
    pub version: Option<String>,
    pub extra_info: Option<String>,
    pub tunnel: Option<String>,
    pub cpe: Option<String>,
    pub banner: Option<OsText>,
    pub method: Method,
    pub confidence: u8,
    /// The TLS server's certificate, in a tunnel.
    pub certificate: Option<tls::Certificate>,
}

impl Identity {
    /// The identity of a port from what probing found, or, where nothing matched, from
    /// the port number's usual service in `table`.
    fn of(probed: stage::Probed, port: TargetPort, table: &ServiceDb) -> Self {
        let banner = (!probed.banner.is_empty()).then(|| OsText::from(probed.banner));
        if probed.wrapped {
            return Self::named("tcpwrapped", Method::Probed, WRAPPED_CONFIDENCE, banner);
        }
        let tunnel = probed.tunnel.then(|| "ssl".to_owned());
        let Some(found) = probed.found else {
            let name = table
                .by_port(port.port, port.proto)
                .map_or("unknown", |service| service.name);
            return Self {
                tunnel,
                certificate: probed.certificate,
                ..Self::named(name, Method::Table, TABLE_CONFIDENCE, banner)
            };
        };
        Self {
            service: found.service,
            product: found.product,
            version: found.version,
            extra_info: found.extra_info,
            tunnel,
            cpe: (!found.cpe.is_empty()).then(|| found.cpe.join(" ")),
            banner,
            method: Method::Probed,
            confidence: PROBED_CONFIDENCE,
            certificate: probed.certificate,
        }
    }

    pub(crate) fn named(
        service: &str,
        method: Method,
        confidence: u8,
        banner: Option<OsText>,
    ) -> Self {
        Self {
            service: service.to_owned(),
            product: None,
            version: None,
            extra_info: None,
            tunnel: None,
            cpe: None,
            banner,
            method,
            confidence,
            certificate: None,
        }
    }
}

/// What -sV was asked to do.
#[derive(Debug)]
pub struct Options {
    pub db: ProbeDb,
    pub intensity: u8,
    /// nmap's `--allports`: probe the ports the file excludes (printers) too.
    pub all_ports: bool,
}

/// A port held while it is probed.
struct Held {
    host: Host,
    port: TargetPort,
    /// What the scan found: open, or for UDP perhaps open|filtered.
    scanned: (PortState, Reason),
    rtt: Option<Duration>,
}

/// The results a printer gets as probing goes, with or without service fields.
pub trait Identified: Observer {
    /// A port version detection probed, in the state probing leaves it in (a UDP port
    /// whose probe drew an answer is open), with what was found (`None`: not probed).
    fn identified(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: (PortState, Reason),
        rtt: Option<Duration>,
        identity: Option<Identity>,
    ) -> Result<()>;
}

/// An observer between the scan and the printer that probes the ports worth probing as
/// the scan finds them, on the scan's own loop ([`FollowUp`]), holding back each until it
/// is identified and the end of each host until its ports are; everything else passes on
/// as it comes. Without a scan (`--from`), [`run`](Self::run) probes alone.
pub struct Probing<'a, O> {
    inner: &'a mut O,
    options: &'a Options,
    table: &'a ServiceDb,
    identifier: Identifier<'a>,
    /// The ports handed to the identifier, by their number there; `None` once printed.
    held: Vec<Option<Held>>,
    /// Per host (its index), the ports not yet identified.
    pending: HashMap<u64, usize>,
    /// Hosts whose scan is done while some of their ports are still probed.
    done: Vec<Host>,
}

/// The first token of probing's sockets, apart from the scan's.
const TOKEN_BASE: usize = crate::engine::FOLLOW_UP_TOKENS;

impl<'a, O: Identified> Probing<'a, O> {
    /// `parallel`: the most ports probed at once, each holding a socket.
    pub fn new(
        inner: &'a mut O,
        options: &'a Options,
        table: &'a ServiceDb,
        parallel: usize,
    ) -> Self {
        let choice = Choice {
            intensity: options.intensity,
            parallel,
        };
        Self {
            inner,
            options,
            table,
            identifier: Identifier::new(&options.db, choice, TOKEN_BASE),
            held: Vec::new(),
            pending: HashMap::new(),
            done: Vec::new(),
        }
    }

    /// Whether a port in this state is probed: open TCP ports, and UDP ports that may be
    /// open (a probe's answer tells), but not those the file excludes (the printers' TCP
    /// ports) unless asked.
    fn worth_probing(&self, port: TargetPort, state: PortState) -> bool {
        let excluded = !self.options.all_ports && self.options.db.excludes(port.proto, port.port);
        let maybe_open = match port.proto {
            Proto::Tcp => state == PortState::Open,
            Proto::Udp => matches!(state, PortState::Open | PortState::OpenFiltered),
            _ => false,
        };
        maybe_open && !excluded
    }

    /// Prints the ports identified since the last call, and the ends of the hosts that
    /// have none left.
    fn report_finished(&mut self) -> Result<()> {
        let finished: Vec<(usize, stage::Probed)> = self.identifier.finished().collect();
        for (number, probed) in finished {
            let held = self.held[number]
                .take()
                .expect("each port is identified once");
            let state = match held.port.proto {
                Proto::Udp if probed.refused => (PortState::Closed, Reason::PortUnreach),
                Proto::Udp if probed.answered => (PortState::Open, Reason::UdpResponse),
                _ => held.scanned,
            };
            let identity =
                (state.0 != PortState::Closed).then(|| Identity::of(probed, held.port, self.table));
            self.inner
                .identified(&held.host, held.port, state, held.rtt, identity)?;
            self.port_settled(&held.host)?;
        }
        Ok(())
    }

    /// One port of `host` is printed: if it was the last, and the host's scan is done, so
    /// is the host.
    fn port_settled(&mut self, host: &Host) -> Result<()> {
        let left = self.pending.get_mut(&host.index).expect("a held host");
        *left -= 1;
        if *left > 0 {
            return Ok(());
        }
        self.pending.remove(&host.index);
        if let Some(at) = self.done.iter().position(|done| done == host) {
            let host = self.done.remove(at);
            self.inner.host_done(&host)?;
        }
        Ok(())
    }

    /// Probes what was handed over, alone on `driver`: for ports read from a file, with no
    /// scan. `false` if a signal stopped it (the ports left are printed without services).
    pub fn run<D: Driver<Socket>>(mut self, driver: &mut D) -> Result<bool> {
        loop {
            self.turn(driver)?;
            if !self.identifier.busy() {
                return Ok(true);
            }
            let now = driver.now();
            let until = self.identifier.deadline().unwrap_or(now);
            driver
                .wait(until.saturating_duration_since(now))
                .map_err(|e| Error::io("probing services", e))?;
            let ready: Vec<Wakeup> = driver.ready().collect();
            for wakeup in ready {
                match wakeup {
                    Wakeup::Signal => {
                        self.release()?;
                        return Ok(false);
                    }
                    Wakeup::Answer(token) => self.ready(token, driver)?,
                }
            }
        }
    }

    /// Gives the printer the ports not identified yet without their services (a signal
    /// stopped the run), then the ends of the hosts held.
    pub fn release(mut self) -> Result<()> {
        self.report_finished()?;
        for held in self.held.into_iter().flatten() {
            self.inner
                .identified(&held.host, held.port, held.scanned, held.rtt, None)?;
        }
        for host in self.done {
            self.inner.host_done(&host)?;
        }
        Ok(())
    }
}

impl<O: Identified> FollowUp<Socket> for Probing<'_, O> {
    fn sockets(&self) -> usize {
        self.identifier.sockets()
    }

    fn busy(&self) -> bool {
        self.identifier.busy()
    }

    fn turn<D: Driver<Socket>>(&mut self, driver: &mut D) -> Result<Option<Instant>> {
        let probing = |e| Error::io("probing services", e);
        self.identifier.expire(driver.now());
        self.identifier.start(driver).map_err(probing)?;
        self.report_finished()?;
        Ok(self.identifier.deadline())
    }

    fn ready<D: Driver<Socket>>(&mut self, token: usize, driver: &mut D) -> Result<()> {
        self.identifier
            .ready(token, driver)
            .map_err(|e| Error::io("probing services", e))
    }
}

impl<O: Identified> Observer for Probing<'_, O> {
    fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        if self.worth_probing(port, state) {
            let address = SocketAddr::new(host.address, port.port);
            // The scan's clock is the driver's, which this observer does not see; a job's
            // first deadline is set when it starts.
            let number = self.identifier.add(address, port.proto, Instant::now());
            debug_assert_eq!(number, self.held.len());
            self.held.push(Some(Held {
                host: host.clone(),
                port,
                scanned: (state, reason),
                rtt,
            }));
            *self.pending.entry(host.index).or_default() += 1;
            return Ok(());
        }
        if state == PortState::Open && port.proto == Proto::Tcp {
            return self
                .inner
                .identified(host, port, (state, reason), rtt, None);
        }
        self.inner.result(host, port, state, reason, rtt)
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.inner.host_failed(host, why);
    }

    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration) {
        self.inner.icmp_limited(host, interval, remaining);
    }

    fn host_done(&mut self, host: &Host) -> Result<()> {
        if self.pending.contains_key(&host.index) {
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

    #[test]
    fn builtin_probes_parse_and_exclude_printers() {
        let db = builtin();
        let tcp = |port| db.excludes(Proto::Tcp, port);
        assert!(tcp(9100) && tcp(9107) && !tcp(9108));
        assert!(
            !db.excludes(Proto::Udp, 9100),
            "the printers' UDP ports are probed"
        );
        let null = db.probe(Proto::Tcp, "NULL").unwrap();
        assert_eq!(null, 0, "the NULL probe comes first");
        assert!(db.probes.len() >= 8);
    }

    /// Each rule of the built-in file against a greeting of the software it names, with
    /// the product and version nmap -sV reports for it.
    #[test]
    fn builtin_rules_name_the_usual_servers() {
        // (probe, answer, service, product, version)
        type Case<'a> = (&'a str, &'a [u8], &'a str, Option<&'a str>, Option<&'a str>);
        let db = builtin();
        let (samba, samba_without_smb1) = (samba_negotiate_answer(), samba_refusal());
        let snmp = snmp_answer();
        let ntp = [&b"\x24\x02\x06\xe9"[..], &[0; 44]].concat();
        let tcp: &[Case<'_>] = &[
            ("NULL", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n", "ssh", Some("OpenSSH"), Some("9.2p1 Debian 2+deb12u10")),
            ("NULL", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n", "ssh", Some("OpenSSH"), Some("8.9p1 Ubuntu 3ubuntu0.6")),
            ("NULL", b"SSH-2.0-OpenSSH_9.6\r\n", "ssh", Some("OpenSSH"), Some("9.6")),
            ("NULL", b"SSH-2.0-dropbear_2022.83\r\n", "ssh", Some("Dropbear sshd"), Some("2022.83")),
            ("NULL", b"220 (vsFTPd 3.0.3)\r\n", "ftp", Some("vsftpd"), Some("3.0.3")),
            ("NULL", b"220 ProFTPD 1.3.8 Server (Debian) [::ffff:127.0.0.1]\r\n", "ftp", Some("ProFTPD"), Some("1.3.8")),
            ("NULL", b"220 mail.example ESMTP Postfix (Debian/GNU)\r\n", "smtp", Some("Postfix smtpd"), None),
            ("NULL", b"220 mail.example ESMTP Exim 4.96 Sat, 05 Dec 2026\r\n", "smtp", Some("Exim smtpd"), Some("4.96")),
            ("NULL", b"+OK Dovecot (Debian) ready.\r\n", "pop3", Some("Dovecot pop3d"), None),
            ("NULL", b"* OK [CAPABILITY IMAP4rev1 SASL-IR] Dovecot (Debian) ready.\r\n", "imap", Some("Dovecot imapd"), None),
            ("NULL", b"Y\0\0\0\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\0\x08\0\0\0", "mysql", Some("MariaDB"), Some("10.11.6")),
            ("NULL", b"J\0\0\0\x0a8.0.36\0\x08\0\0\0", "mysql", Some("MySQL"), Some("8.0.36")),
            ("GetRequest", b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: x\r\n\r\n", "http", Some("nginx"), Some("1.22.1")),
            ("GetRequest", b"HTTP/1.1 200 OK\r\nDate: x\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n", "http", Some("Apache httpd"), Some("2.4.62")),
            ("GetRequest", b"HTTP/1.0 200 OK\r\nServer: lighttpd/1.4.69\r\n\r\n", "http", Some("lighttpd"), Some("1.4.69")),
            ("RedisInfo", b"$3500\r\n# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n", "redis", Some("Redis key-value store"), Some("7.0.15")),
            ("MemcachedVersion", b"VERSION 1.6.18\r\n", "memcached", Some("Memcached"), Some("1.6.18")),
            ("PostgresStartup", b"E\0\0\0\x54SFATAL\0VFATAL\0C28000\0Mrole \"sv\" does not exist\0\0", "postgresql", Some("PostgreSQL DB"), None),
            ("MongoIsMaster", b"\x20\x01\0\0\x05\0\0\0\x01\0\0\0\x01\0\0\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\x08ismaster\0\x01\x10maxWireVersion\0\x11\0\0\0", "mongodb", Some("MongoDB"), None),
            ("DNSVersionBindReqTCP", b"\0\x2b\0\x06\x85\x80\0\x01\0\x01\0\0\0\0\x07version\x04bind\0\0\x10\0\x03\xc0\x0c\0\x10\0\x03\0\0\0\0\0\x0d\x0cdnsmasq-2.90", "domain", Some("dnsmasq"), Some("2.90")),
            ("DNSVersionBindReqTCP", b"\0\x2b\0\x06\x85\x80\0\x01\0\x01\0\0\0\0\x07version\x04bind\0\0\x10\0\x03\xc0\x0c\0\x10\0\x03\0\0\0\0\0\x11\x109.18.28-1-Debian", "domain", Some("ISC BIND"), Some("9.18.28-1-Debian")),
            ("SSLSessionReq", b"\x16\x03\x03\0\x51\x02\0\0\x4d\x03\x03", "ssl", None, None),
            ("GenericLines", b"\r\n\r\n", "echo", None, None),
            ("RTSPOptions", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: VLC/3.0.18\r\nContent-Length: 0\r\nPublic: DESCRIBE,SETUP,TEARDOWN,PLAY,PAUSE,GET_PARAMETER\r\n\r\n", "rtsp", Some("VLC rtspd"), Some("3.0.18")),
            ("RTSPOptions", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nDate: Sat, Dec 05 2026 08:00:00 GMT\r\nPublic: OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE\r\nServer: LIVE555 Streaming Media v2020.08.19\r\n\r\n", "rtsp", Some("LIVE555 Streaming Media"), Some("2020.08.19")),
            ("RTSPOptions", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, ANNOUNCE, GET_PARAMETER, PAUSE, PLAY, RECORD, SETUP, SET_PARAMETER, TEARDOWN\r\nServer: GStreamer RTSP server\r\n\r\n", "rtsp", Some("GStreamer rtspd"), None),
            ("SIPOptions", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP portscan.invalid;branch=z9hG4bK-portscan-1;received=198.18.2.1\r\nFrom: <sip:portscan@portscan.invalid>;tag=ps1\r\nTo: <sip:portscan@portscan.invalid>;tag=as1a2b3c4d\r\nCall-ID: 1@portscan.invalid\r\nCSeq: 1 OPTIONS\r\nServer: Asterisk PBX 20.6.0\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE\r\nContent-Length: 0\r\n\r\n", "sip", Some("Asterisk"), Some("20.6.0")),
            ("SIPOptions", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP portscan.invalid;branch=z9hG4bK-portscan-1\r\nCSeq: 1 OPTIONS\r\nServer: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n", "sip", Some("Kamailio"), Some("5.6.3")),
            ("SIPOptions", b"SIP/2.0 200 OK\r\nCall-ID: 1@portscan.invalid\r\nCSeq: 1 OPTIONS\r\nUser-Agent: FreeSWITCH-mod_sofia/1.10.9-release~64bit\r\nAllow: INVITE, ACK, BYE\r\nContent-Length: 0\r\n\r\n", "sip", Some("FreeSWITCH mod_sofia"), Some("1.10.9-release~64bit")),
            ("SMBNegotiate", &samba, "netbios-ssn", Some("Samba smbd"), Some("3.X - 4.X")),
            ("SMBNegotiate", &samba_without_smb1, "netbios-ssn", Some("Samba smbd"), Some("4.X")),
            // inetutils' telnetd (Debian's inetutils-telnetd) and BusyBox's greetings.
            ("NULL", b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27", "telnet", Some("Linux telnetd"), None),
            ("NULL", b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03\r\nrouter login: ", "telnet", Some("BusyBox telnetd"), None),
            ("NULL", b"\xff\xfb\x01\xff\xfb\x03\r\nUser: ", "telnet", None, None),
        ];
        let udp: &[Case<'_>] = &[
            ("DNSVersionBindReq", b"\0\x06\x85\x80\0\x01\0\x01\0\0\0\0\x07version\x04bind\0\0\x10\0\x03\xc0\x0c\0\x10\0\x03\0\0\0\0\0\x0d\x0cdnsmasq-2.90", "domain", Some("dnsmasq"), Some("2.90")),
            ("DNSVersionBindReq", b"\0\x06\x85\x80\0\x01\0\x01\0\0\0\0\x07version\x04bind\0\0\x10\0\x03\xc0\x0c\0\x10\0\x03\0\0\0\0\0\x11\x109.18.28-1-Debian", "domain", Some("ISC BIND"), Some("9.18.28-1-Debian")),
            ("DNSVersionBindReq", b"\0\x06\x85\x80\0\x01\0\x01\0\0\0\0\x07version\x04bind\0\0\x10\0\x03\xc0\x0c\0\x10\0\x03\0\0\0\0\0\x0f\x0eunbound 1.17.1", "domain", Some("Unbound"), Some("1.17.1")),
            ("NTPRequest", &ntp, "ntp", Some("NTP"), Some("v4")),
            ("SNMPv1Public", &snmp, "snmp", Some("SNMPv1 server"), None),
            ("MemcachedVersionUDP", b"\x70\x73\0\0\0\x01\0\0VERSION 1.6.18\r\n", "memcached", Some("Memcached"), Some("1.6.18")),
            ("SIPOptionsUDP", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP portscan.invalid;branch=z9hG4bK-portscan-1;rport=5060\r\nCSeq: 1 OPTIONS\r\nServer: Asterisk PBX 18.10.0~dfsg+~cs6.10.40431411-2\r\nContent-Length: 0\r\n\r\n", "sip", Some("Asterisk"), Some("18.10.0~dfsg+~cs6.10.40431411-2")),
            // dnsmasq 2.90's and tftpd-hpa's errors for a missing file, and a file's first block.
            ("TFTPReadMissing", b"\0\x05\0\x01file /srv/tftp/portscan-no-such-file not found for 198.18.0.1\0", "tftp", Some("dnsmasq tftpd"), None),
            ("TFTPReadMissing", b"\0\x05\0\x01File not found\0", "tftp", None, None),
            ("TFTPReadMissing", b"\0\x03\0\x01hello\n", "tftp", None, None),
            ("DHCPInform", &dhcp_ack(), "dhcps", None, None),
        ];
        let cases = tcp.iter().map(|case| (Proto::Tcp, case));
        for (proto, &(probe, answer, service, product, version)) in
            cases.chain(udp.iter().map(|case| (Proto::Udp, case)))
        {
            let index = db
                .probe(proto, probe)
                .unwrap_or_else(|| panic!("no {proto:?} probe {probe}"));
            let found = stage::best_match(&db, index, answer)
                .unwrap_or_else(|| panic!("{probe}: {}", String::from_utf8_lossy(answer)));
            assert!(!found.soft, "{probe}: {found:?}");
            assert_eq!(found.service, service, "{found:?}");
            assert_eq!(found.product.as_deref(), product, "{found:?}");
            assert_eq!(found.version.as_deref(), version, "{found:?}");
        }
    }

    /// Samba's answer to the SMB negotiate: NT LM 0.12 (dialect 0) chosen, no extended
    /// security, an 8-byte challenge, then the workgroup and server names in UTF-16.
    fn samba_negotiate_answer() -> Vec<u8> {
        let utf16 = |name: &str| -> Vec<u8> {
            let mut bytes: Vec<u8> = name.bytes().flat_map(|b| [b, 0]).collect();
            bytes.extend([0, 0]);
            bytes
        };
        let mut words = vec![0x11, 0, 0, 0x03, 0x32, 0, 0x01, 0];
        words.extend([
            0x04, 0x41, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0xfc, 0xe3, 0x01, 0x80,
        ]);
        words.extend([0x80, 0x6e, 0x1d, 0x25, 0x9b, 0x61, 0xdc, 0x01, 0, 0, 0x08]);
        let names = [utf16("WORKGROUP"), utf16("SAMBAHOST")].concat();
        let count = u16::try_from(8 + names.len()).unwrap();
        words.extend(count.to_le_bytes());
        words.extend([0x5a, 0x11, 0x90, 0x07, 0xc3, 0x00, 0x2e, 0x41]);
        smb_reply(&[words, names].concat())
    }

    /// Samba's answer where SMB1 is off: one word, dialect index 0xffff, no bytes.
    fn samba_refusal() -> Vec<u8> {
        smb_reply(&[0x01, 0xff, 0xff, 0, 0])
    }

    /// An SMB1 NEGOTIATE reply as Samba frames it (flags 0x88) around `body`.
    fn smb_reply(body: &[u8]) -> Vec<u8> {
        let mut smb = b"\xffSMBr\0\0\0\0\x88\x01\xc0".to_vec();
        smb.extend([0; 14]);
        smb.extend([0xff, 0xfe, 0, 0, 0, 0]);
        smb.extend(body);
        let length = u32::try_from(smb.len()).unwrap().to_be_bytes();
        [&length[..], &smb].concat()
    }

    /// dnsmasq's DHCPACK to DHCPInform, as 2.90 sent it: a BOOTREPLY with our transaction
    /// id and hardware address, ciaddr echoed, then message type 5 (ACK), the server
    /// identifier and the end, padded to 300 bytes.
    fn dhcp_ack() -> Vec<u8> {
        let mut reply = vec![0u8; 300];
        reply[..4].copy_from_slice(&[2, 1, 6, 0]);
        reply[4..8].copy_from_slice(b"psdh");
        reply[12..16].copy_from_slice(&[192, 0, 2, 1]);
        reply[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        reply[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        reply[240..250].copy_from_slice(&[53, 1, 5, 54, 4, 198, 18, 0, 1, 255]);
        reply
    }

    /// A net-snmp agent's GetResponse to SNMPv1Public: sysDescr.0, "Linux sv 6.1.0".
    fn snmp_answer() -> Vec<u8> {
        let text = b"Linux sv 6.1.0";
        let mut varbind = b"\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x04".to_vec();
        varbind.push(u8::try_from(text.len()).unwrap());
        varbind.extend(text);
        let sequence =
            |tag: u8, body: &[u8]| [&[tag, u8::try_from(body.len()).unwrap()][..], body].concat();
        let list = sequence(0x30, &sequence(0x30, &varbind));
        let pdu = [&b"\x02\x04psv1\x02\x01\x00\x02\x01\x00"[..], &list].concat();
        let message = [&b"\x02\x01\x00\x04\x06public"[..], &sequence(0xa2, &pdu)].concat();
        sequence(0x30, &message)
    }

    /// The probes whose payloads carry their own length: each says the length it has.
    #[test]
    fn builtin_payloads_are_well_formed() {
        let db = builtin();
        let payload = |proto, name| &db.probes[db.probe(proto, name).unwrap()].payload;
        let smb = payload(Proto::Tcp, "SMBNegotiate");
        assert_eq!(
            u32::from_be_bytes(smb[..4].try_into().unwrap()) as usize,
            smb.len() - 4
        );
        let dns = payload(Proto::Tcp, "DNSVersionBindReqTCP");
        assert_eq!(u16::from_be_bytes([dns[0], dns[1]]) as usize, dns.len() - 2);
        assert_eq!(
            &dns[2..],
            payload(Proto::Udp, "DNSVersionBindReq").as_slice()
        );
        let snmp = payload(Proto::Udp, "SNMPv1Public");
        assert_eq!(usize::from(snmp[1]), snmp.len() - 2);
        let pdu = snmp.iter().position(|&b| b == 0xa0).unwrap();
        assert_eq!(usize::from(snmp[pdu + 1]), snmp.len() - pdu - 2);
        let ntp = payload(Proto::Udp, "NTPRequest");
        assert_eq!((ntp.len(), ntp[0] & 0x07), (48, 3), "48 bytes, mode 3");
        let memcached = payload(Proto::Udp, "MemcachedVersionUDP");
        assert_eq!(&memcached[8..], b"version\r\n");
        // TFTP: RRQ (1), then the file's name and the mode, each ended by a NUL.
        let tftp = payload(Proto::Udp, "TFTPReadMissing");
        let fields: Vec<&[u8]> = tftp[2..].split(|&b| b == 0).collect();
        assert_eq!(&tftp[..2], b"\0\x01");
        assert_eq!(fields, [&b"portscan-no-such-file"[..], b"octet", b""]);
        // DHCP: a BOOTREQUEST of BOOTP's size, ciaddr set (an INFORM's must be), the
        // magic cookie, message type 8 (INFORM), the end.
        let dhcp = payload(Proto::Udp, "DHCPInform");
        assert_eq!((dhcp.len(), &dhcp[..8]), (300, &b"\x01\x01\x06\0psdh"[..]));
        assert_eq!(&dhcp[12..16], [192, 0, 2, 1]);
        assert_eq!(&dhcp[28..34], [2, 0, 0, 0, 0, 1]);
        assert_eq!(&dhcp[236..244], [0x63, 0x82, 0x53, 0x63, 53, 1, 8, 255]);
        assert!(dhcp[244..].iter().all(|&b| b == 0));
    }
}
