//! One-line notes on why attackers favour a port. The list starts from the ports the lab
//! text names as cybercriminals' most common targets (FTP, SSH, Telnet, SMTP, IPsec, DNS,
//! BOOTP, TFTP, HTTP, POP3, portmap, NNTP, NTP, NetBIOS, IMAP, SNMP, LDAP, HTTPS) and adds
//! the services most often found exposed and abused since (SMB, RDP, databases, caches).

use crate::services::ports::Proto;

/// (first port, last port, protocols it applies to, note)
type Note = (u16, u16, &'static [Proto], &'static str);

const TCP: &[Proto] = &[Proto::Tcp];
const UDP: &[Proto] = &[Proto::Udp];
const BOTH: &[Proto] = &[Proto::Tcp, Proto::Udp];

static NOTES: &[Note] = &[
    (
        20,
        21,
        TCP,
        "FTP: cleartext logins, anonymous access, unauthorized file transfer and malware upload",
    ),
    (
        22,
        22,
        TCP,
        "SSH: password brute-forcing and stolen keys give an attacker a remote shell",
    ),
    (
        23,
        23,
        TCP,
        "Telnet: cleartext logins and sessions, sniffed or hijacked; backdoor access",
    ),
    (
        25,
        25,
        TCP,
        "SMTP: open relays for spam and phishing; user enumeration with VRFY/EXPN",
    ),
    (
        50,
        51,
        BOTH,
        "listed as IPsec (ESP and AH are IP protocols 50 and 51): VPN endpoints probed for weak setups",
    ),
    (
        53,
        53,
        BOTH,
        "DNS: amplification DDoS, zone transfers, tunnelling data out past monitoring",
    ),
    (
        67,
        68,
        UDP,
        "DHCP/BOOTP: rogue servers redirect clients; starvation denies them addresses",
    ),
    (
        69,
        69,
        UDP,
        "TFTP: no authentication; device configurations and firmware read or replaced",
    ),
    (
        80,
        80,
        TCP,
        "HTTP: the most attacked port: web application exploits, injection, XSS, malware delivery",
    ),
    (110, 110, TCP, "POP3: cleartext mail logins, brute-forcing"),
    (
        111,
        111,
        BOTH,
        "RPC portmapper: reveals NFS and NIS services; UDP amplification DDoS",
    ),
    (
        119,
        119,
        TCP,
        "NNTP: open news servers abused for spam and malware distribution",
    ),
    (
        123,
        123,
        UDP,
        "NTP: monlist amplification DDoS; time shifts that break certificates and logs",
    ),
    (
        135,
        135,
        BOTH,
        "MS RPC endpoint mapper: service enumeration and remote code execution exploits",
    ),
    (
        137,
        139,
        BOTH,
        "NetBIOS: share and user enumeration, SMB relay, worm propagation",
    ),
    (143, 143, TCP, "IMAP: cleartext mail logins, brute-forcing"),
    (
        161,
        162,
        UDP,
        "SNMP: default community strings leak and change device configuration; amplification",
    ),
    (
        389,
        389,
        BOTH,
        "LDAP: directory enumeration through anonymous binds; CLDAP amplification DDoS",
    ),
    (
        443,
        443,
        TCP,
        "HTTPS: web application attacks hidden inside TLS; weak TLS configurations",
    ),
    (
        445,
        445,
        TCP,
        "SMB: remote code execution (EternalBlue), ransomware spread, credential relay",
    ),
    (
        512,
        514,
        TCP,
        "rexec/rlogin/rsh: host-based trust and cleartext credentials",
    ),
    (
        1433,
        1434,
        BOTH,
        "Microsoft SQL Server: password brute-forcing, worms, database theft",
    ),
    (
        1900,
        1900,
        UDP,
        "SSDP/UPnP: amplification DDoS; exposed device control",
    ),
    (
        2049,
        2049,
        BOTH,
        "NFS: exported file systems mounted by anyone the export allows",
    ),
    (
        2375,
        2376,
        TCP,
        "Docker API: an unauthenticated daemon gives root on the host",
    ),
    (
        3306,
        3306,
        TCP,
        "MySQL: password brute-forcing and exposed databases",
    ),
    (
        3389,
        3389,
        TCP,
        "RDP: brute-forcing and exploits give a desktop; a common ransomware entry",
    ),
    (
        5432,
        5432,
        TCP,
        "PostgreSQL: password brute-forcing and exposed databases",
    ),
    (
        5900,
        5900,
        TCP,
        "VNC: weak or no passwords give a remote desktop",
    ),
    (
        6379,
        6379,
        TCP,
        "Redis: often unauthenticated; data theft and remote code execution",
    ),
    (
        9200,
        9200,
        TCP,
        "Elasticsearch: often unauthenticated; mass data leaks",
    ),
    (
        11211,
        11211,
        BOTH,
        "memcached: UDP amplification DDoS; unauthenticated cache access",
    ),
    (
        27017,
        27017,
        TCP,
        "MongoDB: often unauthenticated; mass data theft and ransom",
    ),
];

/// Why attackers favour `port`, if they do.
pub fn note(port: u16, proto: Proto) -> Option<&'static str> {
    NOTES
        .iter()
        .find(|(first, last, protos, _)| {
            (*first..=*last).contains(&port) && protos.contains(&proto)
        })
        .map(|(_, _, _, note)| *note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labs_ports_have_notes() {
        for port in [20, 21, 22, 23, 25, 80, 110, 143, 389, 443] {
            assert!(note(port, Proto::Tcp).is_some(), "{port}/tcp");
        }
        for port in [53, 67, 68, 69, 123, 137, 138, 139, 161] {
            assert!(note(port, Proto::Udp).is_some(), "{port}/udp");
        }
        assert!(note(8081, Proto::Tcp).is_none());
        assert!(note(69, Proto::Tcp).is_none(), "TFTP is UDP only");
    }
}
