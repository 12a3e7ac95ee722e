//! portscan's target language (addresses, CIDR blocks, spans, nmap's octet ranges, host
//! names) and its `--exclude` lists, on any text: nothing panics; a target written back
//! reads as a target of the same addresses; its first and last addresses (and the first
//! few it walks) are members; and its count of public addresses is never more than its
//! count of addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;

use portscan::fuzzing::{TargetSpec, never_meant, parse_target_list, public_count};

fn check(spec: &TargetSpec) {
    let again = TargetSpec::parse(&spec.to_string())
        .unwrap_or_else(|why| panic!("{spec:?} written as '{spec}' does not read back: {why}"));
    assert_eq!(again.count(), spec.count(), "{spec:?} and {again:?}");
    let Some(count) = spec.count() else {
        assert!(matches!(spec, TargetSpec::Name(_)));
        assert_eq!(again, *spec);
        assert_eq!(public_count(spec), 0);
        return;
    };
    assert!(count >= 1);
    assert!(spec.address(count).is_none());
    for index in [0, count - 1] {
        let address = spec.address(index).expect("an index below the count");
        assert_eq!(again.address(index), Some(address));
        assert!(
            spec.contains(address) && again.contains(address),
            "{spec:?} {address}"
        );
        let _ = never_meant(address);
    }
    for address in spec.addresses().take(4) {
        assert!(spec.contains(address));
    }
    assert!(public_count(spec) <= count);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = TargetSpec::parse(text) {
        check(&spec);
    }
    if let Ok(list) = parse_target_list(text) {
        for spec in &list {
            check(spec);
        }
    }
});
