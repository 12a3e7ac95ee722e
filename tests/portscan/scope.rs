//! A scan aimed by accident: more than a /8 of public addresses is refused before anything
//! is sent, unless an exclusion list or --i-mean-it says it is meant. Run inside a
//! namespace with no route out, as the machine's rules ask of any such target.

use crate::fixtures::{Netns, require_root};
use crate::util::{LIMIT, code, run, stderr_text, tool_path};

#[test]
#[ignore = "needs root: wide targets are only ever given inside a network namespace"]
fn the_internet_is_refused_unless_meant() {
    require_root();
    let namespace = Netns::new("scope");
    let scan = |args: &[&str]| run(namespace.exec(tool_path("portscan")).args(args), LIMIT);
    for target in ["0.0.0.0/0", "12.0.0.0/7", "2001:db9::/64", "*.*.*.*"] {
        let output = scan(&["-sn", "-PE", target]);
        assert_eq!(code(&output), 2, "{target}: {}", stderr_text(&output));
        let first = stderr_text(&output).lines().next().unwrap().to_owned();
        assert!(
            first.starts_with("portscan: target '")
                && first.contains("': the targets hold ")
                && first.ends_with(
                    "public addresses, more than a /8's; a scan this wide must name what to \
                     leave out (--exclude, --excludefile) or say --i-mean-it"
                ),
            "{first}"
        );
    }
    // Accepted targets get as far as the checks after this one: an --expect-open port the
    // scan does not cover stops the run there, before any probe, and says so.
    let accepted = |args: &[&str], what: &str| {
        let mut all = vec!["-p", "1", "--expect-open", "2"];
        all.extend_from_slice(args);
        let output = scan(&all);
        assert_eq!(code(&output), 2);
        assert!(
            stderr_text(&output)
                .starts_with("portscan: --expect-open: 2/tcp is not among the ports scanned\n"),
            "{what}: {}",
            stderr_text(&output)
        );
    };
    // A /8 of public addresses, and any amount of private ones, are not refused.
    for target in ["11.0.0.0/8", "10.0.0.0/8", "198.18.0.0/15"] {
        accepted(&[target], target);
    }
    // Meant, by --i-mean-it or an exclusion list.
    accepted(&["0.0.0.0/0", "--i-mean-it"], "--i-mean-it");
    accepted(&["0.0.0.0/0", "--exclude", "10.0.0.0/8"], "--exclude");
}
