//! portscan's reader of nmap-service-probes files (`--probe-db nmap` reads nmap's own) on
//! any text, and the rules it reads applied to a few real answers and to the text itself:
//! the patterns (PCRE2, compiled at first use) and the templates filled from their
//! captures (`$1`, `$P(1)`, `$SUBST(1,"_",".")`, `$I(1,">")`). Nothing panics; an error
//! names a line of the file; a match names a service and fills in no empty field.
#![no_main]

use libfuzzer_sys::fuzz_target;

use common::services::ports::Proto;
use portscan::fuzzing::{ProbeDb, best_match};

const ANSWERS: [&[u8]; 3] = [
    b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n",
    b"220 (vsFTPd 3.0.3)\r\n",
];

fuzz_target!(|text: &[u8]| {
    let db = match ProbeDb::parse(text) {
        Ok(db) => db,
        Err(why) => {
            let lines = text.split(|&b| b == b'\n').count();
            let number: usize = why
                .strip_prefix("line ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("an error without its line: {why}"));
            assert!((1..=lines).contains(&number), "{why}");
            return;
        }
    };
    for port in [1, 22, 80, 9100] {
        let _ = db.excludes(Proto::Tcp, port);
        let _ = db.excludes(Proto::Udp, port);
    }
    for (index, probe) in db.probes.iter().enumerate().take(8) {
        let _ = probe.likes(22);
        for answer in ANSWERS.iter().copied().chain([text]) {
            if let Some(found) = best_match(&db, index, answer) {
                assert!(!found.service.is_empty());
                for field in [&found.product, &found.version, &found.extra_info] {
                    assert!(field.as_ref().is_none_or(|field| !field.is_empty()));
                }
            }
        }
    }
});
