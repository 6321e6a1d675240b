#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make bench: benchmarks (not part of make check).  Documentation/benchmarks.md.
#
#  1. I/O: 4 KiB random read/write IOPS of a remap device vs dm-linear (and an
#     A/A control: dm-linear vs dm-linear) over null_blk, interleaved rounds
#     in each of BOOTS QEMU boots, pooled, at 0, 10,000 and 100,000 remaps
#     (pools written by build/mkpool), after checking each pool against the
#     module; then the same rounds in one boot whose clock counts
#     instructions (QEMU -icount), which resolves a ratio to about 0.001,
#     and a known-answer boot on that clock: the module built with
#     test/bench/known-linear.patch (dm-linear's map(), no end_io) must
#     measure 1.000 against dm-linear;
#     and a boot on that clock under a QEMU plugin that runs every memory
#     access through a model of a CPU's caches (test/bench/cachesim.c):
#     what remap adds in cache misses per I/O, and a modelled ratio;
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
# null_blk disks), SMP (2: guest CPUs of the host-clock I/O boots), BOOTS (2: I/O boots
# whose rounds are pooled; SCAN, SPARE_PATH and EXTRA run in the first
# only; 0: none), REPLACE (1: the measured devices are re-created between
# rounds, on other disks), ICOUNT (1: the instruction-clock boot, one
# instruction = 1 ns; 0: none), ICOUNT_ROUNDS (10), ICOUNT_RUNTIME (1 s of
# guest time per job, at least 0.1), KNOWN (1: the known-answer boot, with
# ICOUNT=1), CACHE (1: the cache-model boot; CACHE_ROUNDS 2, CACHE_REMAPS
# "0 100000"), PROFILE (1: one more boot, one vCPU, perf profile;
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
[0-9]|[1-9][0-9]) ;;
*) fail "BOOTS must be a number of boots from 0 to 99, not '${BOOTS}'" ;;
esac
case ${MAIN_GB:-1024} in
[1-9]|[1-9][0-9]|[1-9][0-9][0-9]|[1-9][0-9][0-9][0-9]) ;;
*) fail "MAIN_GB must be a disk size in GiB from 1 to 9999, not '${MAIN_GB}'" ;;
esac
case ${REPLACE:-1} in
0|1) ;;
*) fail "REPLACE must be 0 or 1, not '${REPLACE}'" ;;
esac
case ${ICOUNT:-1} in
0|1) ;;
*) fail "ICOUNT must be 0 or 1, not '${ICOUNT}'" ;;
esac
case ${CACHE:-1} in
0|1) ;;
*) fail "CACHE must be 0 or 1, not '${CACHE}'" ;;
esac
[ "${IO:-1}" != 1 ] || [ "${BOOTS:-2}" != 0 ] || [ "${ICOUNT:-1}" != 0 ] || [ "${CACHE:-1}" != 0 ] ||
	fail "BOOTS=0, ICOUNT=0 and CACHE=0 leave no I/O boot (IO=0 skips the I/O part)"
case ${KNOWN:-1} in
0|1) ;;
*) fail "KNOWN must be 0 or 1, not '${KNOWN}'" ;;
esac
[[ ${CACHE_ROUNDS:-2} =~ ^[1-9][0-9]?$ ]] ||
	fail "CACHE_ROUNDS must be a number of rounds from 1 to 99, not '${CACHE_ROUNDS}'"
[[ ${CACHE_REMAPS:-0 100000} =~ ^[0-9]+( [0-9]+)*$ ]] ||
	fail "CACHE_REMAPS must be remap counts separated by spaces, not '${CACHE_REMAPS}'"
[[ ${ICOUNT_ROUNDS:-10} =~ ^[1-9][0-9]?$ ]] ||
	fail "ICOUNT_ROUNDS must be a number of rounds from 1 to 99, not '${ICOUNT_ROUNDS}'"
# At least 0.1 s: about 9,000 I/Os per job (fio would take less than 1 ms as no limit).
[[ ${ICOUNT_RUNTIME:-1} =~ ^[0-9]*\.?[0-9]+$ ]] &&
	awk -v t="${ICOUNT_RUNTIME:-1}" 'BEGIN { exit !(t >= 0.1 && t <= 3600) }' ||
	fail "ICOUNT_RUNTIME must be a number of seconds from 0.1 to 3600, not '${ICOUNT_RUNTIME}'"

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
rm -rf "$OUT"/vm-[0-9]* "$OUT"/console-[0-9]*.log "$OUT/vm-icount" "$OUT/console-icount.log" \
	"$OUT/vm-known" "$OUT/console-known.log" "$OUT/vm-cachesim" "$OUT/console-cachesim.log" \
	"$OUT/cachesim.json" "$OUT/cachesim.txt" "$OUT/vm-cachesim.txt"
# Results of a part that is skipped must not be summarized from an earlier run.
[ "${INDEX:-1}" = 1 ] || rm -f "$OUT/timing.txt" "$OUT/instr.txt"

# pass_env KNOB...: envs gets an --env for each of them that is set.
pass_env() {
	envs=()
	for v in "$@"; do
		[ -n "${!v+x}" ] && envs+=(--env "$v=${!v}")
	done
}

# guest LABEL DIR CONSOLE RESULT DEST [vm-run options]: one boot running
# io_bench.py with DIR as its output directory; its RESULT file is copied
# to DEST.  A failure is reported and sets rc.
guest() {
	local label=$1 dir=$2 console=$3 result=$4 dest=$5 r
	shift 5
	rm -rf "$dir"
	mkdir -p "$dir"
	test/vm/vm-run --kver "$KVER" --mem 2048 --timeout "${guest_timeout:-${BENCH_TIMEOUT:-2400}}" \
		--out "$dir" --console "$console" --env "MKPOOL=$PWD/build/mkpool" "$@" \
		-- /usr/bin/python3 test/bench/io_bench.py
	r=$?
	[ -s "$dir/$result" ] && cp "$dir/$result" "$dest"
	case $r in
	0) ;;
	124) echo "make bench: $label: the guest crashed or timed out (see $console)" >&2; rc=1 ;;
	*) echo "make bench: $label: failed (exit $r; see $console)" >&2; rc=1 ;;
	esac
}

rc=0
if [ "${IO:-1}" = 1 ] && [ "${BOOTS:-2}" != 0 ]; then
	boots=${BOOTS:-2}
	step "I/O benchmark in $boots QEMU guest boot(s) (about 20 minutes for the first, 12 for each other)"
	cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg.before"
	load=$(cut -d' ' -f1 /proc/loadavg)
	if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
		echo "bench: note: host load average is $load; other work on this machine adds noise (the A/A control shows how much)"
	fi
	for b in $(seq 1 "$boots"); do
		# Boot 1 keeps the historical names; later boots are numbered.
		vm=$OUT/vm console=$OUT/console.log
		[ "$b" = 1 ] || { vm=$OUT/vm-$b; console=$OUT/console-$b.log; }
		pass_env ROUNDS RUNTIME RAMP IODEPTH REMAPS ENGINE EXTRA SCAN SPARE_PATH MAIN_GB REPLACE
		# The one-off phases run in the first boot only; later boots
		# repeat the main rounds, so that what one boot's memory layout
		# happens to favour averages out.
		[ "$b" = 1 ] || envs+=(--env EXTRA= --env SCAN=0 --env SPARE_PATH=0)
		[ "$boots" = 1 ] || echo "bench: boot $b of $boots"
		guest "boot $b" "$vm" "$console" io.json "$OUT/io-$b.json" \
			--smp "${SMP:-2}" ${envs[@]+"${envs[@]}"}
	done
	cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg.after"
fi

# The same rounds in a boot whose clock counts instructions (QEMU -icount,
# 1 ns each): neither the host's load nor where a boot's memory lands moves
# it, so its ratios repeat to about a thousandth.  It weighs every
# instruction alike: it shows a target's extra work per I/O, not the extra
# cache or TLB misses, which the host-clock boots include.
if [ "${IO:-1}" = 1 ] && [ "${ICOUNT:-1}" = 1 ]; then
	step "I/O benchmark on the instruction clock (QEMU -icount shift=0, one vCPU, about 10 minutes)"
	pass_env RAMP IODEPTH REMAPS ENGINE MAIN_GB REPLACE
	guest "icount boot" "$OUT/vm-icount" "$OUT/console-icount.log" io.json "$OUT/io-icount.json" \
		--smp 1 --icount 0 --quiet --env "CLOCK=icount shift=0" \
		--env "ROUNDS=${ICOUNT_ROUNDS:-10}" --env "RUNTIME=${ICOUNT_RUNTIME:-1}" \
		--env EXTRA= --env SCAN=0 --env SPARE_PATH=0 ${envs[@]+"${envs[@]}"}
fi

# The known answer: the module with dm-linear's map() and no end_io (the
# rest as it is: table, pool, per-bio data size) must measure 1.000 against
# dm-linear on the instruction clock, or that clock is not measuring the
# target.  Built from a copy of the sources in build/known.
if [ "${IO:-1}" = 1 ] && [ "${ICOUNT:-1}" = 1 ] && [ "${KNOWN:-1}" = 1 ]; then
	step "known answer on the instruction clock: remap built as dm-linear (about 2 minutes)"
	# In the project, as build/mkpool: the guest sees the project's
	# directory, not the host's /tmp (BUILD may lie anywhere).
	known=$PWD/build/known
	rm -rf "$known"
	mkdir -p "$known"
	cp -r Kbuild common dm-remap dm-remap-mgr "$known/"
	log=$(mktemp)
	if patch -s -d "$known" -p1 --no-backup-if-mismatch <test/bench/known-linear.patch >"$log" 2>&1 &&
	   make -C "/lib/modules/$KVER/build" M="$known" modules >>"$log" 2>&1; then
		guest "known-answer boot" "$OUT/vm-known" "$OUT/console-known.log" io.json \
			"$OUT/io-known.json" --smp 1 --icount 0 --quiet \
			--env "CLOCK=icount shift=0" --env KNOWN=linear --env "KO=$known/dm-remap.ko" \
			--env ROUNDS=2 --env "RUNTIME=${ICOUNT_RUNTIME:-1}" --env REMAPS=0 \
			--env EXTRA= --env SCAN=0 --env SPARE_PATH=0
	else
		cat "$log"
		echo "make bench: the known-answer build failed (test/bench/known-linear.patch no longer applies?)" >&2
		rc=1
	fi
	rm -f "$log"
fi

# The cache model: the same devices, each alone, on the instruction clock
# under test/bench/cachesim.c, which runs every code fetch and data access
# through L1/L2/L3 caches.  What the instruction clock leaves out (the
# misses the target adds, the filter's and the slots' among them) is
# counted there.
if [ "${IO:-1}" = 1 ] && [ "${CACHE:-1}" = 1 ]; then
	step "cache model: every memory access through modelled caches (QEMU plugin, about 10 minutes a round and count)"
	plugin=$PWD/build/bench/cachesim.so
	mkdir -p "$(dirname "$plugin")"
	if gcc -shared -fPIC -O2 -Wall -Wextra -Werror -fvisibility=hidden \
		-o "$plugin" test/bench/cachesim.c; then
		dir=$(mkdir -p "$OUT/vm-cachesim" && cd "$OUT/vm-cachesim" && pwd)
		pass_env IODEPTH ENGINE MAIN_GB REPLACE
		# About 10 minutes a round and count (both directions, two models and
		# the TLBs; 15 allowed); guest() empties its
		# directory: the plugin's file goes beside it.
		ncounts=$(wc -w <<<"${CACHE_REMAPS:-0 100000}")
		guest_timeout=${BENCH_TIMEOUT:-$((900 + ${CACHE_ROUNDS:-2} * ncounts * 900))} \
			guest "cache-model boot" "$dir" "$OUT/console-cachesim.log" cachesim.json \
			"$OUT/cachesim.json" --smp 1 --icount 0 --quiet \
			--plugin "$plugin,out=$dir.txt,skip=$dir/skip.txt" --env "CLOCK=icount shift=0" \
			--env PHASE=cachesim --env "CS_ROUNDS=${CACHE_ROUNDS:-2}" \
			--env "REMAPS=${CACHE_REMAPS:-0 100000}" \
			${envs[@]+"${envs[@]}"}
		[ -s "$dir.txt" ] && mv "$dir.txt" "$OUT/cachesim.txt"
	else
		echo "make bench: the cache-model plugin did not build" >&2
		rc=1
	fi
fi

if [ "${PROFILE:-1}" = 1 ]; then
	step "profile: where an I/O's CPU time goes (perf in a one-vCPU guest, about 8 minutes)"
	pass_env IODEPTH REMAPS ENGINE MAIN_GB PROFILE_ROUNDS PROFILE_RUNTIME
	guest "the profile phase" "$OUT/vm-profile" "$OUT/console-profile.log" profile.json \
		"$OUT/profile.json" --smp 1 --quiet --env PHASE=profile ${envs[@]+"${envs[@]}"}
fi

if [ "${INDEX:-1}" = 1 ]; then
	step "remap index benchmark (user space)"
	test/bench/index-bench.sh || { echo "make bench: index benchmark failed" >&2; rc=1; }
fi

step "summary (also in $OUT/summary.txt; raw rounds in $OUT/bench.json)"
/usr/bin/python3 test/bench/summary.py "$OUT" || rc=1
echo "bench: $(( $(date +%s) - t0 )) s"
[ $rc = 0 ] || fail "see above"
