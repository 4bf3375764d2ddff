#!/usr/bin/env bash
# compare.sh: tcpvsudp beside iperf3 and sockperf on loopback (issue 5).
#
# Usage:
#   scripts/compare.sh [-n RUNS] [-d SECONDS] [-p PORT]  | tee results/reference/compare.txt
#
#   -n RUNS      runs of each tool per figure, alternating tcpvsudp and the peer
#                (env RUNS, default 3); medians are quoted
#   -d SECONDS   length of every run, whole seconds (env DURATION, default 5)
#   -p PORT      first of two fixed server ports: PORT for iperf3 -s, PORT+1 for
#                sockperf sr (env PORT, default 25201)
#   env IPERF3   the iperf3 binary (default: iperf3 on PATH). With an iperf3 that has
#                --gsro (3.21+, UDP GSO and GRO), its UDP runs use it, and the UDP
#                targets are the fair ones: at least 1.0 x that peer.
#   env PIN      the CPU list for the pinned RTT figures (default 0); empty = skip them
#
# What it does: builds tcpvsudp once (go build into a temporary directory), then for
# each figure below runs tcpvsudp and its peer tool alternately RUNS times, each run
# DURATION seconds on 127.0.0.1, and prints every run, then a table of medians, the
# ratio tcpvsudp/peer, the issue-5 target and whether it is met.
#
#   figure                    tcpvsudp (report.json, results[] of the run)       peer
#   tcp-stream-128KiB goodput stream tcp 131072: metrics.goodput_bps             iperf3 -c -l 131072: end.sum_received.bits_per_second
#   udp-stream-1400 goodput   stream udp 1400: metrics.goodput_bps               iperf3 -u -b 0 -l 1400: received x 1400 x 8 / seconds
#   udp-stream-64 msgs/s      stream udp 64: metrics.msgs_per_s                  iperf3 -u -b 0 -l 64: received / seconds
#   pingpong-64 tcp RTT p50   pingpong tcp 64: metrics.rtt_ns.p50                sockperf ping-pong --tcp -m 64: 2 x "percentile 50.000"
#   pingpong-64 udp RTT p50   pingpong udp 64: metrics.rtt_ns.p50                sockperf ping-pong -m 64: 2 x "percentile 50.000"
#   the same two, pinned      every process under taskset -c $PIN (tcpvsudp; sockperf's server and client)
#
# iperf3 UDP: "received" = end.sum_received.packets - end.sum_received.lost_packets
# and "seconds" = end.sum_received.seconds, from the client's -J output; in UDP mode
# those three fields are the server's (receiver's) counts, which the client fetches
# at the end of the test. (packets is the highest sequence number the server saw,
# lost_packets the gaps below it, so packets - lost_packets is what arrived.)
# sockperf prints one-way latency = RTT/2; the script doubles it.
# tcpvsudp runs with --udp-io batched --no-lab --warmup 200ms --out TMPDIR (its UDP
# path with offloads, the one beside iperf3 --gsro); its figures are the
# receiver's (goodput: unique, intact bytes over the receiver's interval).
#
# Needs: go (to build), python3 or jq (to read JSON), awk, timeout (coreutils), and
# the peers iperf3 and sockperf; it installs nothing. If a peer is missing it says
# which Debian/Ubuntu package to install (apt-get install iperf3 sockperf) and skips
# that peer's figures. Root is not needed. Every server is started and killed by the
# script, every run is bounded by timeout, and an EXIT trap kills whatever is left.
# Run it on an otherwise idle machine.

set -u -o pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
PORT=${PORT:-25201}
IPERF3=${IPERF3:-iperf3}
PIN=${PIN-0}

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "n:d:p:h" opt; do
	case $opt in
	n) RUNS=$OPTARG ;;
	d) DURATION=$OPTARG ;;
	p) PORT=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
for v in RUNS DURATION PORT; do
	case ${!v} in '' | *[!0-9]*) echo "compare.sh: $v must be a whole number, got '${!v}'" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 1 ] && [ "$DURATION" -ge 1 ] || { echo "compare.sh: RUNS and DURATION must be >= 1" >&2; exit 2; }
IPERF_PORT=$PORT
SOCKPERF_PORT=$((PORT + 1))
HOST=127.0.0.1

die() { echo "compare.sh: $*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------------
command -v go >/dev/null || die "go is needed to build tcpvsudp"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"
command -v awk >/dev/null || die "awk is needed"
if command -v python3 >/dev/null; then JSON=python3
elif command -v jq >/dev/null; then JSON=jq
else die "python3 or jq is needed to read JSON (apt-get install python3, or jq)"; fi
HAVE_IPERF=1; HAVE_SOCKPERF=1
missing=()
command -v "$IPERF3" >/dev/null || { HAVE_IPERF=0; missing+=(iperf3); }
GSRO=()
[ $HAVE_IPERF = 1 ] && "$IPERF3" --help 2>&1 | grep -q -- '--gsro' && GSRO=(--gsro)
if [ -n "$PIN" ] && ! command -v taskset >/dev/null; then
	echo "compare.sh: taskset (util-linux) is missing: the pinned RTT figures are skipped" >&2
	PIN=""
fi
command -v sockperf >/dev/null || { HAVE_SOCKPERF=0; missing+=(sockperf); }
if [ ${#missing[@]} -gt 0 ]; then
	echo "compare.sh: missing ${missing[*]}; install with: apt-get install ${missing[*]} (Debian/Ubuntu packages of the same names)" >&2
	echo "compare.sh: the figures of the missing tool are skipped" >&2
	[ ${#missing[@]} -eq 2 ] && exit 1
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers -----------------------------------------------------------------------

# jget FILE PATH: the value at a jq-style path of plain keys and indices (.a.b[0].c),
# or the empty string.
jget() {
	if [ "$JSON" = jq ]; then
		jq -r "$2 // empty" "$1" 2>/dev/null
	else
		python3 - "$1" "$2" <<-'EOF' 2>/dev/null
			import json, re, sys
			v = json.load(open(sys.argv[1]))
			for key, idx in re.findall(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]', sys.argv[2]):
			    v = v[key] if key else v[int(idx)]
			print("" if v is None else repr(v) if isinstance(v, float) else v)
		EOF
	fi
}

# tv_metric DIR EXPERIMENT TRANSPORT PATH: a figure of tcpvsudp's DIR/report.json,
# from the first result of that experiment and transport (PATH like .metrics.x).
tv_metric() {
	if [ "$JSON" = jq ]; then
		jq -r --arg e "$2" --arg t "$3" \
			"[.results[] | select(.experiment == \$e and .transport == \$t)][0]$4 // empty" \
			"$1/report.json" 2>/dev/null
	else
		python3 - "$1/report.json" "$2" "$3" "$4" <<-'EOF' 2>/dev/null
			import json, re, sys
			d = json.load(open(sys.argv[1]))
			v = [r for r in d["results"] if r["experiment"] == sys.argv[2] and r["transport"] == sys.argv[3]][0]
			for key, idx in re.findall(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]', sys.argv[4]):
			    v = v[key] if key else v[int(idx)]
			print("" if v is None else repr(v) if isinstance(v, float) else v)
		EOF
	fi
}

# wait_port PROTO PORT: wait up to 5 s until something listens (tcp) or is bound
# (udp) on PORT; without ss, wait a fixed half second.
wait_port() {
	local i flag=-ltn
	[ "$1" = udp ] && flag=-lun
	command -v ss >/dev/null || { sleep 0.5; return 0; }
	for ((i = 0; i < 50; i++)); do
		ss $flag "sport = :$2" 2>/dev/null | grep -q ":$2" && return 0
		sleep 0.1
	done
	return 1
}

# stop PID: end one background server and reap it.
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# human VALUE UNIT: 3.21 Gbit/s, 1.23 M msgs/s, 12.3 us.
human() {
	[ -n "$1" ] || { echo "n/a"; return; }
	case $2 in
	bps) awk -v v="$1" 'BEGIN {printf "%.2f Gbit/s", v/1e9}' ;;
	mps) awk -v v="$1" 'BEGIN {printf "%.0f msgs/s", v}' ;;
	ns) awk -v v="$1" 'BEGIN {printf "%.2f us", v/1e3}' ;;
	esac
}

# --- the runs ----------------------------------------------------------------------
# Each run_* prints one value (the figure, in bits/s, msgs/s or ns) on stdout and a
# detail line on fd 3, or no value when the run failed. They run in this shell (not
# in a command substitution) so that the EXIT trap knows every server they start.

TV=$TMP/tcpvsudp
TVRUN=0
run_tv() { # EXPERIMENT TRANSPORT SIZE METRIC-PATH [pin]
	local out=$TMP/tv$((++TVRUN)) v sent pin=()
	[ "${5:-}" = pin ] && pin=(taskset -c "$PIN")
	if ! timeout $((DURATION + 40)) "${pin[@]}" "$TV" run -e "$1" -t "$2" --sizes "$3" --duration "${DURATION}s" \
		--udp-io batched --no-lab --warmup 200ms --out "$out" >"$out.log" 2>&1; then
		echo "    tcpvsudp run failed (exit $?); last lines:" >&3; tail -3 "$out.log" | sed 's/^/      /' >&3
		return
	fi
	v=$(tv_metric "$out" "$1" "$2" "$4")
	if [ "$1" = stream ]; then
		echo "    tcpvsudp  $2 $3 B: receiver goodput_bps=$(tv_metric "$out" "$1" "$2" .metrics.goodput_bps)" \
			"msgs_per_s=$(tv_metric "$out" "$1" "$2" .metrics.msgs_per_s)" \
			"lost_msgs=$(tv_metric "$out" "$1" "$2" .metrics.lost_msgs)/sent_msgs=$(tv_metric "$out" "$1" "$2" .metrics.sent_msgs)" \
			"(sender: send_msgs_per_s=$(tv_metric "$out" "$1" "$2" .metrics.send_msgs_per_s))" >&3
	else
		echo "    tcpvsudp  $2 $3 B: rtt_ns.p50=$(tv_metric "$out" "$1" "$2" .metrics.rtt_ns.p50)" \
			"samples=$(tv_metric "$out" "$1" "$2" .metrics.rtt_ns.samples)" >&3
	fi
	echo "$v"
}

IPRUN=0
run_iperf() { # tcp|udp SIZE goodput|msgs
	local out=$TMP/ip$((++IPRUN)) srv pk lost secs rcv v
	timeout $((DURATION + 30)) "$IPERF3" -s -1 -B $HOST -p "$IPERF_PORT" >"$out.srv" 2>&1 &
	srv=$!; PIDS+=("$srv")
	if ! wait_port tcp "$IPERF_PORT"; then
		echo "    iperf3 server did not start on port $IPERF_PORT: $(tail -1 "$out.srv")" >&3; stop "$srv"; return
	fi
	local udp=()
	[ "$1" = udp ] && udp=(-u -b 0 "${GSRO[@]}")
	timeout $((DURATION + 20)) "$IPERF3" -c $HOST -p "$IPERF_PORT" "${udp[@]}" -l "$2" -t "$DURATION" -J >"$out.json" 2>"$out.err"
	stop "$srv"
	if [ -n "$(jget "$out.json" .error)" ] || [ -z "$(jget "$out.json" .end.sum_received.seconds)" ]; then
		echo "    iperf3 failed: $(jget "$out.json" .error) $(tail -1 "$out.err")" >&3; return
	fi
	if [ "$1" = tcp ]; then
		v=$(jget "$out.json" .end.sum_received.bits_per_second)
		echo "    iperf3    tcp $2 B: end.sum_received.bits_per_second=$v" \
			"(sender: end.sum_sent.bits_per_second=$(jget "$out.json" .end.sum_sent.bits_per_second)," \
			"retransmits=$(jget "$out.json" .end.sum_sent.retransmits))" >&3
		echo "$v"; return
	fi
	pk=$(jget "$out.json" .end.sum_received.packets)
	lost=$(jget "$out.json" .end.sum_received.lost_packets)
	secs=$(jget "$out.json" .end.sum_received.seconds)
	rcv=$((pk - lost))
	if [ "$3" = goodput ]; then v=$(awk -v r=$rcv -v s="$2" -v t="$secs" 'BEGIN {printf "%.1f", r*s*8/t}')
	else v=$(awk -v r=$rcv -v t="$secs" 'BEGIN {printf "%.1f", r/t}'); fi
	echo "    iperf3    udp $2 B: end.sum_received packets=$pk lost_packets=$lost seconds=$secs" \
		"-> received=$rcv, goodput_bps=$(awk -v r=$rcv -v s="$2" -v t="$secs" 'BEGIN {printf "%.1f", r*s*8/t}')" \
		"msgs_per_s=$(awk -v r=$rcv -v t="$secs" 'BEGIN {printf "%.1f", r/t}')" \
		"(bits_per_second=$(jget "$out.json" .end.sum_received.bits_per_second);" \
		"sender: $(awk -v p="$(jget "$out.json" .end.sum_sent.packets)" -v t="$(jget "$out.json" .end.sum_sent.seconds)" 'BEGIN {printf "%.1f", p/t}') datagrams/s)" >&3
	echo "$v"
}

SPRUN=0
run_sockperf() { # tcp|udp SIZE [pin]
	local out=$TMP/sp$((++SPRUN)) srv one v tcp=() pin=()
	[ "$1" = tcp ] && tcp=(--tcp)
	[ "${3:-}" = pin ] && pin=(taskset -c "$PIN")
	timeout $((DURATION + 30)) "${pin[@]}" sockperf sr "${tcp[@]}" -i $HOST -p "$SOCKPERF_PORT" >"$out.srv" 2>&1 &
	srv=$!; PIDS+=("$srv")
	if ! wait_port "$1" "$SOCKPERF_PORT"; then
		echo "    sockperf server did not start on port $SOCKPERF_PORT: $(tail -1 "$out.srv")" >&3; stop "$srv"; return
	fi
	timeout $((DURATION + 20)) "${pin[@]}" sockperf ping-pong "${tcp[@]}" -i $HOST -p "$SOCKPERF_PORT" -m "$2" -t "$DURATION" >"$out.txt" 2>&1
	stop "$srv"
	one=$(sed 's/\x1b\[[0-9;]*m//g' "$out.txt" | awk '/percentile 50.000 =/ {print $NF}' | tail -1)
	if [ -z "$one" ]; then
		echo "    sockperf failed: $(tail -2 "$out.txt" | tr '\n' ' ')" >&3; return
	fi
	v=$(awk -v u="$one" 'BEGIN {printf "%.0f", u*2000}')
	echo "    sockperf  $1 $2 B: percentile 50.000 = $one us (one-way = RTT/2) -> RTT $v ns;" \
		"$(sed 's/\x1b\[[0-9;]*m//g' "$out.txt" | grep -o 'Valid Duration\] .*' | sed 's/\]/:/' | tail -1)" >&3
	echo "$v"
}

# --- main --------------------------------------------------------------------------

echo "compare.sh: building tcpvsudp" >&2
(cd "$REPO" && go build -o "$TV" ./cmd/tcpvsudp) || die "go build failed"

ver() { "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | head -1; }
echo "# tcpvsudp beside iperf3 and sockperf (scripts/compare.sh)"
echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host:      $(uname -n), kernel $(uname -r), $(uname -m), $(getconf _NPROCESSORS_ONLN) CPUs"
echo "cpu:       $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)"
echo "tcp cc:    $(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null); rmem_default $(cat /proc/sys/net/core/rmem_default 2>/dev/null)"
echo "tcpvsudp:  $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && git diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes)'), $(go version | awk '{print $3}')"
[ $HAVE_IPERF = 1 ] && echo "iperf3:    $(ver "$IPERF3" --version) ($(command -v "$IPERF3"))$([ ${#GSRO[@]} -gt 0 ] && echo ', UDP with --gsro (GSO and GRO)')"
[ $HAVE_SOCKPERF = 1 ] && echo "sockperf:  $(ver sockperf --version | sed 's/^sockperf, //')"
echo "runs:      $RUNS per tool per figure, alternating, $DURATION s each, on $HOST; medians quoted"
echo "tcpvsudp:  run -e E -t T --sizes S --duration ${DURATION}s --udp-io batched --no-lab --warmup 200ms --out DIR"
echo "iperf3:    -s -1 -B $HOST -p $IPERF_PORT;  -c $HOST -p $IPERF_PORT [-u -b 0${GSRO:+ ${GSRO[*]}}] -l S -t $DURATION -J"
[ -n "$PIN" ] && echo "pinned:    the pinned RTT figures run tcpvsudp, sockperf sr and sockperf ping-pong under taskset -c $PIN"
echo "sockperf:  sr [--tcp] -i $HOST -p $SOCKPERF_PORT;  ping-pong [--tcp] -i $HOST -p $SOCKPERF_PORT -m 64 -t $DURATION"
echo

# figure definitions: name|unit|tcpvsudp args|peer|peer args|target op|target
FIGS=()
# UDP targets: against iperf3 with --gsro (GSO and GRO on both ends), at least as fast
# (issue 14); against an iperf3 that sends one datagram per call, twice (issue 5).
UDPT=2.0
[ ${#GSRO[@]} -gt 0 ] && UDPT=1.0
[ $HAVE_IPERF = 1 ] && FIGS+=(
	"TCP 1 stream, 131072 B: receiver goodput|bps|stream tcp 131072 .metrics.goodput_bps|iperf3|tcp 131072 goodput|ge|1.0"
	"UDP 1400 B unpaced: receiver goodput|bps|stream udp 1400 .metrics.goodput_bps|iperf3|udp 1400 goodput|ge|$UDPT"
	"UDP 64 B unpaced: msgs received/s|mps|stream udp 64 .metrics.msgs_per_s|iperf3|udp 64 msgs|ge|$UDPT"
)
[ $HAVE_SOCKPERF = 1 ] && FIGS+=(
	"pingpong 64 B TCP: RTT p50|ns|pingpong tcp 64 .metrics.rtt_ns.p50|sockperf|tcp 64|le|1.10"
	"pingpong 64 B UDP: RTT p50|ns|pingpong udp 64 .metrics.rtt_ns.p50|sockperf|udp 64|le|1.10"
)
[ $HAVE_SOCKPERF = 1 ] && [ -n "$PIN" ] && FIGS+=(
	"pingpong 64 B TCP, pinned: RTT p50|ns|pingpong tcp 64 .metrics.rtt_ns.p50 pin|sockperf|tcp 64 pin|le|1.10"
	"pingpong 64 B UDP, pinned: RTT p50|ns|pingpong udp 64 .metrics.rtt_ns.p50 pin|sockperf|udp 64 pin|le|1.10"
)

echo "## Every run (tcpvsudp and the peer alternately)"
SUMMARY=()
for fig in "${FIGS[@]}"; do
	IFS='|' read -r name unit tvargs peer peerargs op target <<<"$fig"
	echo
	echo "### $name (tcpvsudp vs $peer)"
	tvs=""; peers=""
	for ((r = 1; r <= RUNS; r++)); do
		echo "  run $r/$RUNS"
		# shellcheck disable=SC2086
		run_tv $tvargs 3>&1 >"$TMP/val"
		tvs="$tvs $(cat "$TMP/val")"
		# shellcheck disable=SC2086
		if [ "$peer" = iperf3 ]; then run_iperf $peerargs 3>&1 >"$TMP/val"
		else run_sockperf $peerargs 3>&1 >"$TMP/val"; fi
		peers="$peers $(cat "$TMP/val")"
	done
	mt=$(echo "$tvs" | median); mp=$(echo "$peers" | median)
	ratio=""; met="n/a"
	if [ -n "$mt" ] && [ -n "$mp" ]; then
		ratio=$(awk -v a="$mt" -v b="$mp" 'BEGIN {printf "%.2f", a/b}')
		met=$(awk -v r="$ratio" -v t="$target" -v op="$op" 'BEGIN {ok = (op == "ge") ? (r >= t) : (r <= t); print ok ? "met" : "NOT met"}')
	fi
	[ "$op" = ge ] && tgt=">= $target x" || tgt="<= $target x"
	SUMMARY+=("$name|$(human "$mt" "$unit")|$peer|$(human "$mp" "$unit")|${ratio:-n/a}|$tgt|$met")
	echo "  medians: tcpvsudp $(human "$mt" "$unit"), $peer $(human "$mp" "$unit"), ratio ${ratio:-n/a}"
done

echo
echo "## Medians (ratio = tcpvsudp / peer; RTT: sockperf's one-way figure doubled)"
echo
printf '| %-40s | %-16s | %-8s | %-16s | %-5s | %-9s | %-7s |\n' figure "tcpvsudp median" peer "peer median" ratio target result
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "$(printf -- '-%.0s' {1..18})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..18})" "$(printf -- '-%.0s' {1..7})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..9})"
for row in "${SUMMARY[@]}"; do
	IFS='|' read -r name a peer b ratio tgt met <<<"$row"
	printf '| %-40s | %16s | %-8s | %16s | %5s | %-9s | %-7s |\n' "$name" "$a" "$peer" "$b" "$ratio" "$tgt" "$met"
done
