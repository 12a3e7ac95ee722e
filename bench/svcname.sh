#!/usr/bin/env bash
# svcname against an awk join on /etc/services (1,000,000 mixed lines, 1,000,000 CSV rows,
# and 1,000,000 scan lines with uniform and with common ports), its peak memory on the last
# two, and a single lookup against getent (goals: at least 5x faster, at most 10 MB; at
# least as fast).
set -euo pipefail
source bench/lib.sh
# time: GNU time's -v, for the peak memory of a run.
ensure_packages hyperfine mawk time

# A million lines as our users pipe them: nmap-style rows without a service column (one
# with a column names its service already), portscan text, bare ports, NDJSON.
python3 - "$WORK/lines" <<'PY'
import random, sys
random.seed(7)
ports = [22, 25, 53, 80, 110, 143, 443, 993, 3306, 5432, 6379, 8080] + list(range(1, 1024))
with open(sys.argv[1], "w") as out:
    for i in range(1_000_000):
        port = random.choice(ports)
        kind = i % 4
        if kind == 0:
            out.write(f"{port}/tcp   open\n")
        elif kind == 1:
            out.write(f"127.0.0.1 {port}/tcp open syn-ack\n")
        elif kind == 2:
            out.write(f"{port}\n")
        else:
            out.write(f'{{"host":"127.0.0.1","address":"127.0.0.1","port":{port},"proto":"tcp","state":"open"}}\n')
PY

# The same annotation in awk: a port/proto token gets the name appended, a JSON object a
# "service" field, a bare port its name.
cat > "$WORK/join.awk" <<'AWK'
NR == FNR {
  if ($0 !~ /^#/ && NF >= 2 && !(($2) in name)) name[$2] = $1
  next
}
/^\{/ {
  if (match($0, /"port":[0-9]+/)) {
    port = substr($0, RSTART + 7, RLENGTH - 7)
    s = ((port "/tcp") in name) ? name[port "/tcp"] : "unknown"
    sub(/}$/, ",\"service\":\"" s "\"}")
  }
  print
  next
}
/^[0-9]+$/ { key = $1 "/tcp"; print key, ((key in name) ? name[key] : "unknown"); next }
{
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/(tcp|udp)$/) { print $0, (($i in name) ? name[$i] : "unknown"); next }
  print
}
AWK

# A million CSV rows as portscan --csv writes them, a third with a quoted cell (without a
# comma, so that awk's split on commas finds the same port column).
python3 - "$WORK/rows.csv" <<'PY'
import random, sys
random.seed(7)
ports = [22, 25, 53, 80, 110, 143, 443, 993, 3306, 5432, 6379, 8080] + list(range(1, 1024))
with open(sys.argv[1], "w") as out:
    out.write("host,address,port,proto,state,reason,rtt_ms,time\n")
    for i in range(1_000_000):
        host = '"web ""front"""' if i % 3 == 0 else "localhost"
        out.write(f"{host},127.0.0.1,{random.choice(ports)},tcp,open,syn-ack,0.042,"
                  "2024-05-01T10:00:00.000Z\n")
PY

# The same for CSV in awk: a service column after the header's and each row's cells.
cat > "$WORK/join-csv.awk" <<'AWK'
NR == FNR {
  if ($0 !~ /^#/ && NF >= 2 && !(($2) in name)) name[$2] = $1
  next
}
FNR == 1 { FS = ","; print $0 ",service"; next }
{ key = $3 "/" $4; print $0 "," ((key in name) ? name[key] : "unknown") }
AWK

# A million lines of a scan report (`ADDRESS PORT/tcp open syn-ack`), the ports uniform
# over 1-65535 (a -p- sweep of many hosts), and the same with a handful of common ports:
# the cost of a line must not depend on how many ports there are.
python3 - "$WORK/uniform" "$WORK/common" <<'PY'
import random, sys
random.seed(7)
common = [22, 25, 53, 80, 443, 3306, 8080]
for path, draw in ((sys.argv[1], lambda: random.randint(1, 65535)),
                   (sys.argv[2], lambda: random.choice(common))):
    with open(path, "w") as out:
        out.writelines(f"10.0.{i % 256}.{i // 256 % 256} {draw()}/tcp open syn-ack\n"
                       for i in range(1_000_000))
PY

# peak_memory NAME FILE: svcname's peak resident memory on FILE, against the 10 MB goal.
peak_memory() {
  /usr/bin/time -v "$BIN/svcname" < "$2" 2>&1 >/dev/null |
    awk -F': ' -v name="$1" '/Maximum resident set size/ {
      printf "%-44s peak %6.1f MB (goal: at most 10 MB)\n", name, $2 / 1024 }'
}

lines=$(wc -l < "$WORK/lines")
echo "input: $lines mixed lines (text, portscan, bare ports, NDJSON)"
compare "svcname: 1M lines vs mawk join" \
  "$BIN/svcname < $WORK/lines > /dev/null" \
  "mawk -f $WORK/join.awk /etc/services $WORK/lines > /dev/null" --runs 5
compare "svcname: 1M CSV rows vs mawk join" \
  "$BIN/svcname < $WORK/rows.csv > /dev/null" \
  "mawk -f $WORK/join-csv.awk /etc/services $WORK/rows.csv > /dev/null" --runs 5
compare "svcname: 1M uniform ports vs mawk join" \
  "$BIN/svcname < $WORK/uniform > /dev/null" \
  "mawk -f $WORK/join.awk /etc/services $WORK/uniform > /dev/null" --runs 5
compare "svcname: 1M common ports vs mawk join" \
  "$BIN/svcname < $WORK/common > /dev/null" \
  "mawk -f $WORK/join.awk /etc/services $WORK/common > /dev/null" --runs 5
peak_memory "svcname: 1M uniform ports" "$WORK/uniform"
peak_memory "svcname: 1M common ports" "$WORK/common"
compare "svcname ssh vs getent services ssh" \
  "$BIN/svcname ssh" "getent services ssh" --runs 300 -N
