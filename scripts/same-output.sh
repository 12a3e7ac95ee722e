#!/usr/bin/env bash
# Usage: scripts/same-output.sh OLD_BIN_DIR NEW_BIN_DIR
# Runs two builds of the four tools side by side on the same fixed inputs, at the same
# moment, and fails on the first record that differs: the check that a reshaping of the
# code changed no output and no exit status. Fields that differ from run to run by nature
# (timestamps, round-trip times, a scan's order unless sorted) are masked or sorted away.
# Only loopback is scanned.
set -euo pipefail
old=$(cd "${1:?usage: same-output.sh OLD_BIN_DIR NEW_BIN_DIR}" && pwd)
new=$(cd "${2:?usage: same-output.sh OLD_BIN_DIR NEW_BIN_DIR}" && pwd)
cd "$(dirname "$0")/.."
work=$(mktemp -d)
listener=
cleanup() {
  local status=$?
  if [ -n "$listener" ]; then
    kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# Listeners that live for the whole comparison (xtask's, as the demo's).
cargo build --quiet --release -p xtask
target/release/xtask listen 120 8080 3306 5432 6379 9200 > "$work/ports" &
listener=$!
sleep 0.5
ports=$(paste -sd, "$work/ports")

# The text to feed svcname: every line kind it knows, and some it must pass unchanged.
{
  printf '22\nssh\n53/udp\nhello\n8000/tcp open http-alt\n127.0.0.1:443 10.0.0.1:51000\n'
  printf '{"port":22,"proto":"tcp"}\n{"local_port":53,"remote_port":5353,"proto":"udp"}\n'
  printf 'host,port,proto\nh,80,tcp\nh,161,udp\n\nnot json {\n'
  printf 'a\r\nlast line without newline'
} > "$work/mixed"
seq 1 3000 > "$work/numbers"
# Protocol names in every place svcname reads one, canonical and as netstat and ss print
# them (docs/FORMAT.md, "Protocol names"), and ports that are not.
{
  printf '22/TCP open\n53/udp6 open\n80/tcp66 open\n161/icmp\nssh/udp\ndomain/udp6\n'
  printf 'tcp6 0 0 :::80 :::* LISTEN\nUDP 0 0 0.0.0.0:53 0.0.0.0:*\nsctp LISTEN [::]:2905\n'
  printf 'dccp LISTEN 0 5 0.0.0.0:4556 0.0.0.0:*\nraw 0 0 0.0.0.0:1 0.0.0.0:*\n'
  printf '{"port":53,"proto":"UDP6"}\n{"port":"53/udp6"}\n{"port":"53/icmp"}\n{"port":53,"proto":"unix"}\n'
  printf '{"port":0}\n{"port":"*"}\n{"port":"0022"}\n{"port":65536}\n{"port":"+22"}\n{"port":""}\n'
  printf 'port,proto\n53,udp6\n53,Tcp\n53/udp6,\n53,raw\n000,tcp\n70000,tcp\n'
} > "$work/protocols"
# CSV as the tools write it and as they do not: quoted cells holding commas, quotes, CR and
# LF (a record over several lines), bytes that are not UTF-8, rows of the wrong width, stray,
# misplaced and unclosed quotes, a header that ends, a new one, and a byte-order mark.
{
  printf 'host,port,proto,note\n"a, b",22,tcp,"say ""hi"""\nc,53,"udp",x\n'
  printf '"multi\nline",80,tcp,"two\r\nends"\nd,443,tcp,\xff\xfe\nh\rx,23,tcp,\r\n'
  printf '"ab"c,22,tcp,x\ne,22,tcp\nsome "quoted text\n"a"b"c",25,tcp,x\n'
  printf 'g,25,tcp,"y"\r\nf,"open,tcp,x\nnot closed\nh,21,tcp,""\n\n'
  printf 'local_port,remote_port,proto\n0,22,tcp\n,,\n*,53,udp\n22,x,tcp\n'
  printf 'port,proto\n"22",tcp\n"2""2",tcp\n22,"open\n\n\xef\xbb\xbfport,proto\n22,tcp\n'
  printf 'port,proto\n23,tcp\nlast,"never closed'
} > "$work/csv"

masked() { sed -E 's/"(rtt_ms|time)":[^,}]*/"\1":_/g; s/,[0-9.]+,20[0-9-]+T[0-9:.]+Z$/,_,_/'; }

cases=(
  "svcname --builtin-only 22 53/udp ssh 20-25 T:80,U:53"
  "svcname --builtin-only --json --risk 21 22 23 80 443"
  "svcname --builtin-only --csv -d -r 1-200"
  "svcname --builtin-only no-such-service"
  "svcname --builtin-only 0"
  "svcname --builtin-only --bogus"
  "svcname --builtin-only < $work/mixed"
  "svcname --builtin-only -d -r < $work/numbers"
  "svcname --builtin-only < /dev/null"
  "svcname --builtin-only < $work/protocols"
  "svcname --builtin-only -d -p udp < $work/protocols"
  "svcname --builtin-only < $work/csv"
  "svcname --builtin-only -d -r --risk < $work/csv"
  "svcname --builtin-only --field remote_port --field note < $work/csv"
  "svcname --builtin-only 53/udp6"
  "svcname --builtin-only -p udp6 53"
  "svcname --builtin-only domain/UDP 0022/Tcp"
  "portscan --sort --all -p 1-1000,$ports 127.0.0.1"
  "portscan --sort --json -p 1-1000,$ports 127.0.0.1 ::1 | masked"
  "portscan --sort --csv --all -p $ports 127.0.0.1 | masked"
  "portscan --sort --all -sU -p 1-1000 127.0.0.1 ::1"
  "portscan --sort --json -p U:1-1000,T:$ports 127.0.0.1 | masked"
  "portscan -sU -p T:22 127.0.0.1"
  "portscan -p 0 127.0.0.1"
  "portscan --bogus"
  "portscan"
  "sockls -tl --sport ${ports%%,*}"
  "sockls -tl -p --json --sport ${ports%%,*}"
  "sockls -tl -p --csv --sport ${ports%%,*}"
  "sockls --port 0"
  "proctree --pid $listener --ancestors"
  "proctree --pid $listener --flat"
  "proctree --pid $listener --json"
  "proctree --pid $listener --csv --ports"
  "proctree --pid 0"
)
export -f masked
failed=0
for case in "${cases[@]}"; do
  for side in old new; do
    dir=${!side}
    (cd "$dir" && PATH="$dir:$PATH" bash -c "$case" >"$work/$side.out" 2>"$work/$side.err"; echo $? >"$work/$side.status") || true
  done
  for part in out err status; do
    if ! cmp -s "$work/old.$part" "$work/new.$part"; then
      echo "differs ($part): $case" >&2
      diff "$work/old.$part" "$work/new.$part" | head -10 >&2 || true
      failed=1
    fi
  done
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "same-output: ${#cases[@]} cases, the same records, messages and statuses"
