//! `-sV`'s match rules on any answer: the bytes a TCP service sends (a banner, an answer to
//! a probe) or a UDP service replies, matched against every probe's rules (its own, its
//! fallbacks', the NULL probe's) in portscan's built-in nmap-service-probes, and what a
//! match fills in read by `-A` for a system's name. Nothing panics, and a match names a
//! service and fills in no empty field.
#![no_main]

use libfuzzer_sys::fuzz_target;

use portscan::fuzzing::{ProbeDb, best_match, builtin_probes, system_named};

thread_local! {
    /// Patterns compile at their first use and stay compiled, as in a scan.
    static DB: ProbeDb = builtin_probes();
}

fuzz_target!(|answer: &[u8]| {
    DB.with(|db| {
        for probe in 0..db.probes.len() {
            let Some(found) = best_match(db, probe, answer) else {
                continue;
            };
            assert!(!found.service.is_empty());
            let fields = [&found.product, &found.version, &found.extra_info];
            for field in fields.iter().copied().flatten() {
                assert!(!field.is_empty());
            }
            let mut texts: Vec<&str> = fields
                .iter()
                .copied()
                .flatten()
                .map(String::as_str)
                .collect();
            texts.extend(found.cpe.iter().map(String::as_str));
            let _ = system_named(&texts);
        }
    });
});
