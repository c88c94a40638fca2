#!/usr/bin/env bash
# dcsend against TCP CUBIC on an emulated WAN: two endpoint network namespaces joined through
# a router namespace whose forwarding path goes through NFQUEUE, one queue per direction,
# served by tools/wan-emu's `wan-delay` (a user-space delay line with seeded random loss;
# this kernel has no netem). Prints the issue-16 table: MB/s (10^6 bytes/s) of each, medians
# of RUNS, and the dcsend/TCP ratio, per cell (round trip, loss each way).
#
#   cargo build --release && cargo build --release -p wan-emu
#   sudo benches/wan.sh                                    # the full table, 64 MiB, 3 runs
#   CELLS="20:0 2:1" RUNS=1 SIZE=16 sudo -E benches/wan.sh  # RTT_MS:LOSS_PERCENT cells
#   CELLS="20:0:400" ...                                   # RTT_MS:LOSS_PERCENT:BOTTLENECK_MBIT
#   QUEUE_MS=40 ...                                        # the bottleneck's queue, in ms of its rate
#   EXTRA="--threshold 16M" sudo -E benches/wan.sh           # extra dcsend sender flags
#   VERIFY=0 ...                                           # skip the emulator's own checks
#   TCP_WMEM="4096 16384 67108864" ...                     # TCP sender's net.ipv4.tcp_wmem
#
# TCP runs with the kernel defaults of a new namespace unless TCP_WMEM / TCP_RMEM set the
# sender's tcp_wmem / the receiver's tcp_rmem (here the default tcp_wmem max is 4 MiB, which
# bounds what TCP keeps in flight: about 41 MB/s at 60 ms).
#
# First it verifies the emulator (VERIFY=1): ping RTT at each cell's setting, and its own
# ceiling at zero delay (TCP through the queue, and through the same router without it), with
# the CPU the delay line used. Then, per cell and run, on a fresh path: a TCP transfer
# (`tcp-bulk`, CUBIC set per socket: a namespace inherits the host's default) and a dcsend
# transfer (release `dcsend FILE` -> `dcsend recv -o DIR`, copy-paste token files), each
# checked byte for byte. dcsend's MB/s is over its sender's transfer clock (channel open to the
# final ack, `--stats`), TCP's over the sender's clock from the connection's establishment to
# the receiver's close after the last byte. RSS is each dcsend side's peak (GNU time, largest
# over the runs). The last column is each run's dcsend CPU (user + system seconds of the sender
# and the receiver) and the machine's CPU pressure during it (PSI: the share of the time some
# task waited for a CPU): where it is near 100%, the peers, the delay line and everything else
# on the machine compete for the cores, and the cell is bound by CPU rather than by the path.
# A cell with a third field has a bottleneck: the router sends each way through a tc tbf
# of that many Mbit/s whose drop-tail queue holds QUEUE_MS (default 40) milliseconds of it, so
# a sender that outruns the link fills the queue and loses a burst of packets at once, as at a
# home router or a busy link (random loss alone never does that).
# Veths have GSO/GRO/TSO off, so loss hits single packets. Needs root and
# Debian's iproute2, iptables, ethtool, iputils-ping, time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${BIN:-$root/target/release/dcsend}")
TOOLS=$(realpath "${TOOLS:-$root/target/release}")
SIZE=${SIZE:-64}
RUNS=${RUNS:-3}
# Cheap cells first, so a run cut short still has them. CELLS="" checks the emulator only.
CELLS=${CELLS-2:0 20:0 60:0 100:0 2:0.5 2:1 20:0.5 20:1 60:0.5 60:1 20:0:400 60:0:100}
QUEUE_MS=${QUEUE_MS:-40}
VERIFY=${VERIFY:-1}
EXTRA=${EXTRA:-}
SEED=${SEED:-1}

for tool in ip iptables ethtool ping /usr/bin/time "$BIN" "$TOOLS/wan-delay" "$TOOLS/tcp-bulk"; do
  command -v "$tool" >/dev/null || {
    echo "needs $tool (cargo build --release; cargo build --release -p wan-emu;" \
      "apt-get install iproute2 iptables ethtool iputils-ping time)" >&2
    exit 1
  }
done

A="wan-$$-a" R="wan-$$-r" B="wan-$$-b"
VA="wan$$a" VRA="wan$$ra" VB="wan$$b" VRB="wan$$rb"
ADDR_A=10.78.1.1 ADDR_B=10.78.2.1
work=$(mktemp -d "${TMPDIR:-/tmp}/dcsend-wan.XXXXXX")
emu_pid=""

teardown() {
  if [ -n "$emu_pid" ]; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    emu_pid=""
  fi
  for ns in "$A" "$R" "$B"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap 'teardown; rm -rf "$work"' EXIT

# setup ONE_WAY_MS LOSS_PERCENT [noqueue]: a fresh path A <-> R <-> B; R forwards through the
# delay line (one queue per direction) unless "noqueue", and through a bottleneck of MBIT Mbit/s
# each way when MBIT is set.
setup() {
  teardown
  local ns dev
  for ns in "$A" "$R" "$B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add "$VA" netns "$A" type veth peer name "$VRA" netns "$R"
  ip link add "$VB" netns "$B" type veth peer name "$VRB" netns "$R"
  ip -n "$A" addr add "$ADDR_A/24" dev "$VA"
  ip -n "$R" addr add 10.78.1.254/24 dev "$VRA"
  ip -n "$B" addr add "$ADDR_B/24" dev "$VB"
  ip -n "$R" addr add 10.78.2.254/24 dev "$VRB"
  for ns in "$A:$VA" "$R:$VRA" "$R:$VRB" "$B:$VB"; do
    dev=${ns#*:} ns=${ns%%:*}
    # No segmentation offloads: every packet the queue sees (and may drop) is one datagram.
    ip netns exec "$ns" ethtool -K "$dev" gso off gro off tso off tx-udp-segmentation off 2>/dev/null ||
      ip netns exec "$ns" ethtool -K "$dev" gso off gro off tso off
    ip -n "$ns" link set "$dev" up
  done
  [ -z "${TCP_WMEM:-}" ] || ip netns exec "$A" sysctl -qw net.ipv4.tcp_wmem="$TCP_WMEM"
  [ -z "${TCP_RMEM:-}" ] || ip netns exec "$B" sysctl -qw net.ipv4.tcp_rmem="$TCP_RMEM"
  ip -n "$A" route add default via 10.78.1.254
  ip -n "$B" route add default via 10.78.2.254
  ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
  if [ -n "${MBIT:-}" ]; then
    # Bytes the queue holds: QUEUE_MS of the rate. The bucket holds 64 KB (a burst at line rate).
    local limit=$((MBIT * 125 * QUEUE_MS))
    for dev in "$VRA" "$VRB"; do
      ip netns exec "$R" tc qdisc add dev "$dev" root tbf rate "${MBIT}mbit" burst 64kb limit "$limit"
    done
  fi
  [ "${3:-}" = noqueue ] && return
  ip netns exec "$R" iptables -t mangle -A FORWARD -i "$VRA" -j NFQUEUE --queue-num 0
  ip netns exec "$R" iptables -t mangle -A FORWARD -i "$VRB" -j NFQUEUE --queue-num 1
  ip netns exec "$R" "$TOOLS/wan-delay" --queue 0 --queue 1 --delay-ms "$1" --loss "$2" \
    --seed "$SEED" >"$work/emu.json" 2>"$work/emu.err" &
  emu_pid=$!
  for _ in $(seq 100); do
    grep -q ready "$work/emu.err" && return
    kill -0 "$emu_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "wan-delay did not start:" >&2; cat "$work/emu.err" >&2; exit 1
}

# stop_emu: stops the delay line and sets EMU to "DROPPED_AT_RANDOM KERNEL_DROPS CPU_S WALL_S
# PACKETS"
# from its summary (kernel drops: its queues or its socket overflowed; must be 0).
stop_emu() {
  local code=0
  kill -TERM "$emu_pid" 2>/dev/null || true
  wait "$emu_pid" || code=$?
  emu_pid=""
  local j sum='{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }'
  j=$(cat "$work/emu.json")
  if [ "$code" != 0 ] || [ -z "$j" ]; then
    echo "wan-delay failed (exit $code), the figures of this run are void:" >&2
    cat "$work/emu.err" >&2
    exit 1
  fi
  EMU="$(grep -o '"dropped":[0-9]*' <<<"$j" | cut -d: -f2 | awk -v RS= "$sum")"
  EMU="$EMU $(grep -oE '"kernel_(queue|socket)_full":[0-9]*' <<<"$j" | cut -d: -f2 | awk -v RS= "$sum")"
  EMU="$EMU $(sed 's/.*"cpu_s":\([0-9.]*\),"wall_s":\([0-9.]*\).*/\1 \2/' <<<"$j")"
  EMU="$EMU $(grep -o '"packets":[0-9]*' <<<"$j" | cut -d: -f2 | awk -v RS= "$sum")"
  local kernel; kernel=$(cut -d' ' -f2 <<<"$EMU")
  [ "$kernel" = 0 ] || echo "warning: the kernel dropped $kernel packets at the delay line (queue or socket full)" >&2
}

# queue_drops: "+N" where N is the packets the bottleneck's queues dropped (both ways) on this
# path; nothing without a bottleneck.
queue_drops() {
  [ -n "${MBIT:-}" ] || return 0
  local dev n=0 d
  for dev in "$VRA" "$VRB"; do
    d=$(ip netns exec "$R" tc -s qdisc show dev "$dev" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -1)
    n=$((n + ${d:-0}))
  done
  echo "+$n"
}

# rtt_of: "min/avg/max" ms of 20 pings A -> B.
rtt_of() {
  ip netns exec "$A" ping -q -c 20 -i 0.05 -W 2 "$ADDR_B" | sed -n 's|.* = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\)/.*|\1/\2/\3|p'
}

# tcp_run FILE: MB/s of one TCP transfer A -> B, byte-checked.
tcp_run() {
  rm -f "$work/tcp.out"
  ip netns exec "$B" "$TOOLS/tcp-bulk" recv --listen "$ADDR_B:5201" -o "$work/tcp.out" \
    >"$work/tcp-recv.json" 2>"$work/tcp-recv.err" &
  local rpid=$!
  ip netns exec "$A" "$TOOLS/tcp-bulk" send --to "$ADDR_B:5201" --cc cubic "$1" >"$work/tcp.json"
  wait "$rpid"
  cmp -s "$1" "$work/tcp.out" || { echo "TCP: OUTPUT DIFFERS" >&2; exit 1; }
  awk -v b="$(stat -c %s "$1")" -v s="$(sed 's/.*"seconds":\([0-9.]*\).*/\1/' "$work/tcp.json")" \
    'BEGIN { printf "%.2f\n", b / s / 1e6 }'
}

# rcvbuf_errors NS: the UDP RcvbufErrors count of namespace NS (datagrams its sockets dropped
# because their receive buffer was full; a fresh namespace starts at 0).
rcvbuf_errors() {
  ip netns exec "$1" awk '/^Udp:/ && !h { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1; next }
    /^Udp:/ { print $c }' /proc/net/snmp
}

# cpu_waited_us: microseconds during which some task of this machine waited for a CPU, so far
# (PSI, /proc/pressure/cpu "some total"; 0 without PSI).
cpu_waited_us() {
  sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0
}

# dcsend_run FILE: "MB/s SEND_RSS_MIB RECV_RSS_MIB RCVBUF_ERRORS_RECV SEND_CPU_S RECV_CPU_S
# CPU_PRESSURE_%" of one dcsend transfer A -> B, or "FAIL 0 0 0 0 0 0" (and both sides' last
# stderr lines on stderr) when either side exits non-zero: a transfer that fails on a bad
# path is a result. Both exiting 0 with different bytes stops the bench. CPU is each
# process's user + system time (GNU time); the pressure is the share of the sender's wall
# time during which some task on the machine waited for a CPU (PSI): near 100%, the cell
# measures the machine's spare CPU as much as dcsend.
dcsend_run() {
  rm -rf "$work/out" "$work"/*.tok "$work/stats.ndjson" && mkdir "$work/out"
  ip netns exec "$B" /usr/bin/time -f "%M %U %S" -o "$work/recv.rss" "$BIN" recv --bind "$ADDR_B:0" \
    --progress never -q --sdp-in "$work/offer.tok" --sdp-out "$work/answer.tok" -o "$work/out/" \
    2>"$work/recv.err" &
  local rpid=$! scode=0 rcode=0 t0 w0 t1 w1
  t0=$(date +%s%N) w0=$(cpu_waited_us)
  # shellcheck disable=SC2086
  ip netns exec "$A" /usr/bin/time -f "%M %U %S" -o "$work/send.rss" "$BIN" "$1" --bind "$ADDR_A:0" \
    --progress never -q $EXTRA --sdp-out "$work/offer.tok" --sdp-in "$work/answer.tok" \
    --stats "$work/stats.ndjson" 2>"$work/send.err" || scode=$?
  t1=$(date +%s%N) w1=$(cpu_waited_us)
  if [ "$scode" != 0 ]; then
    # The receiver may still wait for the sender's token: 30 s, then it is stopped.
    for _ in $(seq 300); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
    pkill -TERM -P "$rpid" 2>/dev/null || true
  fi
  wait "$rpid" || rcode=$?
  if [ "$scode" != 0 ] || [ "$rcode" != 0 ]; then
    echo "dcsend run failed (sender exit $scode, receiver exit $rcode):" >&2
    tail -n 3 "$work/send.err" "$work/recv.err" >&2
    echo "FAIL 0 0 0 0 0 0"
    return
  fi
  cmp -s "$1" "$work/out/$(basename "$1")" || { echo "dcsend: OUTPUT DIFFERS" >&2; exit 1; }
  local secs
  secs=$(grep '"t":"summary"' "$work/stats.ndjson" | sed 's/.*"seconds":\([0-9.e+-]*\).*/\1/')
  awk -v b="$(stat -c %s "$1")" -v s="$secs" -v sr="$(tail -1 "$work/send.rss")" \
    -v rr="$(tail -1 "$work/recv.rss")" -v e="$(rcvbuf_errors "$B")" \
    -v p="$(awk -v w="$((w1 - w0))" -v t="$(((t1 - t0) / 1000))" 'BEGIN { printf "%.0f", t ? 100 * w / t : 0 }')" \
    'BEGIN { split(sr, S, " "); split(rr, R, " ")
      printf "%.2f %.0f %.0f %d %.2f %.2f %d\n", b / s / 1e6, S[1] / 1024, R[1] / 1024, e,
        S[2] + S[3], R[2] + R[3], p }'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print (lo == hi) ? lo : lo "-" hi }'; }

head -c $((SIZE * 1024 * 1024)) /dev/urandom >"$work/payload.bin"
echo "dcsend $("$BIN" --version | awk '{ print $2 }') vs TCP CUBIC, $SIZE MiB, medians of $RUNS;" \
  "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at start"

if [ "$VERIFY" = 1 ]; then
  echo
  echo "Emulator check (ping A -> B, 20 pings, min/avg/max ms; setting = round trip):"
  settings=$(for c in $CELLS; do echo "${c%%:*}"; done | sort -gu)
  for rtt in 0 ${settings:-2 20 60 100}; do
    setup "$(awk -v r="$rtt" 'BEGIN { print r / 2 }')" 0
    echo "  setting $rtt ms: $(rtt_of)"
    stop_emu
  done
  direct="" through="" cpu=""
  for _ in $(seq "$RUNS"); do
    setup 0 0 noqueue
    direct="$direct $(tcp_run "$work/payload.bin")"
    setup 0 0
    through="$through $(tcp_run "$work/payload.bin")"
    stop_emu
    read -r _ _ c _ p <<<"$EMU"
    cpu="$cpu $c" per_packet="$(awk -v c="$c" -v p="$p" 'BEGIN { printf "%.1f", c / p * 1e6 }')"
  done
  echo "Ceiling at zero delay (TCP CUBIC, $SIZE MiB, median of $RUNS):" \
    "$(median <<<"$through") MB/s ($(spread <<<"$through")) through the delay line," \
    "$(median <<<"$direct") MB/s ($(spread <<<"$direct")) through the same router without it;" \
    "the delay line used $(median <<<"$cpu") s of CPU per transfer ($per_packet us per packet in the last)"
fi

[ -n "$CELLS" ] || exit 0
echo
echo "| path (RTT, loss) | TCP CUBIC MB/s | dcsend MB/s | dcsend/TCP | dcsend peak RSS send/recv MiB | packets dropped (per run; +N: by the bottleneck's queue) | dcsend receiver UDP RcvbufErrors (per run) | dcsend CPU s send/recv, CPU pressure (per run) |"
echo "|---|---|---|---|---|---|---|---|"
for cell in $CELLS; do
  IFS=: read -r rtt loss MBIT <<<"$cell"
  tcp="" dc="" srss=0 rrss=0 drops="" rcvbuf="" cpu=""
  for _ in $(seq "$RUNS"); do
    setup "$(awk -v r="$rtt" 'BEGIN { print r / 2 }')" "$loss"
    tcp="$tcp $(tcp_run "$work/payload.bin")"
    stop_emu
    d=${EMU%% *}$(queue_drops)
    setup "$(awk -v r="$rtt" 'BEGIN { print r / 2 }')" "$loss"
    out=$(dcsend_run "$work/payload.bin")
    read -r mbs s r e cs cr pr <<<"$out"
    dc="$dc $mbs" srss=$((s > srss ? s : srss)) rrss=$((r > rrss ? r : rrss)) rcvbuf="$rcvbuf $e"
    cpu="$cpu $cs/$cr,$pr%"
    stop_emu
    drops="$drops $d/${EMU%% *}$(queue_drops)"
  done
  tm=$(median <<<"$tcp") failed=0
  for v in $dc; do if [ "$v" = FAIL ]; then failed=$((failed + 1)); fi; done
  dc=${dc//FAIL/}
  if [ -n "${dc// /}" ]; then
    dm=$(median <<<"$dc") ratio=$(awk -v d="$(median <<<"$dc")" -v t="$tm" 'BEGIN { printf "%.2f", d / t }')
    dm="$dm ($(spread <<<"$dc"))"
  else
    dm="-" ratio="-"
  fi
  [ "$failed" = 0 ] || dm="$dm, $failed of $RUNS failed"
  path="$rtt ms, $loss%"
  [ -z "$MBIT" ] || path="$path, $MBIT Mbit/s (queue $QUEUE_MS ms)"
  printf '| %s | %s (%s) | %s | %s | %s / %s | TCP/dcsend:%s |%s |%s |\n' "$path" \
    "$tm" "$(spread <<<"$tcp")" "$dm" "$ratio" "$srss" "$rrss" "$drops" "$rcvbuf" "$cpu"
done
