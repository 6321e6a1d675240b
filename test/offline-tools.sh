#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The offline metadata tools on pool images (no kernel needed): exit codes,
# report lines, JSON, refusals, and a repaired pool that checks clean and
# holds the source's remaps and data.  Pools are written by
# test/bench/mkpool (make build/mkpool), damaged with dd.  Needs `make userland`.
set -u
cd "$(dirname "$0")/.."
B=${TOOLS_DIR:-$PWD/build}	# TOOLS_DIR: e.g. a sanitizer build
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

make -s build/mkpool || exit 1
MKPOOL=$PWD/build/mkpool
for t in remap_check remap_dump remap_repair; do
	[ -x "$B/$t" ] || { echo "offline-tools: $B/$t missing (make userland)" >&2; exit 1; }
done

pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# check DESCRIPTION CMD...: pass or fail on CMD's status.
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }

# run WANT_RC CMD...: stdout in $T/out, stderr in $T/err.
run() {
	local want=$1 rc
	shift
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$(basename "$1") ${*:2}: exit $rc, expected $want"
		sed 's/^/    /' "$T/out" "$T/err" | head -20
		return 1
	fi
}

# has FILE REGEX: FILE has a line matching REGEX (grep -E).
has() { grep -qE -- "$2" "$1" || { fail "no line /$2/ in $(basename "$1")"; sed 's/^/    /' "$1" | head -20; return 1; }; }
lines() { wc -l <"$1"; }
flip() { # flip(image, md block): one byte of a metadata block
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2]) * 4096 + 100
f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"
}
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$2"; }

# A pool of 64 MiB with 300 remaps of dev 1 and random data in its data area.
"$MKPOOL" -S $((64 << 20)) -l "$T/list" "$T/pool" 1048576 300 >/dev/null || exit 1
"$B/remap_dump" "$T/pool" >"$T/d.json"
start=$(json 'd["superblock"]["data_start"]' "$T/d.json")
nl=$(json 'd["superblock"]["nr_logical"]' "$T/d.json")
dd if=/dev/urandom of="$T/pool" bs=512 seek="$start" count=$((300 * 8)) conv=notrunc status=none
cp "$T/pool" "$T/orig"

# --- clean ----------------------------------------------------------------
run 0 "$B/remap_check" "$T/pool" &&
	has "$T/out" "^$T/pool: clean: pool .* seq 1, 16096 blocks of 4096 bytes: 300 mapped, 0 pending, 0 retired, 15796 free; 0 problems$" &&
	check "clean pool: exit 0, one summary line" [ "$(lines "$T/out")" = 1 ]
run 0 "$B/remap_check" -q "$T/pool" &&
	check "-q prints nothing" [ ! -s "$T/out" ]
run 0 "$B/remap_check" --json "$T/pool" &&
	check "--json: status clean" \
		[ "$(json 'd["status"], d["exit_code"], len(d["problems"])' "$T/out")" = "clean 0 0" ]
if run 0 "$B/remap_dump" "$T/pool"; then
	json '"\n".join("%d %d mapped" % (e["main_block"], e["index"]) for e in sorted(d["entries"], key=lambda e: e["main_block"]))' \
		"$T/out" >"$T/dumped"
	check "dump: valid JSON, the same 300 remaps mkpool wrote" cmp -s "$T/dumped" "$T/list"
	check "dump: device record and counts" \
		[ "$(json 'd["devices"][0]["dev_id"], d["devices"][0]["mapped"], d["summary"]["mapped"]' "$T/out")" = "1 300 300" ]
fi

# --- damage the load rule survives: exit 1 --------------------------------
flip "$T/pool" 3
run 1 "$B/remap_check" "$T/pool" &&
	has "$T/out" "^$T/pool: damaged: superblock copy 3: checksum mismatch$" &&
	check "one superblock copy: exit 1, exactly that reported" [ "$(lines "$T/out")" = 2 ]
# Logical 7 holds spare blocks 252..503 (after the device table and the
# 5 label blocks); mkpool put its remaps in spare blocks 0..299.
b=$((8 + 2 * nl + 2 * 7))	# logical 7, pair 0, copy 1
flip "$T/pool" $b
run 1 "$B/remap_check" "$T/pool" &&
	has "$T/out" "^$T/pool: damaged: logical 7: slot 1 \(md block $b\): checksum mismatch; redundancy lost$" &&
	check "one table copy: exit 1, redundancy lost" [ "$(lines "$T/out")" = 3 ]

# --- beyond the load rule: exit 2 -----------------------------------------
flip "$T/pool" $((8 + 2 * 7))	# its twin: logical 7 has no copy left
run 2 "$B/remap_check" "$T/pool" &&
	has "$T/out" "^$T/pool: fatal: logical 7: no valid copy at or below seq 1: committed table block lost$" &&
	has "$T/out" "^$T/pool: fatal: pool " && pass "both copies of a table block: exit 2"
run 2 "$B/remap_dump" "$T/pool" &&
	check "dump of a refused pool: exit 2, valid JSON, the loadable remaps" \
		[ "$(json 'd["summary"]["status"], d["summary"]["mapped"]' "$T/out")" = "fatal 252" ]

# --- repair -----------------------------------------------------------------
if run 1 "$B/remap_repair" "$T/pool" "$T/new" &&
   has "$T/out" "^$T/new: wrote pool .* seq 2: 0 records dropped, 0 spare blocks unreadable$"; then
	pass "repair of a lost table block: exit 1"
	run 0 "$B/remap_check" "$T/new" && pass "repaired pool checks clean"
	run 0 "$B/remap_dump" "$T/new" && cp "$T/out" "$T/new.json"
	awk '$2 < 252' "$T/list" | sort >"$T/want"
	json '"\n".join("%d %d mapped" % (e["main_block"], e["index"]) for e in d["entries"])' \
		"$T/new.json" | sort >"$T/got"
	check "repaired pool: every remap outside the lost block" cmp -s "$T/want" "$T/got"
	cat >"$T/data.py" <<'EOF'
import json, sys
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
d = json.load(open(sys.argv[3]))
for e in d["entries"]:
    a.seek(e["spare_sector"] * 512)
    b.seek(e["spare_sector"] * 512)
    assert a.read(4096) == b.read(4096), e
assert d["entries"]
EOF
	check "repaired pool: data of every mapped block copied" \
		python3 "$T/data.py" "$T/orig" "$T/new" "$T/new.json"
	check "repaired pool keeps the uuid" \
		[ "$(json 'd["superblock"]["uuid"]' "$T/new.json")" = "$(json 'd["superblock"]["uuid"]' "$T/d.json")" ]
fi

# --- refusals: exit 3, nothing written ---------------------------------------
cp "$T/new" "$T/new.before"
run 3 "$B/remap_repair" "$T/pool" "$T/new" &&
	has "$T/err" "^remap_repair: $T/new: holds a dm-remap pool \(seq 2\); --force overwrites it$" &&
	check "repair refuses a destination holding a pool" cmp -s "$T/new" "$T/new.before"
run 1 "$B/remap_repair" --force -q "$T/pool" "$T/new" &&
	check "--force overwrites it; -q is quiet" [ ! -s "$T/out" ]
cp "$T/pool" "$T/pool.before"
run 3 "$B/remap_repair" "$T/pool" "$T/pool" && has "$T/err" "overlaps the source" &&
	check "repair refuses the source as destination" cmp -s "$T/pool" "$T/pool.before"
# A file swapped in for the new image between its creation and its use
# (here by a shim around ftruncate) is not written, and not removed.
cat >"$T/swap.c" <<'SHIM'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
int ftruncate(int fd, off_t len)
{
	int (*real)(int, off_t) = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
	const char *from = getenv("SWAP_FROM"), *to = getenv("SWAP_TO");

	if (from && to)
		rename(from, to);
	return real(fd, len);
}
SHIM
cc -shared -fPIC -o "$T/swap.so" "$T/swap.c" -ldl || fail "cannot build the ftruncate shim"
printf 'not a pool\n' >"$T/decoy"
truncate -s 64M "$T/decoy"	# big enough for the pool
cp "$T/decoy" "$T/decoy.before"
run 3 env LD_PRELOAD="$T/swap.so" ASAN_OPTIONS=verify_asan_link_order=0 \
	SWAP_FROM="$T/decoy" SWAP_TO="$T/swapped" "$B/remap_repair" "$T/pool" "$T/swapped" &&
	has "$T/err" "^remap_repair: $T/swapped: replaced while it was being created$" &&
	check "repair writes nothing into a file swapped in for its new image" \
		cmp -s "$T/swapped" "$T/decoy.before"
truncate -s 1M "$T/small"
run 3 "$B/remap_repair" "$T/pool" "$T/small" &&
	has "$T/err" "^remap_repair: $T/small: too small: 2048 sectors, the pool needs 131072$" &&
	pass "repair refuses a destination too small"
run 3 "$B/remap_check" "$T/nonexistent" &&
	has "$T/err" "^remap_check: $T/nonexistent: cannot open: No such file or directory$" &&
	check "missing device: exit 3, one line on stderr" [ "$(lines "$T/err")" = 1 ]
mkfifo "$T/fifo"
for t in remap_check remap_dump; do
	run 3 timeout 20 "$B/$t" "$T/fifo" &&
		has "$T/err" "^$t: $T/fifo: cannot open: not a block device or regular file$" &&
		pass "$t on a FIFO: refused at once, exit 3"
done
run 3 timeout 20 "$B/remap_repair" "$T/fifo" "$T/fifo-out" &&
	check "remap_repair from a FIFO: refused at once, nothing written" [ ! -e "$T/fifo-out" ]
run 3 "$B/remap_check" && run 3 "$B/remap_dump" a b && run 3 "$B/remap_repair" a &&
	pass "usage errors: exit 3"

# --- nothing to repair from -----------------------------------------------
for c in 0 1 2 3 4 5 6 7; do flip "$T/orig" $c; done
run 2 "$B/remap_check" "$T/orig" && has "$T/out" "no valid superblock copy" &&
	check "every superblock copy: exit 2, each reported" \
		[ "$(grep -c 'superblock copy [0-7]: checksum mismatch' "$T/out")" = 8 ]
run 2 "$B/remap_repair" "$T/orig" "$T/none" && has "$T/err" "nothing to repair from" &&
	check "repair with no superblock: exit 2, nothing written" [ ! -e "$T/none" ]

# --- sequence numbers at the limit (2^63) ---------------------------------
"$MKPOOL" -q 9223372036854775808 -S $((64 << 20)) "$T/seq" 8192 0 >/dev/null ||
	fail "mkpool -q 2^63"
run 2 "$B/remap_check" "$T/seq" && has "$T/out" "sequence number 2\^63 or above" &&
	pass "highest seq 2^63: fatal, as the module refuses it"
"$MKPOOL" -q 9223372036854775807 -S $((64 << 20)) "$T/seq" 8192 0 >/dev/null ||
	fail "mkpool -q 2^63-1"
run 0 "$B/remap_check" "$T/seq" &&
	run 2 "$B/remap_repair" "$T/seq" "$T/seq-copy" &&
	has "$T/err" "^remap_repair: $T/seq: sequence number 9223372036854775808 too high for a copy \(2\^63 or above\)$" &&
	check "repair of a pool at seq 2^63-1: refused, nothing written" [ ! -e "$T/seq-copy" ]

echo "offline-tools: $fails failed"
[ $fails = 0 ]
