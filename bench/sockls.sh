#!/usr/bin/env bash
# sockls against ss with many sockets: in a network namespace of its own, helper processes
# hold CONNECTIONS loopback TCP connections (two sockets each; at most 9,000 connections a
# process, to stay under a 20,000-fd hard limit) on two listeners each, and hyperfine
# times sockls and ss side by side on the same sockets: the plain dump (-tan), every socket
# with its owner (-tanp), the listeners with their owners (-tlnp) and an ss filter expression
# the kernel runs (-tn state established '( dport = :900 or sport = :900 )', the first
# helper's connections to its first listener). Prints the ratios and each command's peak RSS. Needs root (ip netns), hyperfine and GNU time (apt packages
# hyperfine, time, iproute2, python3). Goals: sockls -tan <= ss -tan,
# -tanp <= 1/4 of ss -tanp, -tlnp <= 1/5 of ss -tlnp, the filter expression <= ss's.
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-50000}
RUNS=${RUNS:-5}
# The helper ends by itself after this many seconds, whatever happens to this script.
HELPER_LIFETIME=${HELPER_LIFETIME:-900}

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/sockls.sh: needs root for a network namespace; skipped" >&2
    exit 0
fi
for tool in hyperfine /usr/bin/time ip python3 ss; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench/sockls.sh: $tool is missing (apt-get install hyperfine time iproute2 python3)" >&2
        exit 1
    fi
done

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --bin sockls -j1 --manifest-path "$root/Cargo.toml"
sockls=${BIN:-$target/release}/sockls

ns=sockls-bench-$$
work=$(mktemp -d)
helper_pids=()
cleanup() {
    for pid in "${helper_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${helper_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
# 50,000 connections need more ephemeral ports than the default range; the listeners sit
# below it, on 900 and up.
ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"

cat >"$work/helper.py" <<'PY'
import socket, sys, time
count, ready, lifetime, first_port = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + lifetime
listeners = []
for i in range(2):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", first_port + i))
    listener.listen(4096)
    listeners.append(listener)
held = []
for i in range(count):
    if time.monotonic() > deadline:
        break
    client = socket.create_connection(("127.0.0.1", first_port + i % 2))
    server, _ = listeners[i % 2].accept()
    held += [client, server]
with open(ready, "w") as f:
    f.write(str(len(held)))
while time.monotonic() < deadline:
    time.sleep(1)
PY

ulimit -n "$(ulimit -Hn)"
per_helper=9000
helpers=$(((CONNECTIONS + per_helper - 1) / per_helper))
for ((h = 0; h < helpers; h++)); do
    count=$((CONNECTIONS - h * per_helper < per_helper ? CONNECTIONS - h * per_helper : per_helper))
    ip netns exec "$ns" python3 "$work/helper.py" "$count" "$work/ready.$h" "$HELPER_LIFETIME" $((900 + 2 * h)) &
    helper_pids+=($!)
done
for _ in $(seq 600); do
    ready=$(find "$work" -name 'ready.*' -size +0 | wc -l)
    [[ $ready -eq $helpers ]] && break
    for pid in "${helper_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "bench/sockls.sh: a helper died" >&2; exit 1; }
    done
    sleep 0.5
done
[[ $ready -eq $helpers ]] || { echo "bench/sockls.sh: the helpers were not ready in time" >&2; exit 1; }
echo "sockets held: $(awk "{s+=\$1} END {print s}" "$work"/ready.*) TCP (+$((2 * helpers)) listeners) in $helpers processes, namespace $ns"
echo "sockls -tan lines: $(ip netns exec "$ns" "$sockls" -tan | wc -l), ss -tan lines: $(ip netns exec "$ns" ss -Htan | wc -l)"

mean() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["mean"])' "$1" "$2"; }
# CPU time (user + system): sockls spreads the /proc scan over up to 4 threads, so its wall
# time, unlike ss's, depends on how many cores are idle; this one does not.
cpu() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]; print("%.3f" % (r["user"] + r["system"]))' "$1" "$2"; }
peak_rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }

status=0
compare() {
    local name=$1 ours=$2 theirs=$3 goal=$4
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/$name.json" \
        "ip netns exec $ns $sockls $ours" "ip netns exec $ns ss $theirs" >/dev/null
    local a b
    a=$(mean "$work/$name.json" 0)
    b=$(mean "$work/$name.json" 1)
    local ratio
    ratio=$(python3 -c "print(f'{$a / $b:.3f}')")
    local verdict
    verdict=$(python3 -c "print('met' if $a / $b <= $goal else 'MISSED')")
    [[ $verdict == met ]] || status=1
    printf '%-7s sockls %-6s %8.3f s  ss %-6s %8.3f s  ratio %s (goal <= %s: %s)  cpu sockls %s s, ss %s s  peak RSS sockls %s KiB, ss %s KiB\n' \
        "$name" "$ours" "$a" "$theirs" "$b" "$ratio" "$goal" "$verdict" \
        "$(cpu "$work/$name.json" 0)" "$(cpu "$work/$name.json" 1)" \
        "$(peak_rss ip netns exec "$ns" "$sockls" $ours)" "$(peak_rss ip netns exec "$ns" ss $theirs)"
}
compare tan -tan -tan 1
compare tanp -tanp -tanp 0.25
compare tlnp -tlnp -tlnp 0.2
# Split into words, as ss also takes an expression: the same argv for hyperfine and time.
expression="state established ( dport = :900 or sport = :900 )"
echo "filter lines: sockls $(ip netns exec "$ns" "$sockls" -tn $expression | wc -l), ss $(ip netns exec "$ns" ss -Htn $expression | wc -l)"
compare filter "-tn $expression" "-tn $expression" 1
# What leaving --watch running costs: the CPU time of six listings with their owners (the
# first, then one each of five intervals), per interval.
watch_cpu=$(/usr/bin/time -f '%U %S' ip netns exec "$ns" "$sockls" -tanp --watch 0.2 --count 5 2>&1 >/dev/null | tail -1)
printf 'watch   sockls -tanp --watch: %s ms of CPU per interval\n' \
    "$(python3 -c "u, s = map(float, '$watch_cpu'.split()); print(f'{(u + s) / 6 * 1000:.0f}')")"
exit $status
