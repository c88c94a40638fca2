#!/usr/bin/env bash
# Connection setup through `dcsend signal` on loopback: a server, then RUNS pairs of
# `dcsend FILE --peer URL` (first, makes the room) and `dcsend recv --peer URL` (second).
#
#   cargo build --release
#   benches/signal_setup.sh            # 20 runs
#   RUNS=50 benches/signal_setup.sh
#
# For each run it prints the time from "both peers in the room" to "data channel open" as each
# side logs it (`setup_ms`, with -v), and the wall time of the second peer's process from its
# start to its exit (process start, join, PAKE, offer/answer, ICE, DTLS, SCTP, a 1 KiB
# transfer, close). Ends with the median, min and max of each column.
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../target/release/dcsend}
RUNS=${RUNS:-20}
work=$(mktemp -d)
"$BIN" signal --listen 127.0.0.1:0 -q 2>"$work/server.log" &
spid=$!
trap 'kill $spid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$work/server.log" && break; sleep 0.05; done
base=$(sed -n 's/^listening on //p' "$work/server.log")/
head -c 1024 /dev/urandom >"$work/in.bin"
printf '%4s %10s %10s %10s\n' run send_ms recv_ms recv_wall_ms
for run in $(seq "$RUNS"); do
  rm -rf "$work/out" && mkdir "$work/out"
  "$BIN" "$work/in.bin" --peer "$base" --bind 127.0.0.1:0 --progress never -v 2>"$work/send.log" &
  sendpid=$!
  url=
  for _ in $(seq 200); do
    url=$(grep -o "\-\-peer '[^']*'" "$work/send.log" | sed "s/--peer '//; s/'\$//" || true)
    [ -n "$url" ] && break
    sleep 0.01
  done
  start=$(date +%s%N)
  "$BIN" recv --peer "$url" --bind 127.0.0.1:0 --progress never -v -o "$work/out" 2>"$work/recv.log"
  end=$(date +%s%N)
  wait "$sendpid"
  cmp -s "$work/in.bin" "$work/out/in.bin" || { echo "run $run: OUTPUT DIFFERS"; exit 1; }
  s=$(sed -n 's/.*setup_ms=\([0-9]*\).*/\1/p' "$work/send.log")
  r=$(sed -n 's/.*setup_ms=\([0-9]*\).*/\1/p' "$work/recv.log")
  printf '%4d %10s %10s %10d\n' "$run" "$s" "$r" $(((end - start) / 1000000))
done | tee "$work/table"
names=(run send_ms recv_ms recv_wall_ms)
for col in 2 3 4; do
  name=${names[col - 1]}
  awk -v c=$col '{ print $c }' "$work/table" | sort -n |
    awk -v name="$name" '{ a[NR] = $1 }
      END { printf "%-13s median %6.1f  min %5d  max %5d\n", name, (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2, a[1], a[NR] }'
done
