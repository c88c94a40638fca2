#!/usr/bin/env bash
# Many small files (issue 17): FILES files of SIZE bytes (random) in FOLDERS folders, release
# `dcsend many/` -> `dcsend recv -o DIR/` over loopback, copy-paste token files, each run
# checked byte for byte (`diff -r`). Seconds are the sender's transfer clock (channel open to
# the last ack, `--stats` summary); CPU is user+sys of each process (GNU time).
#
#   cargo build --release && benches/many_files.sh                # into tmpfs (/dev/shm)
#   OUT=/var/tmp RUNS=7 benches/many_files.sh                     # into the disk
#   BINS="/tmp/dcsend-before target/release/dcsend" benches/many_files.sh
#
# With several BINS, each run takes them in turn (A B A B ...), so a machine whose load
# changes during the measurement treats them alike. CP=1 adds `cp -r` of the same tree into
# the same file system, then `sync`, to each round: what the file system alone costs. Prints one line per run, then per binary
# the median seconds, files/s at that median, and the median CPU of each side. The load
# average is printed before and after: on a shared machine the wall times mean little without it.
# Needs /usr/bin/time (Debian package `time`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
read -r -a BINS <<<"${BINS:-$root/target/release/dcsend}"
FILES=${FILES:-10000}
FOLDERS=${FOLDERS:-10}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-5}
OUT=${OUT:-/dev/shm}
EXTRA=${EXTRA:-}
CP=${CP:-0}

data=$(mktemp -d "${TMPDIR:-/tmp}/dcsend-many-data.XXXXXX")
work=$(mktemp -d "$OUT/dcsend-many.XXXXXX")
trap 'rm -rf "$data" "$work"' EXIT

# The tree: one pass of python rather than 10,000 `head` processes.
python3 - "$data/many" "$FILES" "$FOLDERS" "$SIZE" <<'EOF'
import os, sys
root, files, folders, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per = -(-files // folders)
for i in range(files):
    d = os.path.join(root, "d%02d" % (i // per))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(size))
EOF
echo "# $FILES files of $SIZE bytes in $FOLDERS folders into $(df --output=fstype "$work" | tail -1) ($work), $RUNS runs"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# one BIN: one transfer; prints "SECONDS SEND_CPU RECV_CPU".
one() {
  local bin=$1 d
  d=$(mktemp -d "$work/run.XXXXXX")
  mkdir "$d/out"
  /usr/bin/time -f '%U %S' -o "$d/recv.cpu" "$bin" recv --bind 127.0.0.1:0 --progress never \
    -q -o "$d/out/" --sdp-in "$d/offer" --sdp-out "$d/answer" 2>"$d/recv.err" &
  local rpid=$!
  # shellcheck disable=SC2086
  /usr/bin/time -f '%U %S' -o "$d/send.cpu" "$bin" "$data/many" --bind 127.0.0.1:0 \
    --progress never -q --stats "$d/stats" --sdp-out "$d/offer" --sdp-in "$d/answer" $EXTRA \
    2>"$d/send.err" || { cat "$d/send.err" >&2; exit 1; }
  wait "$rpid" || { cat "$d/recv.err" >&2; exit 1; }
  diff -r "$data/many" "$d/out/many" >/dev/null || { echo "the tree arrived different" >&2; exit 1; }
  local secs
  secs=$(grep '"t":"summary"' "$d/stats" | sed 's/.*"seconds":\([0-9.e+-]*\).*/\1/')
  awk '{ printf "%.2f ", $1 + $2 }' "$d/send.cpu" "$d/recv.cpu" >"$d/cpu"
  echo "$secs $(cat "$d/cpu")"
  rm -rf "$d"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A secs send recv
cps=""
for ((r = 1; r <= RUNS; r++)); do
  if [ "$CP" = 1 ]; then
    start=$(date +%s.%N)
    cp -r "$data/many" "$work/cp" && sync
    t=$(echo "$(date +%s.%N) - $start" | bc)
    rm -rf "$work/cp"
    cps+="$t "
    printf 'run %d  %-40s %6.2f s  %6.0f files/s\n' "$r" "cp -r + sync" "$t" "$(echo "$FILES / $t" | bc -l)"
  fi
  for b in "${!BINS[@]}"; do
    read -r t s c < <(one "${BINS[$b]}")
    secs[$b]+="$t " send[$b]+="$s " recv[$b]+="$c "
    printf 'run %d  %-40s %6.2f s  %6.0f files/s  cpu send %s recv %s\n' "$r" "${BINS[$b]}" \
      "$t" "$(echo "$FILES / $t" | bc -l)" "$s" "$c"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$CP" = 1 ]; then
  m=$(tr ' ' '\n' <<<"$cps" | grep . | median)
  printf '%-40s median %.2f s = %.0f files/s; runs: %s\n' "cp -r + sync" "$m" "$(echo "$FILES / $m" | bc -l)" "$cps"
fi
for b in "${!BINS[@]}"; do
  m=$(tr ' ' '\n' <<<"${secs[$b]}" | grep . | median)
  printf '%-40s median %.2f s = %.0f files/s; runs: %s; cpu send %s recv %s (medians)\n' \
    "${BINS[$b]}" "$m" "$(echo "$FILES / $m" | bc -l)" "${secs[$b]}" \
    "$(tr ' ' '\n' <<<"${send[$b]}" | grep . | median)" \
    "$(tr ' ' '\n' <<<"${recv[$b]}" | grep . | median)"
done
