#!/usr/bin/env bash
# benchstat.sh: batching and GSO against the textbook baseline, by benchstat (issue 5).
#
# Usage:
#   scripts/benchstat.sh [-n COUNT] [-t BENCHTIME] [-o FILE] [-r RAWFILE]
#
#   -n COUNT      runs of every benchmark, go test -count (env COUNT, default 6: the
#                 fewest for which benchstat prints a 95% confidence interval)
#   -t BENCHTIME  go test -benchtime of each run (env BENCHTIME, default 1s)
#   -o FILE       where the tables are written besides stdout
#                 (env OUT, default results/reference/benchstat.txt)
#   -r RAWFILE    also keep the raw go test output there, benchstat-readable
#                 (env RAW, default: not kept)
#
# What it runs: go test -run '^$' -bench SendRecv -count COUNT for ./udp, then ./tcp.
# Sub-benchmarks are named by key=value parts, which benchstat's -col and -row split:
#   udp  BenchmarkSendRecv/size=64|1400/batch=1|8|64/gso=off|on
#        BenchmarkSendRecvGRO/size=64|1400/batch=64/gro=off|on   (GSO on)
#   tcp  BenchmarkSendRecv/size=64|1024|8192/batch=1|8|64
# batch is messages per system call (udp: Options.Batch, both ends) or per Send/Recv
# call (tcp); batch=1, gso=off is the textbook one call per message. One op is a burst
# of 64 messages in every cell, so sec/op compares across columns. msgs/s and B/s count
# what the receiver got; drops/op (udp) is the kernel's receive-buffer drop count.
#
# The tables: udp every mode against batch=1/gso=off (msgs/s); udp by batch size;
# udp GSO on against off; udp GRO on against off; tcp by batch size. In each, the
# first column is the base the others are compared with ("~": no significant
# difference, p >= 0.05). The first line says when, where and with what they were made.
#
# Needs go; installs benchstat with go install golang.org/x/perf/cmd/benchstat@latest
# when it is neither on PATH nor in go env GOBIN / GOPATH/bin. About 3 minutes at the
# defaults. Run it on an otherwise idle machine: it measures loopback on this host.

set -u -o pipefail

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
OUT=${OUT:-}
RAW=${RAW:-}

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "n:t:o:r:h" opt; do
	case $opt in
	n) COUNT=$OPTARG ;;
	t) BENCHTIME=$OPTARG ;;
	o) OUT=$OPTARG ;;
	r) RAW=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { echo "benchstat.sh: unexpected arguments: $*" >&2; usage >&2; exit 2; }
case $COUNT in '' | *[!0-9]* | 0) echo "benchstat.sh: COUNT (-n) must be a whole number >= 1, got '$COUNT'" >&2; exit 2 ;; esac
case $BENCHTIME in *[!0-9a-z.]* | '') echo "benchstat.sh: BENCHTIME (-t) must be a go test -benchtime like 1s or 500x, got '$BENCHTIME'" >&2; exit 2 ;; esac
[ "$COUNT" -ge 6 ] || echo "benchstat.sh: note: COUNT $COUNT < 6: benchstat prints no confidence intervals" >&2

die() { echo "benchstat.sh: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/results/reference/benchstat.txt}
command -v go >/dev/null || die "go is needed (PATH=$PATH)"

# --- benchstat ---------------------------------------------------------------------
BENCHSTAT=$(command -v benchstat)
if [ -z "$BENCHSTAT" ]; then
	for d in "$(go env GOBIN)" "$(go env GOPATH | cut -d: -f1)/bin"; do
		if [ -n "$d" ] && [ -x "$d/benchstat" ]; then BENCHSTAT=$d/benchstat; break; fi
	done
fi
if [ -z "$BENCHSTAT" ]; then
	echo "benchstat.sh: installing benchstat: go install golang.org/x/perf/cmd/benchstat@latest" >&2
	(cd "${TMPDIR:-/tmp}" && go install golang.org/x/perf/cmd/benchstat@latest) || die "go install benchstat failed"
	for d in "$(go env GOBIN)" "$(go env GOPATH | cut -d: -f1)/bin"; do
		if [ -n "$d" ] && [ -x "$d/benchstat" ]; then BENCHSTAT=$d/benchstat; break; fi
	done
	[ -n "$BENCHSTAT" ] || die "benchstat installed, but not found in go env GOBIN or GOPATH/bin"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/benchstat.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the runs ----------------------------------------------------------------------
for pkg in udp tcp; do
	echo "benchstat.sh: go test -run '^\$' -bench SendRecv -count $COUNT -benchtime $BENCHTIME ./$pkg" >&2
	if ! (cd "$REPO" && go test -run '^$' -bench SendRecv -count "$COUNT" -benchtime "$BENCHTIME" "./$pkg") >"$TMP/$pkg.txt" 2>&1; then
		tail -20 "$TMP/$pkg.txt" >&2
		die "go test ./$pkg failed"
	fi
	grep -q '^BenchmarkSendRecv' "$TMP/$pkg.txt" || die "go test ./$pkg ran no SendRecv benchmark"
	if grep -q -- '--- SKIP' "$TMP/$pkg.txt"; then
		echo "benchstat.sh: some ./$pkg cells were skipped:" >&2
		grep -A1 -- '--- SKIP' "$TMP/$pkg.txt" | grep -v -- '^--$' | sort -u >&2
	fi
done
if [ -n "$RAW" ]; then
	cat "$TMP/udp.txt" "$TMP/tcp.txt" >"$RAW" || die "cannot write $RAW"
fi

# --- the tables --------------------------------------------------------------------
# shquote ARGS...: the arguments as a shell would need them typed, space-separated.
shquote() {
	local a out=()
	for a in "$@"; do
		case $a in
		*[!A-Za-z0-9_./:=-]*) out+=("'${a//\'/\'\\\'\'}'") ;;
		*) out+=("$a") ;;
		esac
	done
	echo "${out[*]}"
}

# table TITLE FILE BENCHSTAT-ARGS...: a heading, then benchstat's tables.
table() {
	local title=$1 file=$2
	shift 2
	echo
	echo "## $title"
	echo "\$ benchstat $(shquote "$@")"
	echo
	"$BENCHSTAT" "$@" "$file" || echo "(benchstat failed)"
}

commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)
(cd "$REPO" && git diff --quiet HEAD -- udp tcp 2>/dev/null) || commit="$commit + uncommitted changes in udp/ or tcp/"
{
	echo "# benchstat.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC'), kernel $(uname -r), $(getconf _NPROCESSORS_ONLN) CPUs, $(go version | awk '{print $3}'); go test -count $COUNT -benchtime $BENCHTIME; tcpvsudp ${commit:-unknown}"
	echo "# cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null); op = a burst of 64 messages; msgs/s and B/s = received"
	table "UDP: every mode against the textbook baseline batch=1, gso=off (datagrams received/s)" "$TMP/udp.txt" \
		-filter '.name:SendRecv .unit:msgs/s' -col '/batch@(1 8 64),/gso@(off on)'
	table "UDP: batch size (messages per sendmmsg/recvmmsg) against batch=1" "$TMP/udp.txt" \
		-filter '.name:SendRecv' -col '/batch@(1 8 64)'
	table "UDP: GSO on against off (gso=on needs batch > 1 to coalesce anything)" "$TMP/udp.txt" \
		-filter '.name:SendRecv' -col '/gso@(off on)'
	table "UDP: GRO on the receiver against off, batch=64 with GSO" "$TMP/udp.txt" \
		-filter '.name:SendRecvGRO' -col '/gro@(off on)'
	table "TCP: batch size (messages per Send and per Recv call) against batch=1" "$TMP/tcp.txt" \
		-col '/batch@(1 8 64)'
} >"$TMP/tables.txt"

mkdir -p "$(dirname "$OUT")" || die "cannot create $(dirname "$OUT")"
cp "$TMP/tables.txt" "$OUT" || die "cannot write $OUT"
cat "$TMP/tables.txt"
echo "benchstat.sh: wrote $OUT${RAW:+ and $RAW}" >&2
