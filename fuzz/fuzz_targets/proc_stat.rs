//! proctree's /proc/PID/stat parser on any bytes: it never panics, a parsed name is what lies
//! between the first `(` and the last `)`, and any name at all, put into an otherwise real
//! line, comes back byte for byte with the fields after it in place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proctree::stat::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(stat) = parse(data) {
        let open = data.iter().position(|&b| b == b'(').unwrap();
        let close = data.iter().rposition(|&b| b == b')').unwrap();
        assert_eq!(stat.comm, data[open + 1..close]);
    }
    // The kernel writes the name between `(` and `)` unescaped, so it may hold anything.
    let mut line = b"4242 (".to_vec();
    line.extend_from_slice(data);
    line.extend_from_slice(
        b") S 1 4240 4239 34816 4240 4194560 101 0 0 0 7 3 0 0 20 -5 2 0 154003 \
          3133440 363 18446744073709551615 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
    );
    let stat = parse(&line).expect("a real line with any name parses");
    assert_eq!(stat.comm, data);
    assert_eq!((stat.pid, stat.state, stat.ppid), (4242, b'S', 1));
    assert_eq!((stat.pgid, stat.sid, stat.tty_nr), (4240, 4239, 34816));
    assert_eq!((stat.utime, stat.stime, stat.nice), (7, 3, -5));
    assert_eq!(
        (stat.start_time, stat.vsize, stat.rss_pages),
        (154_003, 3_133_440, 363)
    );
});
