#!/usr/bin/env bash
# Times proctree's tree view against `ps -ejH` and `pstree -p` on a host with a few thousand
# extra processes: 3,073 sleep processes in a tree of depth 6 (fan-out 3, 3, 4, 4, 4, 4),
# started in their own process group and killed through it at the end (they also exit by
# themselves after $LIFETIME seconds). Prints the mean times, the ratios and peak memory.
#
# Goals: proctree at most half the time of `ps -ejH`, and less than `pstree -p`; `proctree -o
# pid,user,%cpu,%mem,rss,etime,args --sort -%mem` at most half the time of `ps -eo` with the
# same columns and sort (issue 17: "what is eating this machine").
# Needs: hyperfine, psmisc (pstree), procps (ps), time (/usr/bin/time), jq.
# Usage: bench/proctree.sh [RUNS]     (run from the workspace root; builds the release binary)
set -euo pipefail

runs=${1:-30}
LIFETIME=${LIFETIME:-600}
fanouts=(3 3 4 4 4 4)
expected=3073

for tool in hyperfine pstree ps jq /usr/bin/time; do
    command -v "$tool" >/dev/null || {
        echo "bench/proctree.sh: $tool is missing (apt-get install hyperfine psmisc procps jq time)" >&2
        exit 2
    }
done

cargo build --release -j1 --bin proctree --quiet
target=${CARGO_TARGET_DIR:-target}
proctree=$(realpath "${BIN:-$target/release}/proctree")

work=$(mktemp -d)
leader=
cleanup() {
    if [[ -n $leader ]]; then
        kill -KILL -- "-$leader" 2>/dev/null || true
        wait "$leader" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# node.sh LEVEL: starts this node's children, then becomes a sleep process itself, so that
# every node of the tree is a small `sleep` and the children keep it as their parent.
cat >"$work/node.sh" <<EOF
#!/bin/sh
level=\$1
fanouts="${fanouts[*]}"
if [ "\$level" -lt ${#fanouts[@]} ]; then
    set -- \$fanouts
    shift "\$level"
    i=0
    while [ "\$i" -lt "\$1" ]; do
        sh "$work/node.sh" \$((level + 1)) &
        i=\$((i + 1))
    done
fi
exec sleep $LIFETIME
EOF

setsid sh "$work/node.sh" 0 &
leader=$!
deadline=$((SECONDS + 120))
while :; do
    count=$(ps -o pid= -g "$leader" | wc -l)
    [[ $count -ge $expected ]] && break
    if ((SECONDS > deadline)); then
        echo "bench/proctree.sh: only $count of $expected processes started" >&2
        exit 1
    fi
    sleep 0.5
done
# Wait until every node has become a sleep (no sh left in the group).
while ps -o comm= -g "$leader" | grep -qv '^sleep$'; do
    ((SECONDS > deadline)) && break
    sleep 0.2
done
total=$(ls -d /proc/[0-9]* | wc -l)
echo "processes: $count in the benchmark tree, $total on the host"

"$proctree" --pid "$leader" | awk 'NR == 1 || NR == 2 || NR == 4 { print "  " $0 }'

columns=pid,user,%cpu,%mem,rss,etime,args
ours_sort="$proctree -o $columns --sort -%mem"
ps_sort="ps -eo $columns --sort -%mem"
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-json "$work/times.json" \
    "$proctree" "ps -ejH" "pstree -p" \
    "$proctree --json" "ps -e -o pid,ppid,pgid,sid,uid,stat,comm" \
    "$ours_sort" "$ps_sort" >&2

mean() { jq -r --arg cmd "$1" '.results[] | select(.command == $cmd) | .mean' "$work/times.json"; }
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
ours=$(mean "$proctree")
ps_tree=$(mean "ps -ejH")
pstree_p=$(mean "pstree -p")
ours_json=$(mean "$proctree --json")
ps_fields=$(mean "ps -e -o pid,ppid,pgid,sid,uid,stat,comm")
ours_sorted=$(mean "$ours_sort")
ps_sorted=$(mean "$ps_sort")

printf '\n%-28s %10s %14s\n' command "mean (ms)" "peak RSS (KiB)"
row() { printf '%-28s %10.1f %14s\n' "$1" "$(jq -n "$2 * 1000")" "$3"; }
row "proctree" "$ours" "$(peak "$proctree")"
row "ps -ejH" "$ps_tree" "$(peak ps -ejH)"
row "pstree -p" "$pstree_p" "$(peak pstree -p)"
row "proctree --json" "$ours_json" "$(peak "$proctree" --json)"
row "ps -e -o (the diff fields)" "$ps_fields" "$(peak ps -e -o pid,ppid,pgid,sid,uid,stat,comm)"
row "proctree -o ... --sort -%mem" "$ours_sorted" "$(peak "$proctree" -o "$columns" --sort -%mem)"
row "ps -eo ... --sort -%mem" "$ps_sorted" "$(peak ps -eo "$columns" --sort -%mem)"

ratio() { jq -n "$1 / $2 * 100 | round / 100"; }
echo
echo "proctree / ps -ejH:   $(ratio "$ours" "$ps_tree")   (goal: <= 0.5)"
echo "proctree / pstree -p: $(ratio "$ours" "$pstree_p")   (goal: < 1)"
echo "proctree --json / ps -e -o ...: $(ratio "$ours_json" "$ps_fields")"
echo "proctree -o $columns --sort -%mem / ps -eo (same): $(ratio "$ours_sorted" "$ps_sorted")   (goal: <= 0.5)"
# What leaving --watch running costs: the CPU time of six readings (the first, then one each
# of five intervals), per interval.
watch_cpu=$(/usr/bin/time -f '%U %S' "$proctree" --watch 0.2 --count 5 2>&1 >/dev/null | tail -1)
echo "proctree --watch: $(jq -n "($(echo "$watch_cpu" | tr ' ' '+')) / 6 * 1000 | round") ms of CPU per interval"
