//! The README's recipes for many machines, run as written: the GNU parallel fan-out of a
//! sharded scan against hosts in a network namespace (its merged records must be the one
//! unsharded scan's), the fleet inventory with namespaces as the servers, and the check of
//! the Kubernetes Job manifest in deploy/.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;

use crate::fixtures::{Netns, TempDir, require_program, require_root, sh, write_executable};
use crate::util::{LIMIT, run, stderr_text};

const README: &str = include_str!("../README.md");

/// The first line of the shell block after the README's `<!-- tested: NAME -->` marker,
/// with its continuation lines (a trailing `|` or `\`) joined on.
pub(crate) fn readme_recipe(name: &str) -> String {
    let marker = format!("<!-- tested: {name} -->");
    let after = README
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README.md has no '{marker}'"))
        .1;
    let block = after
        .trim_start()
        .strip_prefix("```sh\n")
        .unwrap_or_else(|| panic!("README.md: no sh block after '{marker}'"));
    block.split("\n```").next().unwrap().to_owned()
}

/// `text` with `from` replaced by `to`, failing the test if `from` is not there: a README
/// edit that changes what the test relies on must be noticed.
pub(crate) fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "'{from}' not in the recipe: {text}");
    text.replace(from, to)
}

/// PATH with the built tools first, so the recipes' bare `portscan` and `sockls` are ours.
pub(crate) fn path_with_tools() -> String {
    let tools = Path::new(env!("CARGO_BIN_EXE_portscan")).parent().unwrap();
    format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs `script` with sh inside `namespace`, in `dir`, with the built tools on PATH.
fn run_recipe(namespace: &Netns, dir: &TempDir, script: &str) {
    let output = run(
        namespace
            .exec("sh")
            .args(["-ec", script])
            .current_dir(dir.join(""))
            .env("PATH", path_with_tools())
            // parallel keeps its state (and its one-time notice) under $HOME.
            .env("HOME", dir.join(""))
            .env("LC_ALL", "C.UTF-8"),
        LIMIT,
    );
    assert!(
        output.status.success(),
        "{script}: {}",
        stderr_text(&output)
    );
}

/// Listeners on each (address, port) of namespace `name`, bound by a thread that enters it
/// (setns changes only the calling thread).
pub(crate) fn listen_in(name: &str, endpoints: &[(Ipv4Addr, u16)]) -> Vec<TcpListener> {
    let path = format!("/var/run/netns/{name}");
    let endpoints = endpoints.to_vec();
    std::thread::spawn(move || {
        let namespace = std::fs::File::open(path).unwrap();
        nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        endpoints
            .iter()
            .map(|endpoint| TcpListener::bind(endpoint).unwrap())
            .collect()
    })
    .join()
    .unwrap()
}

/// A file's NDJSON records without the fields that differ from run to run (when a state
/// became final, and the round trip that decided it), sorted: what two scans that found the
/// same must agree on, duplicates kept.
fn comparable_records(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut records: Vec<String> = text
        .lines()
        .map(|line| {
            let mut record: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            record.remove("time");
            record.remove("rtt_ms");
            serde_json::Value::Object(record).to_string()
        })
        .collect();
    records.sort();
    records
}

#[test]
#[ignore = "needs root: the scanned hosts are addresses in a network namespace"]
fn parallel_shards_merge_into_the_unsharded_scan() {
    require_root();
    require_program("parallel", &["--version"]);
    let recipe = readme_recipe("parallel shards");
    let namespace = Netns::new("ops-shards");
    let name = &namespace.name;
    // The recipe's hosts, 198.18.0.1-8, are this namespace's own addresses (on its
    // loopback): a port nobody listens on answers with a reset at once, so the scan is
    // quick and exact.
    let setup: Vec<String> = (1..=8)
        .map(|host| format!("ip -n {name} addr add 198.18.0.{host}/32 dev lo"))
        .collect();
    sh(&setup.join("\n"));
    // Each host listens on ports of its own, inside 1-1024, so a part that lost or doubled
    // a pair would show.
    let endpoints: Vec<(Ipv4Addr, u16)> = (1..=8u8)
        .flat_map(|host| {
            let address = Ipv4Addr::new(198, 18, 0, host);
            let host = u16::from(host);
            [
                (address, host),
                (address, 100 + 7 * host),
                (address, 1024 - host),
            ]
        })
        .collect();
    let _listeners = listen_in(name, &endpoints);

    let dir = TempDir::new("ops-shards");
    run_recipe(&namespace, &dir, &recipe);
    // The same scan in one run: the recipe's portscan command without parallel and --shard.
    let command = recipe.split(" ::: ").next().unwrap();
    let command = replaced(command, "parallel -j4 ", "");
    let whole = replaced(&command, " --shard {}/4", "");
    run_recipe(&namespace, &dir, &format!("{whole} > whole.json"));

    let merged = comparable_records(&dir.join("scan.json"));
    let unsharded = comparable_records(&dir.join("whole.json"));
    assert_eq!(merged, unsharded);
    let open: BTreeSet<(String, u64)> = merged
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .map(|record| {
            assert_eq!(record["state"], "open", "{record}");
            (
                record["address"].as_str().unwrap().to_owned(),
                record["port"].as_u64().unwrap(),
            )
        })
        .collect();
    let listening: BTreeSet<(String, u64)> = endpoints
        .iter()
        .map(|(address, port)| (address.to_string(), u64::from(*port)))
        .collect();
    assert_eq!(open, listening);
    assert_eq!(merged.len(), endpoints.len(), "a pair scanned twice");
}

#[test]
#[ignore = "needs root: the servers are network namespaces"]
fn fleet_inventory_groups_each_server_s_listeners() {
    require_root();
    require_program("parallel", &["--version"]);
    require_program("jq", &["--version"]);
    require_program("perl", &["--version"]);
    let recipe = readme_recipe("fleet inventory");
    let servers = [Netns::new("ops-fleet"), Netns::new("ops-fleet")];
    let mut expected = BTreeSet::new();
    let mut listeners = Vec::new();
    for (at, server) in servers.iter().enumerate() {
        let name = &server.name;
        let address = Ipv4Addr::new(198, 18, 1, u8::try_from(at + 1).unwrap());
        sh(&format!("ip -n {name} addr add {address}/32 dev lo"));
        let ports = [22 + u16::try_from(at).unwrap(), 8080];
        for port in ports {
            expected.insert((name.clone(), address.to_string(), u64::from(port)));
        }
        listeners.extend(listen_in(name, &ports.map(|port| (address, port))));
    }
    let dir = TempDir::new("ops-fleet");
    // parallel's --ssh names the program it logs in with: this one "logs in" to a server by
    // entering its namespace, and runs there what parallel sends (`HOST -- exec COMMAND`).
    // It sets SHELL as sshd does: parallel's remote wrapper runs the command with $SHELL, and
    // where SHELL is unset (CI's environment) it runs nothing, prints nothing and exits 0.
    let ssh = dir.join("netns-ssh");
    write_executable(
        &ssh,
        "#!/bin/sh\nhost=$1; shift\n[ \"$1\" = -- ] && shift\n\
         SHELL=/bin/sh exec ip netns exec \"$host\" sh -c \"$*\"\n",
    );
    let logins = format!("{},{}", servers[0].name, servers[1].name);
    let recipe = replaced(
        &recipe,
        "--sshlogin web1,web2,db1",
        &format!("--ssh {} --sshlogin {logins}", ssh.display()),
    );
    // pipefail: a parallel that fails must fail the test with its own words, not leave jq
    // an empty input to turn into an empty inventory.
    let output = run(
        Command::new("bash")
            .args(["-o", "pipefail", "-ec", &recipe])
            .current_dir(dir.join(""))
            .env("PATH", path_with_tools())
            .env("HOME", dir.join(""))
            .env("LC_ALL", "C.UTF-8"),
        LIMIT,
    );
    let stderr = stderr_text(&output);
    assert!(output.status.success(), "{recipe}: {stderr}");

    let inventory: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("inventory.json")).unwrap())
            .unwrap();
    let hosts = inventory.as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{inventory}; stderr: {stderr}");
    let pid = u64::from(std::process::id());
    let mut found = BTreeSet::new();
    for host in hosts {
        let hostname = host["hostname"].as_str().unwrap();
        for socket in host["listening"].as_array().unwrap() {
            // The test process holds every listener, so -p names it as the owner.
            assert_eq!(socket["pid"].as_u64(), Some(pid), "{socket}");
            found.insert((
                hostname.to_owned(),
                socket["local_address"].as_str().unwrap().to_owned(),
                socket["local_port"].as_u64().unwrap(),
            ));
        }
    }
    assert_eq!(found, expected);
    drop(listeners);
}

#[test]
fn the_job_manifest_passes_its_check_and_a_broken_one_fails() {
    require_program("/usr/bin/python3", &["-c", "import jsonschema, yaml"]);
    let check = |manifest: &str| {
        run(
            Command::new("/usr/bin/python3")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-job.py"))
                .arg(manifest),
            LIMIT,
        )
    };
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/portscan-shards.yaml");
    let output = check(manifest);
    assert!(output.status.success(), "{}", stderr_text(&output));

    let dir = TempDir::new("ops-job");
    let text = std::fs::read_to_string(manifest).unwrap();
    let broken = [
        // Six pods for a scan split in eight: parts 7 and 8 would never run.
        (
            replaced(&text, "completions: 8", "completions: 6"),
            "index 0: --shard 1/8, not 1/6",
        ),
        // A misspelt field, which kubectl would drop or refuse.
        (
            replaced(&text, "restartPolicy: Never", "restartPolicy: Nevr"),
            "restartPolicy: 'Nevr' is not one of",
        ),
        (
            replaced(
                &text,
                "completionMode: Indexed",
                "completionMode: NonIndexed",
            ),
            "not Indexed",
        ),
    ];
    for (at, (text, says)) in broken.iter().enumerate() {
        let path = dir.join(&format!("broken-{at}.yaml"));
        std::fs::write(&path, text).unwrap();
        let output = check(path.to_str().unwrap());
        assert_eq!(output.status.code(), Some(1), "{says}");
        assert!(
            stderr_text(&output).contains(says),
            "{}",
            stderr_text(&output)
        );
    }
}
