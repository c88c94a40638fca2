#!/usr/bin/env bash
# dcsend <-> headless Chromium through the page `dcsend signal` serves, on loopback: the
# figures of BENCHMARKS.md, "dcsend to a browser". Each run moves SIZE both ways and prints
# dcsend's own summary line (its clock: from the channel opening to the last ack) and the
# UDP datagrams the kernel dropped for a full receive buffer during the run (RcvbufErrors).
#
# Needs: a release build (cargo build --release), Chromium (/usr/bin/chromium or
# DCSEND_CHROMIUM), node 20+, and web/node_modules (cd web && npm ci).
#
#   RUNS=3 SIZE=256MiB benches/browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/dcsend
runs=${RUNS:-3}
size=${SIZE:-32MiB}
tmp=$(mktemp -d)
sig=""
trap '[ -n "$sig" ] && kill "$sig" 2>/dev/null; rm -rf "$tmp"' EXIT

drops() { awk '/^Udp:/ { getline; print $6; exit }' /proc/net/snmp; }
# The URL a dcsend peer prints for the other side, once it has.
url_of() {
  for _ in $(seq 100); do
    u=$(sed -n "s/.*--peer '\(.*\)'.*/\1/p" "$1" | head -1)
    [ -n "$u" ] && { echo "$u"; return; }
    sleep 0.1
  done
  echo "no URL in $1" >&2; exit 1
}

head -c "$(numfmt --from=iec "${size%iB}")" /dev/urandom >"$tmp/data.bin"
"$bin" signal --listen 127.0.0.1:0 2>"$tmp/signal.log" & sig=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/signal.log" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/signal.log" | head -1)
echo "$($bin --version), $(/usr/bin/chromium --version 2>/dev/null || true), $size, server $base"

for i in $(seq "$runs"); do
  before=$(drops)
  "$bin" "$tmp/data.bin" --peer "$base" --bind 127.0.0.1:0 --progress never 2>"$tmp/send.log" & s=$!
  node web/test/browser.mjs recv "$(url_of "$tmp/send.log")" "$tmp/got$i" "$tmp/recv.png" >/dev/null
  wait "$s"
  cmp -s "$tmp/data.bin" "$tmp/got$i/data.bin" || { echo "run $i: the download differs" >&2; exit 1; }
  echo "dcsend -> browser, run $i: $(grep '^dcsend: sent' "$tmp/send.log") [$(( $(drops) - before )) datagrams dropped]"
  rm -rf "$tmp/got$i"

  before=$(drops)
  mkdir -p "$tmp/r$i"
  "$bin" recv --peer "$base" -o "$tmp/r$i/" --bind 127.0.0.1:0 --progress never 2>"$tmp/recv.log" & r=$!
  node web/test/browser.mjs send "$(url_of "$tmp/recv.log")" "$tmp/data.bin" "$tmp/send.png" >/dev/null
  wait "$r"
  cmp -s "$tmp/data.bin" "$tmp/r$i/data.bin" || { echo "run $i: the received file differs" >&2; exit 1; }
  echo "browser -> dcsend, run $i: $(grep '^dcsend: received' "$tmp/recv.log") [$(( $(drops) - before )) datagrams dropped]"
  rm -rf "$tmp/r$i"
done
