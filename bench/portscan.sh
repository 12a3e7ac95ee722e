#!/bin/sh
# portscan against nmap -sT (and -sV) on the same machine, with hyperfine.
#
# 1. All 65535 ports of 127.0.0.1 with 30 listeners: both must find the same open set;
#    the goal is at most half of nmap's time. RustScan too, where it is installed.
# 2. As root: all 65535 ports of a host in a network namespace whose firewall drops 2000
#    ports, against nmap -sT -p- -T4.
# 3. As root: host discovery (-sn) of a /24 routed behind that host, three addresses live
#    and the rest silent: the same live hosts as nmap -sn, well under a second.
# 4. As root: nmap -sU's hundred most common UDP ports of the namespace host of case 2, which
#    rations its ICMP errors as Linux does by default (one a second after a burst of six)
#    and answers on 53, 123 and 161: the same states as nmap -sU, in at most 0.9 of its
#    time; the floor the ration sets is printed beside them. One run each (nmap takes
#    minutes).
# 5. As root: all 65535 UDP ports of 127.0.0.1 inside that namespace, three ports answering
#    and two silent: the same states as nmap -sU, in at most half its time.
# 6. As root: 2000 ports (6 open, 100 dropped) of a host behind a 50 ms round-trip line that
#    loses 2% of packets each way (xtask's TUN impairment line), against nmap -sT.
# 7. As root: all 65535 ports (6 open, 300 dropped) behind a 100 ms round trip losing 2% of
#    packets each way (issue 13): every state right in at most 10 s, and at most 0.6 of
#    nmap -sT -T4 --min-rate 5000.
# 8. As root: the same behind a 40 ms round trip that loses nothing: at most 0.3 of
#    nmap -sT -T4.
# 9. As root: 20000 ports (4 open, 300 dropped) behind a 20 ms round trip through a
#    bottleneck of 2000 packets a second with a 100-packet queue: every state right, and at
#    most 5% of the probes dropped by the queue once the scan settled (from 2 s in:
#    a few round trips to find the bottleneck); nmap -sT -T4 beside it.
# 10. As root: -sV of Debian's sshd, nginx, vsftpd and dnsmasq on their usual ports of a
#    namespace host, each started here with a config of the bench's own: the same product
#    and version as nmap -sV wherever nmap names one (a printed FAIL otherwise, and status
#    1 at the end), in at most 0.3 of its time.
# 11. As root: -sV of 25 open ports of that host: those servers (sshd and nginx on two
#    ports each), Python's HTTP server, an echo, a port that hangs up at once and 16 silent
#    ones: the same check, in at most 0.1 of nmap's time; nmap runs once (minutes).
#    Cases 10 and 11 run before 6 to 9, which need /dev/net/tun.
# 12. As root: -sS of all 65535 ports (6 open, 300 dropped) behind a 20 ms round trip:
#    the same states as nmap -sS -p-, in at most 0.5 of its time; masscan (where it is
#    installed) at portscan's own mean rate, which portscan should not trail.
# 13. As root: -sS -Pn of one port on each address of a /18, a /17 and a /16 that a
#    namespace routes to a neighbour that forwards nothing (nothing answers): every address filtered,
#    and portscan's peak memory under 20 MB and flat as the set grows.
#    Case 13 runs before 6 to 9 and 12, which need /dev/net/tun.
#
# Needs python3 (the listeners), nmap and hyperfine (installed with apt-get if missing),
# iproute2 and nftables for the second case, and for cases 10 and 11 openssh-server,
# nginx-light, vsftpd and dnsmasq-base, installed as .ci/run installs them. PORTSCAN may
# name a built binary; otherwise a release build is made. Set RUNS to change the number of
# timed runs (SLOW_RUNS for cases 6 to 9, nmap's in case 10 and portscan's in case 11),
# CASES to run only some cases ("1 2 7": the numbers above; cases 3 to 5 set up case 2's
# namespaces but do not time it), and NS_PREFIX to name the namespaces otherwise than
# psbench-*.
set -eu

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SLOW_RUNS=${SLOW_RUNS:-3}
TMP=$(mktemp -d)
PIDS=""
NS_PREFIX=${NS_PREFIX:-psbench}
NS_A="${NS_PREFIX}-a-$$"
NS_B="${NS_PREFIX}-b-$$"
NS_SLOW_A="${NS_PREFIX}-sa-$$"
NS_SLOW_B="${NS_PREFIX}-sb-$$"
NS_SV_A="${NS_PREFIX}-sva-$$"
NS_SV_B="${NS_PREFIX}-svb-$$"
# The cases that failed a check without stopping the bench (-sV's version comparisons).
FAILED=""
LINE_PID=""

# Whether case $1 is to run: all of them unless CASES names some.
want() {
    case " ${CASES:-$1} " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    ip netns del "$NS_SLOW_A" 2>/dev/null || true
    ip netns del "$NS_SLOW_B" 2>/dev/null || true
    [ -z "${NS_SILENT:-}" ] || ip netns del "$NS_SILENT" 2>/dev/null || true
    [ -z "${NS_SINK:-}" ] || ip netns del "$NS_SINK" 2>/dev/null || true
    # sshd and vsftpd fork a child per connection: what is left of them goes too.
    ip netns pids "$NS_SV_B" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS_SV_A" 2>/dev/null || true
    ip netns del "$NS_SV_B" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Ends the bench: status 1 if a case failed a check it went on after.
finish() {
    [ -z "$FAILED" ] || { echo "bench/portscan.sh: failed cases:$FAILED" >&2; exit 1; }
    exit 0
}
trap 'exit 130' INT TERM

need() {
    command -v "$1" >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq "$2" >/dev/null
    else
        echo "bench/portscan.sh: $1 is missing (apt-get install $2)" >&2
        exit 1
    fi
}
need nmap nmap
need hyperfine hyperfine
need python3 python3

if [ -n "${BIN:-}" ]; then
    PORTSCAN="$BIN/portscan"
elif [ -z "${PORTSCAN:-}" ]; then
    cargo build --release -j1 -q -p nettools --bin portscan
    PORTSCAN="${CARGO_TARGET_DIR:-target}/release/portscan"
fi

# Listeners on `count` ports of `address` (free ones chosen by the kernel), in the
# current network namespace; their ports go to `file`. The process stays until killed.
listen() { # address count file
    python3 -c '
import socket, sys, time
address, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sockets = []
for _ in range(count):
    s = socket.socket()
    s.bind((address, 0))
    s.listen(128)
    sockets.append(s)
with open(path + ".tmp", "w") as f:
    f.write("\n".join(str(s.getsockname()[1]) for s in sockets) + "\n")
import os; os.rename(path + ".tmp", path)
time.sleep(3600)
' "$@" &
    PIDS="$PIDS $!"
    while [ ! -e "$3" ]; do sleep 0.1; done
}

# A firewall in namespace `ns` that drops TCP to `ports` (nft syntax: 600-699).
drop_ports() { # ns ports
    ip netns exec "$1" nft -f - <<EOF
table ip portscan_bench {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $2 drop
    }
}
EOF
}

# Two new namespaces `ns_a` and `ns_b`, loopbacks up, joined by a veth pair (`if_a` in
# ns_a, `if_b` in ns_b) with `addr_a` and `addr_b` (address/prefix) on its ends, up: the
# wire between a scanner and its host in cases 2 to 5, 10, 11 and 13. Interface names
# are at most 15 bytes (IFNAMSIZ).
veth_pair() { # ns_a ns_b if_a if_b addr_a addr_b
    ip netns add "$1"
    ip netns add "$2"
    ip link add "$3" netns "$1" type veth peer name "$4" netns "$2"
    ip -n "$1" addr add "$5" dev "$3"
    ip -n "$2" addr add "$6" dev "$4"
    for ns in "$1" "$2"; do ip -n "$ns" link set lo up; done
    ip -n "$1" link set "$3" up
    ip -n "$2" link set "$4" up
}

# The mean of a hyperfine JSON export, in seconds.
mean() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$1"
}

compare() { # name json_ours json_theirs goal [their_name]
    ours=$(mean "$2")
    theirs=$(mean "$3")
    python3 -c 'import sys; o, t = float(sys.argv[2]), float(sys.argv[3]); print(f"{sys.argv[1]}: portscan {o:.3f}s, {sys.argv[5]} {t:.3f}s, ratio {o / t:.2f} (goal {sys.argv[4]})")' "$1" "$ours" "$theirs" "$4" "${5:-nmap}"
}

if want 1; then
echo "== all ports of 127.0.0.1, 30 listeners"
listen 127.0.0.1 30 "$TMP/ports"
"$PORTSCAN" -p- 127.0.0.1 | awk '{ split($2, p, "/"); print p[1] }' | sort -n > "$TMP/ours"
nmap -sT -p- -n -oG - 127.0.0.1 | grep -o '[0-9]*/open/tcp' | cut -d/ -f1 | sort -n > "$TMP/theirs"
if ! cmp -s "$TMP/ours" "$TMP/theirs"; then
    echo "open ports differ (< portscan, > nmap):" >&2
    diff "$TMP/ours" "$TMP/theirs" >&2 || true
    exit 1
fi
for port in $(cat "$TMP/ports"); do
    grep -qx "$port" "$TMP/ours" || { echo "listener $port not found" >&2; exit 1; }
done
echo "same open set: $(wc -l < "$TMP/ours") ports"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/ours.json" "$PORTSCAN -p- 127.0.0.1" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/nmap.json" "nmap -sT -p- -n 127.0.0.1" >/dev/null
compare "loopback" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.50"
# RustScan, where it is installed (it is not a Debian package: `cargo install rustscan`).
if command -v rustscan >/dev/null 2>&1; then
    # -g: greppable "HOST -> [PORT,PORT]" with no nmap stage; RustScan's own defaults
    # otherwise (batches of 4500, 1.5 s timeout), with the descriptor limit it asks for.
    rustscan -a 127.0.0.1 -r 1-65535 -g --ulimit 65535 2>/dev/null |
        grep -o '\[.*\]' | tr -d '[]' | tr ',' '\n' | sort -n > "$TMP/rustscan"
    if ! cmp -s "$TMP/ours" "$TMP/rustscan"; then
        echo "RustScan's open set differs (< portscan, > RustScan):"
        diff "$TMP/ours" "$TMP/rustscan" || true
    fi
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/rustscan.json" \
        "rustscan -a 127.0.0.1 -r 1-65535 -g --ulimit 65535" >/dev/null
    compare "loopback" "$TMP/ours.json" "$TMP/rustscan.json" "< 1" RustScan
else
    echo "loopback: RustScan is not installed, not compared (cargo install rustscan)"
fi
fi

if [ "$(id -u)" != 0 ]; then
    echo "== namespace case skipped: it needs root"
    exit 0
fi
need ip iproute2
need nft nftables
if want 2 || want 3 || want 4 || want 5; then
veth_pair "$NS_A" "$NS_B" "psa$$" "psb$$" 198.18.0.1/24 198.18.0.2/24
drop_ports "$NS_B" 20001-22000
ip netns exec "$NS_B" python3 -c '
import socket, time
sockets = []
for port in range(30001, 30031):
    s = socket.socket(); s.bind(("198.18.0.2", port)); s.listen(128); sockets.append(s)
time.sleep(3600)
' &
PIDS="$PIDS $!"
sleep 0.5
fi
if want 2; then
echo "== all ports of a namespace host, 2000 dropped, nmap -T4"
ip netns exec "$NS_A" "$PORTSCAN" -p- -T4 198.18.0.2 | awk '{ split($2, p, "/"); print p[1] }' | sort -n > "$TMP/ours"
ip netns exec "$NS_A" nmap -sT -p- -T4 -n -oG - 198.18.0.2 | grep -o '[0-9]*/open/tcp' | cut -d/ -f1 | sort -n > "$TMP/theirs"
if ! cmp -s "$TMP/ours" "$TMP/theirs"; then
    echo "open ports differ (< portscan, > nmap):" >&2
    diff "$TMP/ours" "$TMP/theirs" >&2 || true
    exit 1
fi
filtered=$(ip netns exec "$NS_A" "$PORTSCAN" -p- -T4 --show filtered 198.18.0.2 | grep -c ' filtered no-response$')
[ "$filtered" = 2000 ] || { echo "found $filtered of 2000 dropped ports" >&2; exit 1; }
echo "same open set: $(wc -l < "$TMP/ours") ports; 2000 filtered"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_A $PORTSCAN -p- -T4 198.18.0.2" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_A nmap -sT -p- -T4 -n 198.18.0.2" >/dev/null
compare "namespace, 2000 dropped" "$TMP/ours.json" "$TMP/nmap.json" "< 1"
fi

if want 3; then
echo "== host discovery of a routed /24 where three hosts answer, nmap -sn"
# Behind the namespace host, as a remote network is: the three live addresses are its own,
# the rest of the block goes nowhere (no answer at all, the usual case on the internet).
ip -n "$NS_A" route add 198.18.1.0/24 via 198.18.0.2
ip -n "$NS_B" route add blackhole 198.18.1.0/24
for host in 7 42 200; do ip -n "$NS_B" addr add "198.18.1.$host/32" dev lo; done
ip netns exec "$NS_A" "$PORTSCAN" -sn --sort 198.18.1.0/24 | awk '{ print $1 }' > "$TMP/ours"
ip netns exec "$NS_A" nmap -sn -n -oG - 198.18.1.0/24 | awk '/Status: Up/ { print $2 }' > "$TMP/theirs"
if ! cmp -s "$TMP/ours" "$TMP/theirs" || [ "$(wc -l < "$TMP/ours")" != 3 ]; then
    echo "live hosts differ (< portscan, > nmap):" >&2
    diff "$TMP/ours" "$TMP/theirs" >&2 || true
    exit 1
fi
echo "same live hosts: $(tr '\n' ' ' < "$TMP/ours")"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_A $PORTSCAN -sn 198.18.1.0/24" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_A nmap -sn -n 198.18.1.0/24" >/dev/null
compare "discovery, routed /24" "$TMP/ours.json" "$TMP/nmap.json" "well under a second"
fi

# UDP responders on `ports` of `address`, run through `prefix` (`ip netns exec NAME`): each
# answers every datagram, whatever it says, with one of its own.
udp_respond() { # prefix address port...
    prefix=$1
    shift
    $prefix python3 -c '
import selectors, socket, sys, time
selector = selectors.DefaultSelector()
for port in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(port)))
    selector.register(s, selectors.EVENT_READ)
end = time.monotonic() + 3600
while time.monotonic() < end:
    for key, _ in selector.select(1):
        data, peer = key.fileobj.recvfrom(4096)
        key.fileobj.sendto(b"portscan bench", peer)
' "$@" &
    PIDS="$PIDS $!"
}

# The UDP states of a scan, a line per state: its count, and its ports where there are at
# most ten of them; from portscan's --all records, or from nmap's XML (-oX), which counts
# the ports of a common state without listing them (and lists them when they are few).
udp_states() { # ours|nmap file
    python3 - "$@" <<'PY'
import collections, sys
kind, path = sys.argv[1], sys.argv[2]
ports, counts = collections.defaultdict(list), collections.Counter()
if kind == "ours":
    for line in open(path):
        _, port, state, _ = line.split(maxsplit=3)
        ports[state].append(int(port.split("/")[0]))
else:
    import xml.etree.ElementTree as ET
    found = ET.parse(path).getroot().find("host/ports")
    for port in found.findall("port"):
        ports[port.find("state").get("state")].append(int(port.get("portid")))
    for extra in found.findall("extraports"):
        counts[extra.get("state")] += int(extra.get("count"))
for state in sorted(set(ports) | set(counts)):
    count = counts[state] + len(ports[state])
    listed = " ".join(map(str, sorted(ports[state]))) if count <= 10 else ""
    print(f"{state} {count} {listed}".rstrip())
PY
}

# Checks portscan's UDP states against `expected` (udp_states' lines), and sets nmap's
# beside them: a difference of portscan's fails the bench; one of nmap's is reported.
check_udp_states() { # name expected
    udp_states ours "$TMP/udp-ours" > "$TMP/udp-ours.states"
    udp_states nmap "$TMP/udp-nmap.xml" > "$TMP/udp-nmap.states"
    printf '%s\n' "$2" > "$TMP/udp-expected.states"
    if ! cmp -s "$TMP/udp-ours.states" "$TMP/udp-expected.states"; then
        echo "$1: portscan's UDP states are wrong (< portscan, > expected):" >&2
        diff "$TMP/udp-ours.states" "$TMP/udp-expected.states" >&2 || true
        exit 1
    fi
    if cmp -s "$TMP/udp-ours.states" "$TMP/udp-nmap.states"; then
        echo "$1: the same states as nmap: $(tr '\n' ';' < "$TMP/udp-ours.states")"
    else
        echo "$1: states right, and nmap's differ (< portscan, > nmap):"
        diff "$TMP/udp-ours.states" "$TMP/udp-nmap.states" || true
    fi
}

if want 4; then
echo "== nmap -sU's top 100 UDP ports of a namespace host rationing its ICMP errors"
# Linux's default ration, set here because it is the namespace's own setting.
ip netns exec "$NS_B" sysctl -qw net.ipv4.icmp_ratelimit=1000
udp_respond "ip netns exec $NS_B" 198.18.0.2 53 123 161
sleep 0.5
# One run each, the bucket full at the start of each: it refills in six seconds.
sleep 6
hyperfine --runs 1 --export-json "$TMP/ours.json" \
    "ip netns exec $NS_A $PORTSCAN -sU --top-ports 100 --all 198.18.0.2 > $TMP/udp-ours" >/dev/null
sleep 6
hyperfine --runs 1 --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_A nmap -sU --top-ports 100 -n -oX $TMP/udp-nmap.xml 198.18.0.2 > /dev/null" >/dev/null
check_udp_states "ICMP-limited namespace host" "closed 97
open 3 53 123 161"
compare "UDP top 100, ICMP limited" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.90"
closed=$(awk '$1 == "closed" { print $2 }' "$TMP/udp-ours.states")
python3 -c 'import sys; c, o = int(sys.argv[1]), float(sys.argv[2]); f = max(c - 6, 0) * 1.0; print(f"UDP top 100, ICMP limited: floor ({c} closed - 6 burst) x 1 s = {f:.0f}s; portscan {o:.1f}s, {o / f if f else 0:.2f}x the floor")' "$closed" "$(mean "$TMP/ours.json")"
fi

if want 5; then
echo "== all UDP ports of 127.0.0.1 in a namespace, 3 answering, 2 silent"
udp_respond "ip netns exec $NS_B" 127.0.0.1 41001 41002 41003
ip netns exec "$NS_B" python3 -c '
import socket, time
sockets = []
for port in (41004, 41005):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", port)); sockets.append(s)
time.sleep(3600)
' &
PIDS="$PIDS $!"
sleep 0.5
ip netns exec "$NS_B" "$PORTSCAN" -sU -p- --all 127.0.0.1 > "$TMP/udp-ours"
ip netns exec "$NS_B" nmap -sU -p- -n -oX "$TMP/udp-nmap.xml" 127.0.0.1 > /dev/null
check_udp_states "UDP loopback" "closed 65530
open 3 41001 41002 41003
open|filtered 2 41004 41005"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_B $PORTSCAN -sU -p- 127.0.0.1" >/dev/null
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_B nmap -sU -p- -n 127.0.0.1" >/dev/null
compare "UDP loopback, all ports" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.50"
fi

# Version detection (-sV) against Debian's servers, each started here with a config of
# the bench's own on its usual port of 198.18.2.2 in NS_SV_B, and scanned from NS_SV_A.
SV_HOST=198.18.2.2
if want 10 || want 11; then
# Not installed here: their packages start system services as they install (.ci/run
# installs them with those kept from starting).
for program in /usr/sbin/sshd /usr/sbin/nginx /usr/sbin/vsftpd /usr/sbin/dnsmasq /usr/bin/ssh-keygen; do
    [ -x "$program" ] || { echo "bench/portscan.sh: $program is missing; install it as .ci/run does" >&2; exit 1; }
done
veth_pair "$NS_SV_A" "$NS_SV_B" "pva$$" "pvb$$" 198.18.2.1/24 "$SV_HOST/24"
sv="ip netns exec $NS_SV_B"
# sshd on 22 and 2222, with a host key of the bench's.
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh_host_key"
mkdir -p /run/sshd
printf 'Port 22\nPort 2222\nListenAddress %s\nHostKey %s\nPidFile none\nUsePAM no\n' \
    "$SV_HOST" "$TMP/ssh_host_key" > "$TMP/sshd_config"
$sv /usr/sbin/sshd -D -f "$TMP/sshd_config" &
PIDS="$PIDS $!"
# nginx on 80 and 8080, as one process (no master, no workers): its pid is all of it.
cat > "$TMP/nginx.conf" <<NGINX
daemon off;
master_process off;
pid $TMP/nginx.pid;
error_log $TMP/nginx.log;
events {}
http {
    access_log off;
    server { listen $SV_HOST:80; listen $SV_HOST:8080; location / { return 200 "hi\n"; } }
}
NGINX
$sv nginx -c "$TMP/nginx.conf" -p "$TMP" 2>/dev/null &
PIDS="$PIDS $!"
# vsftpd on 21, anonymous, in the foreground.
mkdir -m 755 "$TMP/ftp"
cat > "$TMP/vsftpd.conf" <<VSFTPD
listen=YES
listen_address=$SV_HOST
listen_port=21
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$TMP/ftp
ftp_username=nobody
local_enable=NO
secure_chroot_dir=$TMP/ftp
seccomp_sandbox=NO
VSFTPD
$sv vsftpd "$TMP/vsftpd.conf" &
PIDS="$PIDS $!"
# dnsmasq on 53 (UDP and TCP), with no upstream and nothing to read.
$sv dnsmasq -k --conf-file=/dev/null --pid-file="$TMP/dnsmasq.pid" --port=53 \
    --listen-address="$SV_HOST" --bind-interfaces --no-resolv --no-hosts --user=root &
PIDS="$PIDS $!"
# Python's HTTP server on 8000, which speaks only when asked.
mkdir "$TMP/www"
$sv python3 -m http.server --bind "$SV_HOST" --directory "$TMP/www" 8000 >/dev/null 2>&1 &
PIDS="$PIDS $!"
# Services of the bench's own: an echo on 7, a port that hangs up at once (nmap's
# tcpwrapped) on 4444, and sixteen silent ones (they accept, read and never speak), some on
# ports whose probes nmap and portscan try first.
SV_SILENT="25 110 143 443 993 1433 3306 3389 5432 5900 6379 11211 27017 40001 40002 40003"
# shellcheck disable=SC2086 # one argument per port
$sv python3 -c '
import selectors, socket, sys, time
selector = selectors.DefaultSelector()
for item in sys.argv[2:]:
    role, port = item.split(":")
    server = socket.create_server((sys.argv[1], int(port)), backlog=128)
    selector.register(server, selectors.EVENT_READ, ("listen", role))
end = time.monotonic() + 3600
while time.monotonic() < end:
    for key, _ in selector.select(1):
        kind, role = key.data
        if kind == "listen":
            connection, _ = key.fileobj.accept()
            if role == "hangup":
                connection.close()
            else:
                selector.register(connection, selectors.EVENT_READ, ("talk", role))
            continue
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:
            selector.unregister(key.fileobj)
            key.fileobj.close()
        elif role == "echo":
            key.fileobj.sendall(data)
' "$SV_HOST" echo:7 hangup:4444 $(for port in $SV_SILENT; do printf 'silent:%s ' "$port"; done) &
PIDS="$PIDS $!"
for port in 21 22 53 80 2222 8080 8000 7 4444 $SV_SILENT; do
    tries=0
    until $sv python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$SV_HOST" "$port" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "nothing listens on $SV_HOST:$port" >&2; exit 1; }
        sleep 0.2
    done
done
fi

# Compares the services of portscan's -oJ records with those of nmap -sV's -oX for each
# port: a product or version of nmap's that portscan does not report alike is a FAIL.
# Prints a line per port, nmap's view beside ours; `false` when one failed.
check_versions() { # name ours.json nmap.xml
    python3 - "$@" <<'PY'
import json, sys
import xml.etree.ElementTree as ET
name, ours_path, nmap_path = sys.argv[1:]
ours = {}
for line in open(ours_path):
    record = json.loads(line)
    if record.get("state") == "open":
        ours[record["port"]] = record
failed = 0
for port in ET.parse(nmap_path).getroot().iter("port"):
    number = int(port.get("portid"))
    service = port.find("service")
    theirs = {key: (service.get(key) if service is not None else None) or ""
              for key in ("name", "product", "version")}
    record = ours.get(number, {})
    mine = {"name": record.get("service") or "", "product": record.get("product") or "",
            "version": record.get("version") or ""}
    verdict = "same"
    if theirs["product"] and (mine["product"], mine["version"]) != (theirs["product"], theirs["version"]):
        verdict, failed = "FAIL", failed + 1
    elif mine != theirs:
        verdict = "differs (nmap names no product)"
    show = lambda s: " ".join(s[k] for k in ("name", "product", "version") if s[k]) or "-"
    print(f"{name}: {number}/tcp nmap: {show(theirs)}; portscan: {show(mine)}: {verdict}")
sys.exit(1 if failed else 0)
PY
}

if want 10; then
echo "== -sV of sshd, nginx, vsftpd and dnsmasq, nmap -sV"
SV_PORTS=21,22,53,80
hyperfine -N --runs "$RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_SV_A $PORTSCAN -sV -Pn -p $SV_PORTS -oJ $TMP/sv-ours.json $SV_HOST" >/dev/null
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SV_A nmap -sV -Pn -n -p $SV_PORTS -oX $TMP/sv-nmap.xml $SV_HOST" >/dev/null
check_versions "four servers" "$TMP/sv-ours.json" "$TMP/sv-nmap.xml" || FAILED="$FAILED 10"
compare "-sV, four servers" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.30"
fi

if want 11; then
echo "== -sV of 25 open ports, 16 of them silent, nmap -sV"
SV_PORTS=$(echo 21 22 53 80 2222 8080 8000 7 4444 $SV_SILENT | tr ' ' ,)
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_SV_A $PORTSCAN -sV -Pn -p $SV_PORTS -oJ $TMP/sv-ours.json $SV_HOST" >/dev/null
# One run: nmap waits on each silent port's probes in turn, for minutes.
hyperfine -N --runs 1 --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SV_A nmap -sV -Pn -n -p $SV_PORTS -oX $TMP/sv-nmap.xml $SV_HOST" >/dev/null
check_versions "25 ports" "$TMP/sv-ours.json" "$TMP/sv-nmap.xml" || FAILED="$FAILED 11"
compare "-sV, 25 ports, 16 silent" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.10"
fi

if want 13; then
echo "== -sS of one port on every address of a /18, a /17 and a /16, nothing answering"
NS_SILENT="${NS_PREFIX}-silent-$$"
NS_SINK="${NS_PREFIX}-sink-$$"
veth_pair "$NS_SILENT" "$NS_SINK" "psq$$" "psr$$" 198.18.2.1/24 198.18.2.2/24
# The sink forwards nothing, and a host that does not forward drops what is not its own
# without an ICMP error: the addresses are silent, not refused.
ip -n "$NS_SILENT" route add 198.19.0.0/16 via 198.18.2.2
ip netns exec "$NS_SINK" sysctl -qw net.ipv4.ip_forward=0
need /usr/bin/time time
for prefix in 18 17 16; do
    addresses=$((1 << (32 - prefix)))
    /usr/bin/time -f '%M %e' -o "$TMP/rss" ip netns exec "$NS_SILENT" \
        "$PORTSCAN" -sS -Pn --all -p 80 "198.19.0.0/$prefix" > "$TMP/silent" 2> "$TMP/silent.err" ||
        { cat "$TMP/silent.err" >&2; exit 1; }
    filtered=$(grep -c ' filtered ' "$TMP/silent" || true)
    records=$(wc -l < "$TMP/silent")
    if [ "$filtered" != "$addresses" ] || [ "$records" != "$addresses" ]; then
        echo "/$prefix: $filtered filtered of $records records, $addresses addresses" >&2
        exit 1
    fi
    read -r kilobytes seconds < "$TMP/rss"
    echo "/$prefix ($addresses addresses, all filtered): peak memory $((kilobytes / 1024)) MB (goal < 20 MB), ${seconds}s"
done
ip netns del "$NS_SILENT"
ip netns del "$NS_SINK"
fi

want 6 || want 7 || want 8 || want 9 || want 12 || finish
[ -e /dev/net/tun ] || { echo "== slow-link cases skipped: /dev/net/tun is missing"; finish; }
cargo build --release -j1 -q -p xtask

# A host 198.18.1.2 in NS_SLOW_B behind xtask's impairment line from NS_SLOW_A, listening
# on `open` ports and dropping `dropped` (nft syntax); the line's counts go to
# $TMP/counts. The line's options follow the ports.
slow_link_up() { # delay_ms jitter_ms loss_percent dropped "open ports" [xtask options]
    delay=$1 jitter=$2 loss=$3 dropped=$4 open=$5
    shift 5
    rm -f "$TMP/line" "$TMP/counts"
    "${CARGO_TARGET_DIR:-target}/release/xtask" impair 3600 "$delay" "$jitter" "$loss" \
        "pss$$" "pst$$" --counts "$TMP/counts" "$@" > "$TMP/line" &
    LINE_PID=$!
    PIDS="$PIDS $LINE_PID"
    while ! grep -q ready "$TMP/line" 2>/dev/null; do sleep 0.1; done
    ip netns add "$NS_SLOW_A"
    ip netns add "$NS_SLOW_B"
    ip link set "pss$$" netns "$NS_SLOW_A"
    ip link set "pst$$" netns "$NS_SLOW_B"
    ip -n "$NS_SLOW_A" addr add 198.18.1.1 peer 198.18.1.2 dev "pss$$"
    ip -n "$NS_SLOW_B" addr add 198.18.1.2 peer 198.18.1.1 dev "pst$$"
    for ns in "$NS_SLOW_A" "$NS_SLOW_B"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_SLOW_A" link set "pss$$" up
    ip -n "$NS_SLOW_B" link set "pst$$" up
    drop_ports "$NS_SLOW_B" "$dropped"
    # shellcheck disable=SC2086 # one argument per port
    ip netns exec "$NS_SLOW_B" python3 -c '
import socket, sys, time
sockets = [socket.create_server(("198.18.1.2", int(port))) for port in sys.argv[1:]]
time.sleep(3600)
' $open &
    PIDS="$PIDS $!"
    sleep 0.5
}

# Stops the line (its devices vanish with it) and the namespaces with their listeners.
slow_link_down() {
    kill "$LINE_PID" 2>/dev/null || true
    ip netns pids "$NS_SLOW_B" | xargs -r kill 2>/dev/null || true
    ip netns del "$NS_SLOW_A"
    ip netns del "$NS_SLOW_B"
    sleep 0.5
}

# Checks the --all records in `file`: `open` ports open, the ports from `low` to `high`
# filtered, and every other port closed, `count` records in all.
check_slow_states() { # name file count "open ports" low high
    python3 - "$@" <<'PY'
import collections, sys
name, path, count, open_ports, low, high = sys.argv[1:]
open_ports, low, high = {int(p) for p in open_ports.split()}, int(low), int(high)
wrong, states, records = [], collections.Counter(), 0
for line in open(path):
    _, port, state, _ = line.split(maxsplit=3)
    port = int(port.split("/")[0])
    records += 1
    states[state] += 1
    expected = "open" if port in open_ports else "filtered" if low <= port <= high else "closed"
    if state != expected:
        wrong.append(f"{port} {state}, not {expected}")
if wrong or records != int(count):
    sys.exit(f"{name}: {records} records of {count}; wrong: {wrong[:20]}")
print(f"{name}: every state right: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
PY
}

# The goal of at most `limit` seconds, in a line of its own.
within() { # name json limit
    python3 -c 'import json, sys; m = json.load(open(sys.argv[2]))["results"][0]["mean"]; print(f"{sys.argv[1]}: portscan {m:.2f}s (goal <= {sys.argv[3]}s)")' "$@"
}

if want 6; then
echo "== 2000 ports behind a 50 ms round trip losing 2% each way, nmap -sT"
slow_link_up 25 2 2 600-699 "22 80 443 700 1024 1999"
ip netns exec "$NS_SLOW_A" "$PORTSCAN" --all -p 1-2000 198.18.1.2 > "$TMP/slow"
awk '$3 == "open" { split($2, p, "/"); print p[1] }' "$TMP/slow" | sort -n > "$TMP/ours"
ip netns exec "$NS_SLOW_A" nmap -sT -p 1-2000 -n -oG - 198.18.1.2 | grep -o '[0-9]*/open/tcp' | cut -d/ -f1 | sort -n > "$TMP/theirs"
if ! cmp -s "$TMP/ours" "$TMP/theirs"; then
    echo "open ports differ (< portscan, > nmap):" >&2
    diff "$TMP/ours" "$TMP/theirs" >&2 || true
    exit 1
fi
dropped=$(awk '$3 == "filtered" { split($2, p, "/"); if (p[1] >= 600 && p[1] <= 699) n++ } END { print n + 0 }' "$TMP/slow")
filtered=$(grep -c ' filtered ' "$TMP/slow" || true)
if [ "$dropped" != 100 ] || [ "$filtered" != 100 ]; then
    echo "found $dropped of 100 dropped ports, $filtered filtered in all" >&2
    exit 1
fi
echo "same open set: $(wc -l < "$TMP/ours") ports; the 100 dropped ports filtered, no other"
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_SLOW_A $PORTSCAN -p 1-2000 198.18.1.2" >/dev/null
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SLOW_A nmap -sT -p 1-2000 -n 198.18.1.2" >/dev/null
compare "50 ms, 2% loss, 100 dropped" "$TMP/ours.json" "$TMP/nmap.json" "none, reported beside nmap"
slow_link_down
fi

SLOW_OPEN="22 80 443 8080 50000 65000"
if want 7; then
echo "== all ports behind a 100 ms round trip losing 2% each way, 300 dropped"
slow_link_up 50 2 2 40001-40300 "$SLOW_OPEN"
ip netns exec "$NS_SLOW_A" "$PORTSCAN" --all -p- 198.18.1.2 > "$TMP/slow"
check_slow_states "100 ms, 2% loss" "$TMP/slow" 65535 "$SLOW_OPEN" 40001 40300
ip netns exec "$NS_SLOW_A" nmap -sT -T4 --min-rate 5000 -p- -n 198.18.1.2 |
    sed -n 's/^Not shown: /100 ms, 2% loss: nmap: /p'
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_SLOW_A $PORTSCAN -p- 198.18.1.2" >/dev/null
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SLOW_A nmap -sT -T4 --min-rate 5000 -p- -n 198.18.1.2" >/dev/null
within "100 ms, 2% loss, all ports" "$TMP/ours.json" 10
compare "100 ms, 2% loss, all ports" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.60" \
    "nmap --min-rate 5000"
slow_link_down
fi

if want 8; then
echo "== all ports behind a 40 ms round trip, no loss, 300 dropped"
slow_link_up 20 2 0 40001-40300 "$SLOW_OPEN"
ip netns exec "$NS_SLOW_A" "$PORTSCAN" --all -p- 198.18.1.2 > "$TMP/slow"
check_slow_states "40 ms" "$TMP/slow" 65535 "$SLOW_OPEN" 40001 40300
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_SLOW_A $PORTSCAN -p- 198.18.1.2" >/dev/null
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SLOW_A nmap -sT -T4 -p- -n 198.18.1.2" >/dev/null
compare "40 ms, all ports" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.30"
slow_link_down
fi

if want 9; then
echo "== 20000 ports through a bottleneck of 2000 packets/s, 100-packet queue, 20 ms"
slow_link_up 10 1 0 10001-10300 "22 80 443 8080" --rate 2000 --queue 100
# The scan in the background, the line's counts read at its start, once it settled (2 s
# on: a few round trips to find the bottleneck, and the round after), and at its end.
cp "$TMP/counts" "$TMP/counts.start"
start=$(date +%s.%N)
ip netns exec "$NS_SLOW_A" "$PORTSCAN" --all -p 1-20000 198.18.1.2 > "$TMP/slow" &
scan=$!
sleep 2
cp "$TMP/counts" "$TMP/counts.settled"
wait "$scan"
end=$(date +%s.%N)
sleep 0.3
cp "$TMP/counts" "$TMP/counts.end"
check_slow_states "bottleneck" "$TMP/slow" 20000 "22 80 443 8080" 10001 10300
python3 - "$TMP/counts.start" "$TMP/counts.settled" "$TMP/counts.end" "$start" "$end" <<'PY'
import sys
def probes(path):
    # The probes' direction: forwarded, lost, dropped by the full queue.
    fields = open(path).readline().split()
    return [int(n) for n in fields[1:]]
start, settled, end = (probes(p) for p in sys.argv[1:4])
seconds = float(sys.argv[5]) - float(sys.argv[4])
def share(a, b):
    passed, dropped = b[0] - a[0], b[2] - a[2]
    return dropped, passed + dropped
d, n = share(start, end)
print(f"bottleneck: portscan {seconds:.2f}s; the queue dropped {d} of {n} probe packets ({d / n:.1%}) in all")
d, n = share(settled, end)
print(f"bottleneck: once settled (from 2 s on): {d} of {n} ({d / n:.1%}, goal <= 5%)")
if d > 0.05 * n:
    sys.exit("bottleneck: more than 5% of the probes dropped by the queue once settled")
PY
cp "$TMP/counts" "$TMP/counts.start"
hyperfine -N --runs 1 --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SLOW_A nmap -sT -T4 -p 1-20000 -n 198.18.1.2" >/dev/null
cp "$TMP/counts" "$TMP/counts.end"
python3 - "$TMP/counts.start" "$TMP/counts.end" "$(mean "$TMP/nmap.json")" <<'PY'
import sys
a, b = ([int(n) for n in open(p).readline().split()[1:]] for p in sys.argv[1:3])
passed, dropped = b[0] - a[0], b[2] - a[2]
print(f"bottleneck: nmap -sT -T4 {float(sys.argv[3]):.2f}s; the queue dropped {dropped} of {passed + dropped} ({dropped / (passed + dropped):.1%})")
PY
slow_link_down
fi
if want 12; then
echo "== -sS of all ports behind a 20 ms round trip, 300 dropped, nmap -sS and masscan"
slow_link_up 10 1 0 40001-40300 "$SLOW_OPEN"
ip netns exec "$NS_SLOW_A" "$PORTSCAN" -sS --all -p- 198.18.1.2 > "$TMP/slow"
check_slow_states "-sS, 20 ms" "$TMP/slow" 65535 "$SLOW_OPEN" 40001 40300
# nmap's XML: the ports it lists, and those it folds into <extraports> by state.
ip netns exec "$NS_SLOW_A" nmap -sS -p- -n -oX "$TMP/nmap.xml" 198.18.1.2 > /dev/null
python3 - "$TMP/nmap.xml" "$SLOW_OPEN" <<'PY'
import collections, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
counts, open_ports = collections.Counter(), []
for extra in root.iter("extraports"):
    counts[extra.get("state")] += int(extra.get("count"))
for port in root.iter("port"):
    state = port.find("state").get("state")
    counts[state] += 1
    if state == "open":
        open_ports.append(int(port.get("portid")))
expected_open = sorted(int(p) for p in sys.argv[2].split())
if sorted(open_ports) != expected_open or counts != {"open": 6, "filtered": 300, "closed": 65229}:
    sys.exit(f"-sS, 20 ms: nmap -sS found open {sorted(open_ports)}, states {dict(counts)}")
print("-sS, 20 ms: nmap -sS finds the same states: 6 open, 300 filtered, 65229 closed")
PY
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/ours.json" \
    "ip netns exec $NS_SLOW_A $PORTSCAN -sS -p- 198.18.1.2" >/dev/null
hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/nmap.json" \
    "ip netns exec $NS_SLOW_A nmap -sS -p- -n 198.18.1.2" >/dev/null
compare "-sS, 20 ms, all ports" "$TMP/ours.json" "$TMP/nmap.json" "<= 0.50" "nmap -sS"
# masscan at portscan's own mean rate (every port once over portscan's mean time). After
# its last probe it waits --wait seconds for late replies: one second is fifty round trips
# here (its default is ten).
if command -v masscan >/dev/null 2>&1; then
    rate=$(python3 -c 'import sys; print(round(65535 / float(sys.argv[1])))' "$(mean "$TMP/ours.json")")
    masscan_cmd="ip netns exec $NS_SLOW_A masscan -p0-65535 198.18.1.2 --rate $rate --wait 1 --adapter pss$$"
    if $masscan_cmd -oL "$TMP/masscan" > "$TMP/masscan.out" 2>&1; then
        found=$(awk '$1 == "open" { print $3 }' "$TMP/masscan" | sort -n | tr '\n' ' ')
        echo "-sS, 20 ms: masscan at $rate probes/s found open: $found"
        hyperfine -N --runs "$SLOW_RUNS" --export-json "$TMP/masscan.json" "$masscan_cmd" >/dev/null
        compare "-sS, 20 ms, all ports" "$TMP/ours.json" "$TMP/masscan.json" "<= 1" "masscan --rate $rate"
    else
        echo "-sS, 20 ms: masscan could not run on this line:"
        sed 's/^/    /' "$TMP/masscan.out" | tail -5
    fi
else
    echo "-sS, 20 ms: masscan is not installed, not compared (apt-get install masscan)"
fi
slow_link_down
fi

finish
