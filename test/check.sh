#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make check: install what is missing, build, run the unit tests of common/
# (ASan/UBSan), a short fuzz run, then the pytest suite inside a QEMU guest
# running Debian's kernel (VM=0: directly on this host).
#
# Then (VM=1, KVER2 not "none") the guest pytest suite again on the second
# supported kernel, KVER2 (default: Debian 12's 6.12 LTS, installed if missing).
#
# Environment: VM (1), KVER, KVER2, PYTEST_ARGS (extra pytest arguments, e.g.
# -k), FUZZ_SECONDS (20), VM_TIMEOUT (2400).
set -u
cd "$(dirname "$0")/.."
VM=${VM:-1}
step() { printf '\n==> %s\n' "$*"; }
fail() { echo "make check: FAILED: $*" >&2; exit 1; }

step "dependencies"
if [ "$VM" = 1 ]; then test/deps.sh build vm lint install; else test/deps.sh build lint; fi || fail "missing packages"

# KVER may only be known now that the kernel packages are installed: the
# newest 6.1 (Debian 12's kernel) first, else the newest there is.
KVER=${KVER:-$(test/vm/kver.sh 6.1)}
KVER=${KVER:-$(test/vm/kver.sh)}
[ -n "$KVER" ] || fail "no installed kernel with headers"
export KVER

step "build (kernel $KVER, W=1)"
make -s W=1 KVER="$KVER" all >build.log 2>&1 || { cat build.log; fail "build"; }
if grep -q 'warning:' build.log; then cat build.log; fail "build warnings"; fi
rm -f build.log

step "checkpatch and sparse"
test/lint.sh || fail "lint"

step "unit tests of common/ (ASan, UBSan)"
build/unit || fail "unit tests"

step "offline metadata tools on pool images"
test/offline-tools.sh || fail "offline tools"

step "fuzz smoke run"
make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}" || fail "fuzzing"

mkdir -p build/results
pytest_cmd=(/usr/bin/python3 -m pytest -p no:cacheprovider -v -rfEs
	--junitxml=build/results/junit.xml ${PYTEST_ARGS:-} test/py)
if [ "$VM" = 1 ]; then
	step "pytest in a QEMU guest (kernel $KVER)"
	rm -f build/results/*
	test/vm/vm-run --kver "$KVER" --timeout "${VM_TIMEOUT:-2400}" --out build/results \
		-- "${pytest_cmd[@]/--junitxml=build\/results\/junit.xml/--junitxml=/tmp/out/junit.xml}"
	rc=$?
else
	step "pytest on this host"
	"${pytest_cmd[@]}"
	rc=$?
fi
case $rc in
0) ;;
5) fail "pytest collected no tests" ;;
124) fail "the guest crashed or timed out (see the console above)" ;;
*) fail "pytest exited $rc" ;;
esac

if [ "$VM" = 1 ]; then
	step "multi-boot and install tests: reboot, kill -9 of the guest, make install, DKMS (pytest on the host)"
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -rfEs \
		--junitxml=build/results/junit-host.xml test/host
	rc=$?
	[ $rc = 0 ] || fail "multi-boot tests (pytest exited $rc)"
fi

# The second supported kernel: the module and tools built in a copy of the
# tree (so the first build stays), the guest suite run over it.
if [ "$VM" = 1 ] && [ "${KVER2:-}" != none ]; then
	if [ -z "${KVER2:-}" ]; then
		test/deps.sh kernel612 || fail "missing packages (the 6.12 kernel)"
		KVER2=$(test/vm/kver.sh 6.12)
		[ -n "$KVER2" ] || fail "no 6.12 kernel with headers"
	fi
	# Both kernels are installed now: the same one twice means the first
	# is not a 6.1 with its headers.
	[ "$KVER2" != "$KVER" ] ||
		fail "the second kernel is the first ($KVER): no 6.1 kernel with headers? (KVER2=none skips it)"
	step "build (kernel $KVER2, W=1)"
	copy=$PWD/build/kernel2
	rm -rf "$copy" && mkdir -p "$copy" || fail "cannot make $copy"
	tar --exclude=./build --exclude=./.git --exclude='*.o' --exclude='*.ko' \
		--exclude='*.mod' --exclude='*.mod.c' --exclude='.*.cmd' \
		--exclude=Module.symvers --exclude=modules.order -cf - . |
		tar -C "$copy" -xf -
	[ "${PIPESTATUS[*]}" = "0 0" ] || fail "cannot copy the tree to $copy"
	make -C "$copy" -s W=1 KVER="$KVER2" module userland build/mkpool >build.log 2>&1 ||
		{ cat build.log; fail "build for $KVER2"; }
	if grep -q 'warning:' build.log; then cat build.log; fail "build warnings ($KVER2)"; fi
	rm -f build.log

	step "pytest in a QEMU guest (kernel $KVER2)"
	mkdir -p "$copy/build/results"
	(cd "$copy" && test/vm/vm-run --kver "$KVER2" --timeout "${VM_TIMEOUT:-2400}" \
		--out "$copy/build/results" -- /usr/bin/python3 -m pytest -p no:cacheprovider \
		-v -rfEs --junitxml=/tmp/out/junit.xml ${PYTEST_ARGS:-} test/py)
	rc=$?
	cp -f "$copy/build/results/junit.xml" "build/results/junit-$KVER2.xml" 2>/dev/null
	case $rc in
	0) ;;
	5) fail "pytest on $KVER2 collected no tests" ;;
	124) fail "the guest ($KVER2) crashed or timed out (see the console above)" ;;
	*) fail "pytest on $KVER2 exited $rc" ;;
	esac
	rm -rf "$copy"
fi
