# Shared by the bench scripts: tool installation and side-by-side timing with hyperfine.
# Sourced, not run. Expects the release binaries in target/release (make bench builds them),
# or in BIN when set: `BIN=/tmp/old-build bash bench/run` measures another build the same way.

BIN="${BIN:-$(pwd)/target/release}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ensure_packages PACKAGE...: installs the Debian packages that are missing (needs root).
ensure_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench: missing packages ${missing[*]}; install them or run as root" >&2
    return 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# compare NAME OURS_CMD REFERENCE_CMD [HYPERFINE_ARGS...]: times both in one hyperfine run
# and prints the ratio reference/ours (above 1: we are faster).
compare() {
  local name=$1 ours=$2 reference=$3
  shift 3
  hyperfine --style none --warmup 2 "$@" --export-json "$WORK/$name.json" \
    -n ours "$ours" -n reference "$reference" >/dev/null 2>&1
  python3 - "$WORK/$name.json" "$name" <<'PY'
import json, sys
runs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ours, ref = runs["ours"]["mean"], runs["reference"]["mean"]
print(f"{sys.argv[2]:<44} ours {ours*1000:9.2f} ms   reference {ref*1000:9.2f} ms   "
      f"reference/ours {ref/ours:6.2f}x")
PY
}
