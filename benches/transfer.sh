#!/usr/bin/env bash
# Two dcsend processes over loopback: SIZE_MIB of random data from a file to `recv -o DIR`,
# RUNS times, with wall time, CPU time and peak RSS of each side (GNU time).
#
#   cargo build --release
#   benches/transfer.sh                         # 1024 MiB, 3 runs, default flags
#   SIZE_MIB=4096 RUNS=1 benches/transfer.sh
#   EXTRA="--threshold 256K" benches/transfer.sh
#
# Prints one line per run: MB/s (10^6 bytes/s), then each side's user+sys CPU seconds and
# max RSS in MiB. Needs /usr/bin/time (Debian package `time`).
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../target/release/dcsend}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
EXTRA=${EXTRA:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$work/in.bin"
for run in $(seq "$RUNS"); do
  rm -rf "$work/out" "$work"/*.tok && mkdir "$work/out"
  /usr/bin/time -f '%e %U %S %M' -o "$work/recv.time" \
    "$BIN" recv --bind 127.0.0.1:0 --progress never -q \
    --sdp-in "$work/offer.tok" --sdp-out "$work/answer.tok" -o "$work/out/" &
  rpid=$!
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %U %S %M' -o "$work/send.time" \
    "$BIN" "$work/in.bin" --bind 127.0.0.1:0 --progress never -q $EXTRA \
    --sdp-out "$work/offer.tok" --sdp-in "$work/answer.tok" \
    --stats "$work/stats.ndjson"
  wait "$rpid"
  end=$(date +%s.%N)
  cmp -s "$work/in.bin" "$work/out/in.bin" || { echo "run $run: OUTPUT DIFFERS"; exit 1; }
  # The summary's own clock covers channel-open to ack; the wall clock includes setup.
  secs=$(grep '"t":"summary"' "$work/stats.ndjson" | sed 's/.*"seconds":\([0-9.e+-]*\).*/\1/')
  read -r _ su ss sm <"$work/send.time"
  read -r _ ru rs rm <"$work/recv.time"
  awk -v b=$((SIZE_MIB * 1048576)) -v s="$secs" -v w="$(echo "$end - $start" | bc)" \
      -v su="$su" -v ss="$ss" -v sm="$sm" -v ru="$ru" -v rs="$rs" -v rm="$rm" -v run="$run" \
    'BEGIN { printf "run %d: %.0f MB/s (transfer %.2f s, wall %.2f s) | send cpu %.2f s rss %.1f MiB | recv cpu %.2f s rss %.1f MiB\n",
             run, b / s / 1e6, s, w, su + ss, sm / 1024, ru + rs, rm / 1024 }'
done
