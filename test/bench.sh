#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make bench: benchmarks (not part of make check).  Documentation/benchmarks.md.
#
#  1. I/O: 4 KiB random read/write IOPS of a remap device vs dm-linear (and an
#     A/A control: dm-linear vs dm-linear) over null_blk, interleaved rounds
#     in each of BOOTS QEMU boots, pooled, at 0, 10,000 and 100,000 remaps
#     (pools written by build/mkpool), after checking each pool against the
#     module;
#  2. the remap index in user space (test/bench/index-bench.sh), after 3;
#  3. a perf profile of dm-linear and remap runs in a one-vCPU guest: the
#     share of the CPU time spent in dm_remap's functions;
#  4. one summary table: build/bench/summary.txt, build/bench/bench.json.
#
# Environment: KVER, ROUNDS (10 per boot), RUNTIME (3), RAMP (0.25),
# IODEPTH (32), REMAPS ("0 10000 100000"), ENGINE ("io_uring libaio": the
# first that works), EXTRA ("libaio:0": other engines and the counts they
# also run at; "" for none), BENCH_TIMEOUT (2400 s per boot), BENCH_STRICT
# (1: a missed target fails), SCAN (1: the scanner on/off phase),
# SPARE_PATH (1 on disks under 64 GiB, else 0), MAIN_GB (1024: size of the
# null_blk disks), SMP (2: guest CPUs of the I/O boots), BOOTS (2: I/O boots
# whose rounds are pooled; SCAN, SPARE_PATH and EXTRA run in the first
# only), REPLACE (1: the measured devices are re-created between rounds, on
# other disks), PROFILE (1: one more boot, one vCPU, perf profile;
# PROFILE_ROUNDS 3, PROFILE_RUNTIME 5 s), IO=0 / INDEX=0 skip a part, BUILD
# (build: where results go when this script is run directly; `make bench`
# always uses build).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
OUT=$BUILD/bench
step() { printf '\n==> %s\n' "$*"; }
fail() { echo "make bench: FAILED: $*" >&2; exit 1; }
t0=$(date +%s)

# Knobs checked before anything is built or booted.
case ${BOOTS:-2} in
[1-9]|[1-9][0-9]) ;;
*) fail "BOOTS must be a number of boots from 1 to 99, not '${BOOTS}'" ;;
esac
case ${MAIN_GB:-1024} in
[1-9]|[1-9][0-9]|[1-9][0-9][0-9]|[1-9][0-9][0-9][0-9]) ;;
*) fail "MAIN_GB must be a disk size in GiB from 1 to 9999, not '${MAIN_GB}'" ;;
esac
case ${REPLACE:-1} in
0|1) ;;
*) fail "REPLACE must be 0 or 1, not '${REPLACE}'" ;;
esac

step "dependencies"
test/deps.sh build vm bench || fail "missing packages"
KVER=${KVER:-$(test/vm/kver.sh)}
[ -n "$KVER" ] || fail "no installed kernel with headers"
export KVER BUILD

step "build (kernel $KVER)"
log=$(mktemp)
# build/mkpool: the pool generator, on the real format code of common/.
make -s KVER="$KVER" module unit build/mkpool >"$log" 2>&1 ||
	{ cat "$log"; rm -f "$log"; fail "build"; }
rm -f "$log"
mkdir -p "$OUT"
rm -f "$OUT"/io*.json "$OUT/profile.json" "$OUT/summary.txt" "$OUT/bench.json" "$OUT"/loadavg.*
rm -rf "$OUT"/vm-[0-9]* "$OUT"/console-[0-9]*.log
# Results of a part that is skipped must not be summarized from an earlier run.
[ "${INDEX:-1}" = 1 ] || rm -f "$OUT/timing.txt" "$OUT/instr.txt"

rc=0
if [ "${IO:-1}" = 1 ]; then
	boots=${BOOTS:-2}
	step "I/O benchmark in $boots QEMU guest boot(s) (about 25 minutes for the first, 12 for each other)"
	cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg.before"
	load=$(cut -d' ' -f1 /proc/loadavg)
	if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
		echo "bench: note: host load average is $load; other work on this machine adds noise (the A/A control shows how much)"
	fi
	for b in $(seq 1 "$boots"); do
		# Boot 1 keeps the historical names; later boots are numbered.
		vm=$OUT/vm console=$OUT/console.log
		[ "$b" = 1 ] || { vm=$OUT/vm-$b; console=$OUT/console-$b.log; }
		rm -rf "$vm"
		mkdir -p "$vm"
		envs=()
		for v in ROUNDS RUNTIME RAMP IODEPTH REMAPS ENGINE EXTRA SCAN SPARE_PATH MAIN_GB REPLACE; do
			[ -n "${!v+x}" ] && envs+=(--env "$v=${!v}")
		done
		# The one-off phases run in the first boot only; later boots
		# repeat the main rounds, so that what one boot's memory layout
		# happens to favour averages out.
		[ "$b" = 1 ] || envs+=(--env EXTRA= --env SCAN=0 --env SPARE_PATH=0)
		[ "$boots" = 1 ] || echo "bench: boot $b of $boots"
		test/vm/vm-run --kver "$KVER" --mem 2048 --smp "${SMP:-2}" --timeout "${BENCH_TIMEOUT:-2400}" \
			--out "$vm" --console "$console" \
			--env "MKPOOL=$PWD/build/mkpool" ${envs[@]+"${envs[@]}"} \
			-- /usr/bin/python3 test/bench/io_bench.py
		r=$?
		[ -s "$vm/io.json" ] && cp "$vm/io.json" "$OUT/io-$b.json"
		case $r in
		0) ;;
		124) echo "make bench: boot $b: the guest crashed or timed out (see $console)" >&2; rc=1 ;;
		*) echo "make bench: boot $b: the I/O benchmark failed (exit $r)" >&2; rc=1 ;;
		esac
	done
	cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg.after"
fi

if [ "${PROFILE:-1}" = 1 ]; then
	step "profile: where an I/O's CPU time goes (perf in a one-vCPU guest, about 8 minutes)"
	rm -rf "$OUT/vm-profile"
	mkdir -p "$OUT/vm-profile"
	envs=()
	for v in IODEPTH REMAPS ENGINE MAIN_GB PROFILE_ROUNDS PROFILE_RUNTIME; do
		[ -n "${!v+x}" ] && envs+=(--env "$v=${!v}")
	done
	test/vm/vm-run --kver "$KVER" --mem 2048 --smp 1 --timeout "${BENCH_TIMEOUT:-2400}" \
		--out "$OUT/vm-profile" --console "$OUT/console-profile.log" --quiet \
		--env "MKPOOL=$PWD/build/mkpool" --env PHASE=profile ${envs[@]+"${envs[@]}"} \
		-- /usr/bin/python3 test/bench/io_bench.py ||
		{ echo "make bench: the profile phase failed (see $OUT/console-profile.log)" >&2; rc=1; }
	[ -s "$OUT/vm-profile/profile.json" ] && cp "$OUT/vm-profile/profile.json" "$OUT/profile.json"
fi

if [ "${INDEX:-1}" = 1 ]; then
	step "remap index benchmark (user space)"
	test/bench/index-bench.sh || { echo "make bench: index benchmark failed" >&2; rc=1; }
fi

step "summary (also in $OUT/summary.txt; raw rounds in $OUT/bench.json)"
/usr/bin/python3 test/bench/summary.py "$OUT" || rc=1
echo "bench: $(( $(date +%s) - t0 )) s"
[ $rc = 0 ] || fail "see above"
