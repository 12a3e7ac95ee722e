#!/usr/bin/env bash
# make demo: the lab's questions answered on this machine, with nothing set up beforehand.
# Starts a few loopback listeners of its own (stand-ins for web, database and cache
# services, for 60 seconds at most), then asks each tool about them and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release

"$bin"/xtask listen 60 8080 3306 5432 6379 9200 > /tmp/demo-ports.$$ &
listener=$!
trap 'status=$?; kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null || true; rm -f /tmp/demo-ports.$$; exit $status' EXIT
sleep 0.5
held=$(paste -sd, /tmp/demo-ports.$$)
echo "demo: listening on 127.0.0.1 ports $held (pid $listener)"

step() { printf '\n$ %s\n' "$*"; bash -c "$*"; }

step "$bin/svcname --risk 21 22 23 53/udp 80 443"
step "$bin/portscan 127.0.0.1 -p 1-10000 | $bin/svcname"
step "$bin/portscan 127.0.0.1 -p $held --json | $bin/svcname | head -2"
step "$bin/sockls -tl -p | $bin/svcname | grep -w $listener"
step "$bin/proctree --ports --pid $listener --ancestors"
