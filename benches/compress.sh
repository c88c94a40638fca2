#!/usr/bin/env bash
# What `--compress` buys and costs (issue 17): a source tree and a log file sent with and
# without it, on loopback and on a 40 Mbit/s link (tbf each way, between two network
# namespaces this script makes and removes; no netem here), and random bytes on loopback,
# where nothing compresses and the cost shows. Release `dcsend DATA` -> `dcsend recv -o DIR`,
# copy-paste token files, each run checked byte for byte. Seconds are the sender's transfer
# clock (channel open to final ack, `--stats`), medians of RUNS; CPU is user+sys of both
# processes together (GNU time), median too.
#
#   cargo build --release && sudo benches/compress.sh
#   TREE=~/src/tokio RUNS=5 LOG_MIB=64 RAND_MIB=512 sudo -E benches/compress.sh
#   LINK=0 benches/compress.sh        # loopback only (no root needed)
#
# TREE defaults to this repository's own tracked files (`git archive HEAD`). The log is
# generated: LOG_MIB MiB of lines with timestamps, levels, ids and addresses. Needs
# iproute2 (ip, tc) and GNU time for the link.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${BIN:-$root/target/release/dcsend}")
RUNS=${RUNS:-3}
LOG_MIB=${LOG_MIB:-32}
RAND_MIB=${RAND_MIB:-256}
LINK=${LINK:-1}
RATE=${RATE:-40mbit}

work=$(mktemp -d "${TMPDIR:-/tmp}/dcsend-compress.XXXXXX")
A="cmp-$$-a" B="cmp-$$-b" VA="cmp$$a" VB="cmp$$b"
ADDR_A=10.79.0.1 ADDR_B=10.79.0.2
teardown() { for ns in "$A" "$B"; do ip netns del "$ns" 2>/dev/null || true; done; }
trap 'teardown; rm -rf "$work"' EXIT

# --- data ---
mkdir -p "$work/data"
if [ -n "${TREE:-}" ]; then
  cp -r "$TREE" "$work/data/tree"
else
  mkdir "$work/data/tree"
  git -C "$root" archive HEAD | tar x -C "$work/data/tree"
fi
python3 - "$work/data/big.log" "$LOG_MIB" <<'EOF'
import random, sys
random.seed(17)
levels = ["INFO"] * 8 + ["WARN", "DEBUG", "ERROR"]
paths = ["/api/v1/items", "/api/v1/users/%d", "/static/app.js", "/healthz", "/api/v1/search?q=%s"]
words = ["alpha", "beta", "gamma", "delta", "photos", "backup", "report", "invoice"]
want, out, t = int(sys.argv[2]) << 20, [], 1764547200.0
size = 0
with open(sys.argv[1], "w") as f:
    while size < want:
        t += random.expovariate(200)
        p = random.choice(paths)
        if "%d" in p: p = p % random.randrange(100000)
        if "%s" in p: p = p % random.choice(words)
        line = "%s.%06dZ %-5s req=%08x ip=10.%d.%d.%d %s %d %dms\n" % (
            __import__("time").strftime("%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(t)),
            int(t % 1 * 1e6), random.choice(levels), random.getrandbits(32),
            random.randrange(256), random.randrange(256), random.randrange(256), p,
            random.choice([200] * 20 + [304, 404, 500]), random.randrange(1, 900))
        f.write(line)
        size += len(line)
EOF
head -c "$((RAND_MIB << 20))" /dev/urandom >"$work/data/random.bin"

# --- the link ---
link_up() {
  teardown
  ip netns add "$A"
  ip netns add "$B"
  ip link add "$VA" gso_max_segs 1 type veth peer name "$VB" gso_max_segs 1
  ip link set "$VA" netns "$A"
  ip link set "$VB" netns "$B"
  ip -n "$A" addr add "$ADDR_A/30" dev "$VA"
  ip -n "$B" addr add "$ADDR_B/30" dev "$VB"
  for ns in "$A:$VA" "$B:$VB"; do
    dev=${ns#*:} ns=${ns%%:*}
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$dev" up
    ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$RATE" burst 32kbit latency 50ms
  done
}

# one WHERE DATA FLAGS...: one transfer; prints "SECONDS CPU_SECONDS".
one() {
  local where=$1 data=$2
  shift 2
  local d
  d=$(mktemp -d "$work/run.XXXXXX")
  mkdir "$d/out"
  local sx=() rx=() sa=127.0.0.1 ra=127.0.0.1
  if [ "$where" = link ]; then
    sx=(ip netns exec "$A") rx=(ip netns exec "$B") sa=$ADDR_A ra=$ADDR_B
  fi
  local tf=(/usr/bin/time -f "%U %S")
  "${rx[@]}" "${tf[@]}" -o "$d/recv.cpu" "$BIN" recv --bind "$ra:0" --progress never \
    -o "$d/out/" --sdp-in "$d/offer" --sdp-out "$d/answer" 2>"$d/recv.err" &
  local rpid=$!
  "${sx[@]}" "${tf[@]}" -o "$d/send.cpu" "$BIN" "$work/data/$data" --bind "$sa:0" \
    --progress never --stats "$d/stats" --sdp-out "$d/offer" --sdp-in "$d/answer" "$@" \
    2>"$d/send.err" || { cat "$d/send.err" >&2; exit 1; }
  wait "$rpid" || { cat "$d/recv.err" >&2; exit 1; }
  diff -r "$work/data/$data" "$d/out/$(basename "$data")" >/dev/null ||
    { echo "$data arrived different" >&2; exit 1; }
  local secs cpu
  secs=$(jq -r 'select(.t == "summary") | .seconds' "$d/stats")
  cpu=$(cat "$d/send.cpu" "$d/recv.cpu" | awk '{ s += $1 + $2 } END { printf "%.2f", s }')
  rm -rf "$d"
  echo "$secs $cpu"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# cell WHERE DATA: both ways, RUNS each, alternating; one table row.
cell() {
  local where=$1 data=$2 plain=() comp=() pc=() cc=() r t c
  for ((r = 0; r < RUNS; r++)); do
    read -r t c < <(one "$where" "$data")
    plain+=("$t") pc+=("$c")
    read -r t c < <(one "$where" "$data" --compress)
    comp+=("$t") cc+=("$c")
  done
  local p q pcpu ccpu
  p=$(printf '%s\n' "${plain[@]}" | median)
  q=$(printf '%s\n' "${comp[@]}" | median)
  pcpu=$(printf '%s\n' "${pc[@]}" | median)
  ccpu=$(printf '%s\n' "${cc[@]}" | median)
  printf '| %s | %s | %s | %.2f | %.2f | %.2f | %s | %s |\n' "$where" "$data" \
    "$(du -sh "$work/data/$data" | cut -f1)" "$p" "$q" "$(echo "$q / $p" | bc -l)" "$pcpu" "$ccpu"
}

echo "| where | data | size | plain s | --compress s | ratio | plain CPU s | --compress CPU s |"
echo "| ----- | ---- | ---- | ------- | ------------ | ----- | ----------- | ---------------- |"
cell loopback tree
cell loopback big.log
cell loopback random.bin
if [ "$LINK" = 1 ]; then
  link_up
  cell link tree
  cell link big.log
fi
