#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR MIT
#
# Remap index benchmark: lookups per second, bytes per entry, and
# instructions per lookup (callgrind) for 1k, 100k and 1M remaps.
#
#   test/bench/index-bench.sh            everything
#   CALLGRIND=0 test/bench/index-bench.sh   timing only
#   N=200000 SIZES="1000 1000000" ...       callgrind operations, sizes
#
# Instructions per lookup = (Ir of N operations - Ir of 0 operations) / N,
# both runs with the same deterministic set-up; it includes the ~5
# instructions of the benchmark loop.  Timing numbers depend on the
# machine; instruction counts do not (much).
set -eu
cd "$(dirname "$0")/../.."

OUT=${BUILD:-build}/bench
N=${N:-200000}
SIZES=${SIZES:-"1000 100000 1000000"}
CALLGRIND=${CALLGRIND:-1}
KINDS="hit far near bio32 raw"
mkdir -p "$OUT"

${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Icommon \
	test/bench/index_bench.c common/rm_index.c -o "$OUT/index_bench"

# shellcheck disable=SC2086
"$OUT/index_bench" $SIZES > "$OUT/timing.txt"

if [ "$CALLGRIND" = 1 ] && ! command -v valgrind >/dev/null; then
	echo "valgrind not installed: instruction counts skipped" >&2
	CALLGRIND=0
fi

# ir SIZE KIND NOPS -> total instructions of one run
ir() {
	f="$OUT/callgrind.$1.$2.$3"
	valgrind --tool=callgrind --callgrind-out-file="$f" \
		"$OUT/index_bench" --callgrind "$3" --size "$1" --kind "$2" \
		>/dev/null 2>&1
	awk '/^totals:/ { print $2 }' "$f"
}

: > "$OUT/instr.txt"
if [ "$CALLGRIND" = 1 ]; then
	for s in $SIZES; do
		# baseline, then all kinds in parallel
		base=$(ir "$s" hit 0)
		for k in $KINDS; do
			echo "$k $(ir "$s" "$k" "$N")" &
		done > "$OUT/instr.$s.raw"
		wait
		for k in $KINDS; do
			awk -v k="$k" -v b="$base" -v n="$N" -v s="$s" \
				'$1 == k { printf "%s %s %.1f\n", s, k, ($2 - b) / n }' \
				"$OUT/instr.$s.raw"
		done >> "$OUT/instr.txt"
	done
fi

# Table: one row per size, then the flatness verdict.
awk -v ig="$OUT/instr.txt" '
function m(x) { return sprintf("%.1fM", x / 1e6) }
BEGIN {
	while ((getline l < ig) > 0) { split(l, f, " "); I[f[1], f[2]] = f[3] }
	printf "%-8s %-8s %-5s %-7s %-5s %-6s %-8s %-8s %-8s %-8s %-8s | %s\n",
		"entries", "cap", "load", "B/entry", "probe", "rgn%",
		"hit/s", "far/s", "near/s", "bio32/s", "raw/s",
		"instr/op: hit far near bio32 raw"
}
/^#/ { next }
{
	s = $1; sizes[++ns] = s
	printf "%-8s %-8s %-5.3f %-7.2f %-5.2f %-6s %-8s %-8s %-8s %-8s %-8s | %s %s %s %s %s\n",
		s, $2, $3, $4, $5, $6, m($7), m($8), m($9), m($10), m($11),
		I[s, "hit"], I[s, "far"], I[s, "near"], I[s, "bio32"], I[s, "raw"]
}
END {
	lo = sizes[1]; hi = sizes[ns]
	if (ns < 2 || I[lo, "hit"] == "") exit
	printf "\nlookup cost at %s vs %s entries (instructions):", hi, lo
	ok = 1
	split("hit near raw", ks, " ")
	for (i = 1; i <= 3; i++) {
		r = I[hi, ks[i]] / I[lo, ks[i]]
		printf " %s x%.2f", ks[i], r
		if (r > 1.5) ok = 0
	}
	printf " -> %s (limit x1.5)\n", ok ? "within" : "NOT within"
	printf "far/bio32 are not part of the verdict: they measure the region filter (see the regions_set column), not the lookup\n"
}' "$OUT/timing.txt"
