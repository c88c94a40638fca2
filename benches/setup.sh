#!/usr/bin/env bash
# Session setup under packet loss: two dcsend processes in two network namespaces joined by a
# veth pair that drops LOSS% of the packets each way (nftables), RUNS times in a row, each
# sending 4 KiB through copy-paste token files. Counts the setups that fail and prints the
# wall time of the others (both processes started to both exited: ICE, DTLS, SCTP, the
# 4 KiB and the final ack). The figures of vendor/rtc-dtls/PATCHES.md.
#
#   cargo build
#   sudo benches/setup.sh                                    # 10% loss, 40 runs
#   LOSS=5 RUNS=100 sudo -E benches/setup.sh
#   BIN=/path/to/other/dcsend sudo -E benches/setup.sh       # another build, same runs
#
# A failed run keeps both sides' stderr (RUST_LOG, default info,rtc_dtls=debug) in
# KEEP (default: a temporary folder made at the first failure, printed at the end). Each run is bounded by
# --connect-timeout (CONNECT_TIMEOUT, default 30s, dcsend's own default). Needs root (or
# CAP_NET_ADMIN + CAP_SYS_ADMIN) and the Debian packages iproute2 and nftables.
set -euo pipefail
BIN=$(realpath "${BIN:-$(dirname "$0")/../target/debug/dcsend}")
LOSS=${LOSS:-10}
RUNS=${RUNS:-40}
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-30s}
export RUST_LOG=${RUST_LOG:-info,rtc_dtls=debug}
for tool in ip nft; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install iproute2 nftables)" >&2; exit 1; }
done
A="dcss-$$-a" B="dcss-$$-b" VA="dcss$$a" VB="dcss$$b"
work=$(mktemp -d)
KEEP=${KEEP:-}
teardown() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap 'teardown; rm -rf "$work"' EXIT

ip netns add "$A" && ip netns add "$B"
# gso_max_segs 1: the stack splits UDP GSO batches into single datagrams before the veth, so
# the loss acts on real packets.
ip link add "$VA" gso_max_segs 1 type veth peer name "$VB" gso_max_segs 1
ip link set "$VA" netns "$A" && ip link set "$VB" netns "$B"
ip -n "$A" addr add 10.77.201.1/30 dev "$VA" && ip -n "$B" addr add 10.77.201.2/30 dev "$VB"
for ns in "$A:$VA" "$B:$VB"; do
  dev=${ns#*:} ns=${ns%%:*}
  ip -n "$ns" link set lo up && ip -n "$ns" link set "$dev" up
  ip netns exec "$ns" nft -f - <<EOF
table inet dcsend_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "$dev" numgen random mod 100 < $LOSS counter drop;
  }
}
EOF
done
head -c 4096 /dev/urandom >"$work/in.bin"

times=() failed=0
for run in $(seq 1 "$RUNS"); do
  dir="$work/run$run"
  mkdir -p "$dir/out"
  start=$(date +%s.%N)
  ip netns exec "$B" "$BIN" recv --bind 10.77.201.2:0 --progress never -o "$dir/out/" \
    --sdp-in "$dir/offer" --sdp-out "$dir/answer" --connect-timeout "$CONNECT_TIMEOUT" \
    2>"$dir/recv.err" &
  recv=$!
  send_code=0 recv_code=0
  ip netns exec "$A" "$BIN" "$work/in.bin" --bind 10.77.201.1:0 --progress never \
    --sdp-out "$dir/offer" --sdp-in "$dir/answer" --connect-timeout "$CONNECT_TIMEOUT" \
    2>"$dir/send.err" || send_code=$?
  wait "$recv" || recv_code=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  if [ "$send_code" = 0 ] && [ "$recv_code" = 0 ] && cmp -s "$work/in.bin" "$dir/out/in.bin"; then
    times+=("$secs")
    printf 'run %3d  ok    %6.2f s\n' "$run" "$secs"
  else
    failed=$((failed + 1))
    [ -n "$KEEP" ] || KEEP=$(mktemp -d)
    mkdir -p "$KEEP" && cp -r "$dir" "$KEEP/"
    printf 'run %3d  FAIL  %6.2f s (sender %s, receiver %s): %s\n' "$run" "$secs" "$send_code" \
      "$recv_code" "$(grep -h '^dcsend:' "$dir/send.err" "$dir/recv.err" | tr '\n' ' ')"
  fi
  rm -rf "$dir"
done

sorted=$(printf '%s\n' "${times[@]}" | sort -n)
n=${#times[@]}
pick() {
  if [ "$n" -gt 0 ]; then
    printf '%.2f' "$(echo "$sorted" | sed -n "$((($1 * (n - 1) + 50) / 100 + 1))p")"
  else
    echo -
  fi
}
printf 'loss %s%% each way: %d of %d setups failed; the others took p50 %s s, p90 %s s, max %s s\n' \
  "$LOSS" "$failed" "$RUNS" "$(pick 50)" "$(pick 90)" "$(pick 100)"
[ "$failed" = 0 ] || echo "stderr of the failed runs: $KEEP"
