//! svcname's NDJSON scanner on any line: it accepts exactly the lines serde_json reads as one
//! object, and the `port` it finds is serde_json's (the scanner replaced serde_json for
//! speed, so serde_json is the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let ours = svcname::scan_json_port(line);
    let theirs = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line);
    match (&ours, &theirs) {
        (Ok(port), Ok(object)) => {
            assert_eq!(
                *port,
                object.get("port").and_then(serde_json::Value::as_u64)
            );
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "scanner {ours:?}, serde_json {:?}, on {:?}",
            theirs.map(|_| ()),
            String::from_utf8_lossy(line)
        ),
    }
});
