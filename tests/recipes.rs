//! The README's recipes, run as written inside a network namespace with listeners of the
//! test's own: what listens but cannot be reached (a firewall rule drops one port), who
//! owns each reachable port, and the nightly diff by cron, with a stand-in `mail`.

use std::net::{Ipv4Addr, TcpListener};

use crate::fixtures::{Netns, TempDir, require_program, require_root, sh, write_executable};
use crate::many_machines::{listen_in, path_with_tools, readme_recipe, replaced};
use crate::util::{LIMIT, code, run, stderr_text, stdout_text};

/// Runs `script` with sh -c (not -e: a recipe's `||` decides) inside `namespace`, in `dir`,
/// with the built tools first on PATH, and returns its output.
fn run_in(namespace: &Netns, dir: &TempDir, script: &str) -> std::process::Output {
    run(
        namespace
            .exec("sh")
            .args(["-c", script])
            .current_dir(dir.join(""))
            .env(
                "PATH",
                format!("{}:{}", dir.join("bin").display(), path_with_tools()),
            )
            .env("LC_ALL", "C.UTF-8"),
        LIMIT,
    )
}

/// Three listeners on all addresses of a new namespace; the returned ports.
fn namespace_with_listeners(tag: &str) -> (Netns, Vec<TcpListener>, Vec<u16>) {
    let namespace = Netns::new(tag);
    let ports = [41001, 41002, 41003];
    let endpoints: Vec<(Ipv4Addr, u16)> =
        ports.iter().map(|&p| (Ipv4Addr::UNSPECIFIED, p)).collect();
    let listeners = listen_in(&namespace.name, &endpoints);
    (namespace, listeners, ports.to_vec())
}

#[test]
#[ignore = "needs root: the listeners and the firewall rule are in a network namespace"]
fn listening_but_unreachable_names_the_port_a_firewall_drops() {
    require_root();
    require_program("jq", &["--version"]);
    require_program("nft", &["--version"]);
    let (namespace, _listeners, ports) = namespace_with_listeners("recipe-fw");
    let name = &namespace.name;
    sh(&format!(
        "ip netns exec {name} nft add table inet recipe\n\
         ip netns exec {name} nft add chain inet recipe input '{{ type filter hook input priority 0; }}'\n\
         ip netns exec {name} nft add rule inet recipe input tcp dport {} drop",
        ports[1]
    ));
    let dir = TempDir::new("recipe-fw");
    let output = run_in(
        &namespace,
        &dir,
        &readme_recipe("listening but unreachable"),
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(stdout_text(&output), format!("{}\n", ports[1]));
}

#[test]
#[ignore = "needs root: the listeners are in a network namespace"]
fn owners_of_reachable_ports_are_this_process() {
    require_root();
    require_program("jq", &["--version"]);
    let (namespace, _listeners, ports) = namespace_with_listeners("recipe-own");
    let dir = TempDir::new("recipe-own");
    let output = run_in(
        &namespace,
        &dir,
        &readme_recipe("owners of reachable ports"),
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let me = format!(" {}/", std::process::id());
    for port in ports {
        let line = text
            .lines()
            .find(|line| line.contains(&format!(":{port} ")))
            .unwrap_or_else(|| panic!("no line for {port}: {text}"));
        assert!(line.contains(&me), "{port} is owned by this test: {line}");
    }
}

#[test]
#[ignore = "needs root: the listeners are in a network namespace"]
fn the_nightly_diff_mails_only_changes() {
    require_root();
    let (namespace, mut listeners, ports) = namespace_with_listeners("recipe-cron");
    let dir = TempDir::new("recipe-cron");
    // The crontab line less its schedule, with a directory of the test's own, and a
    // stand-in `mail` that keeps what it was given.
    let line = readme_recipe("nightly diff");
    let command = line.splitn(6, ' ').nth(5).unwrap();
    let command = replaced(
        command,
        "/var/lib/portscan",
        &dir.join("").display().to_string(),
    );
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let mail = dir.join("bin/mail");
    write_executable(&mail, "#!/bin/sh\necho \"$@\" >> mailed\ncat >> mailed\n");
    let mailed = || std::fs::read_to_string(dir.join("mailed")).unwrap_or_default();

    // The first night: every open port is new, and mailed.
    let output = run_in(&namespace, &dir, &command);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let first = mailed();
    assert!(first.starts_with("-s ports changed on "), "{first}");
    for port in &ports {
        assert!(
            first.contains(&format!("added - 127.0.0.1 {port}/tcp open")),
            "{first}"
        );
    }
    // Nothing changed: no mail.
    run_in(&namespace, &dir, &command);
    assert_eq!(mailed(), first);
    // A listener closed: a mail with that change alone.
    listeners.remove(0);
    run_in(&namespace, &dir, &command);
    let second = &mailed()[first.len()..];
    assert!(
        second.contains(&format!(
            "changed state=open 127.0.0.1 {}/tcp closed",
            ports[0]
        )),
        "{second}"
    );
    assert_eq!(
        second.lines().count(),
        2,
        "the subject line and one change: {second}"
    );
}
