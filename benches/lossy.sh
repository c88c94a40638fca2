#!/usr/bin/env bash
# Two dcsend processes in two network namespaces joined by a veth pair, under packet loss
# X and a bandwidth cap (tc tbf): the
# scenarios of tests/netns.rs, in release mode, with throughput per case.
#
#   cargo build --release
#   sudo benches/lossy.sh                                  # 32 MiB each, 1 run each
#   SIZE_MIB=128 RUNS=3 sudo -E benches/lossy.sh
#   CASES="clean loss5" RATE=100mbit sudo -E benches/lossy.sh
#   BIN=target/debug/dcsend sudo -E benches/lossy.sh       # the figures `cargo test` sees
#   TCP=1 CASES="loss0.5 loss1" sudo -E benches/lossy.sh   # and TCP CUBIC on the same path
#
# Cases: clean (no shaping), loss0.5 / loss1 / loss5 (0.5% / 1% / 5% of packets dropped in
# each direction), tbf (RATE each way, default 40mbit), loss1+tbf. Prints one line per run:
# MB/s (10^6 bytes/s) over the sender's transfer clock (channel open to final ack, from
# --stats) and over the wall clock (both processes from start to exit, setup included).
# TCP=1 adds, per run, the same bytes over TCP with CUBIC set on the socket (iperf3 -C cubic;
# MB/s over iperf3's receiver clock) in the same pair of namespaces. Needs root (or
# CAP_NET_ADMIN + CAP_SYS_ADMIN) and the Debian packages iproute2 and nftables (and iperf3
# for TCP=1).
set -euo pipefail
BIN=$(realpath "${BIN:-$(dirname "$0")/../target/release/dcsend}")
SIZE_MIB=${SIZE_MIB:-32}
# With the published rtc-sctp, 5% loss ran at about 0.08 MB/s (its 1 s minimum RTO): 32 MiB
# took about 7 minutes. LOSS5_MIB=1 for a quick look.
LOSS5_MIB=${LOSS5_MIB:-$SIZE_MIB}
RUNS=${RUNS:-1}
RATE=${RATE:-40mbit}
CASES=${CASES:-clean loss1 loss5 tbf loss1+tbf}
EXTRA=${EXTRA:-}
TCP=${TCP:-}
for tool in ip nft tc; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install iproute2 nftables)" >&2; exit 1; }
done
A="dcsb-$$-a" B="dcsb-$$-b" VA="dcsb$$a" VB="dcsb$$b"
work=$(mktemp -d)
teardown() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap 'teardown; rm -rf "$work"' EXIT
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$work/in.bin"
head -c $((LOSS5_MIB * 1024 * 1024)) "$work/in.bin" >"$work/in5.bin"

# setup LOSS_PER_MILLE RATE|"": a fresh pair of namespaces, 10.77.200.1/30 <-> .2.
setup() {
  teardown
  ip netns add "$A" && ip netns add "$B"
  # gso_max_segs 1: the stack splits UDP GSO batches into single datagrams before the veth, so
  # loss and tbf act on real packets (a veth passes a 64 KB GSO batch on as one skb).
  ip link add "$VA" gso_max_segs 1 type veth peer name "$VB" gso_max_segs 1
  ip link set "$VA" netns "$A" && ip link set "$VB" netns "$B"
  ip -n "$A" addr add 10.77.200.1/30 dev "$VA" && ip -n "$B" addr add 10.77.200.2/30 dev "$VB"
  local ns dev
  for ns in "$A:$VA" "$B:$VB"; do
    dev=${ns#*:} ns=${ns%%:*}
    ip -n "$ns" link set lo up && ip -n "$ns" link set "$dev" up
    if [ "$1" -gt 0 ]; then
      ip netns exec "$ns" nft -f - <<EOF
table inet dcsend_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "$dev" numgen random mod 1000 < $1 counter drop;
  }
}
EOF
    fi
    if [ -n "$2" ]; then
      ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$2" burst 32kbit latency 50ms
    fi
  done
}

for case in $CASES; do
  case $case in
    clean) loss=0 rate= in=in.bin mib=$SIZE_MIB ;;
    loss0.5) loss=5 rate= in=in.bin mib=$SIZE_MIB ;;
    loss1) loss=10 rate= in=in.bin mib=$SIZE_MIB ;;
    loss5) loss=50 rate= in=in5.bin mib=$LOSS5_MIB ;;
    tbf) loss=0 rate=$RATE in=in.bin mib=$SIZE_MIB ;;
    loss1+tbf) loss=10 rate=$RATE in=in.bin mib=$SIZE_MIB ;;
    *) echo "unknown case $case" >&2; exit 2 ;;
  esac
  for run in $(seq "$RUNS"); do
    setup "$loss" "$rate"
    rm -rf "$work/out" "$work"/*.tok "$work/stats.ndjson" && mkdir "$work/out"
    start=$(date +%s.%N)
    ip netns exec "$B" "$BIN" recv --bind 10.77.200.2:0 --progress never -q \
      --sdp-in "$work/offer.tok" --sdp-out "$work/answer.tok" -o "$work/out/" &
    rpid=$!
    # shellcheck disable=SC2086
    ip netns exec "$A" "$BIN" "$work/$in" --bind 10.77.200.1:0 --progress never -q $EXTRA \
      --sdp-out "$work/offer.tok" --sdp-in "$work/answer.tok" --stats "$work/stats.ndjson"
    wait "$rpid"
    end=$(date +%s.%N)
    cmp -s "$work/$in" "$work/out/$in" || { echo "$case run $run: OUTPUT DIFFERS"; exit 1; }
    drops=0
    if [ "$loss" -gt 0 ]; then
      for ns in "$A" "$B"; do
        d=$(ip netns exec "$ns" nft list table inet dcsend_loss | sed -n 's/.*counter packets \([0-9]*\).*drop.*/\1/p')
        drops=$((drops + d))
      done
    fi
    secs=$(grep '"t":"summary"' "$work/stats.ndjson" | sed 's/.*"seconds":\([0-9.e+-]*\).*/\1/')
    awk -v b=$((mib * 1048576)) -v mib="$mib" -v s="$secs" -v w="$(echo "$end - $start" | bc)" \
        -v c="$case" -v run="$run" -v r="${rate:--}" -v d="$drops" \
      'BEGIN { printf "%-10s %3d MiB run %d: %7.2f MB/s (transfer %6.2f s, wall %6.2f s, %.1f MB/s) rate %s, %d packets dropped\n",
               c, mib, run, b / s / 1e6, s, w, b / w / 1e6, r, d }'
    if [ -n "$TCP" ]; then
      ip netns exec "$B" iperf3 -s -B 10.77.200.2 >/dev/null 2>&1 &
      spid=$!
      sleep 0.5
      json=$(ip netns exec "$A" timeout 300 iperf3 -c 10.77.200.2 -n $((mib * 1048576)) -C cubic -J) || true
      kill "$spid" && wait "$spid" || true
      python3 -c 'import json, sys
j = json.load(sys.stdin)
if "error" in j:
    sys.exit("%s run %s: iperf3: %s" % (sys.argv[1], sys.argv[3], j["error"]))
e = j["end"]
r, s = e["sum_received"], e["sum_sent"]
print("%-10s %3d MiB run %s: %7.2f MB/s TCP CUBIC (%.2f s, %d retransmits)" % (
    sys.argv[1], int(sys.argv[2]), sys.argv[3], r["bytes"] / r["seconds"] / 1e6, r["seconds"],
    s.get("retransmits", 0)))' "$case" "$mib" "$run" <<<"$json"
    fi
  done
done
