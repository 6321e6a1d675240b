#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make check: install what is missing, build, run the unit tests of common/
# (ASan/UBSan), a short fuzz run, then the pytest suite inside a QEMU guest
# running Debian's kernel (VM=0: directly on this host).
#
# Environment: VM (1), KVER, PYTEST_ARGS (extra pytest arguments, e.g. -k),
# FUZZ_SECONDS (20), VM_TIMEOUT (2400).
set -u
cd "$(dirname "$0")/.."
VM=${VM:-1}
step() { printf '\n==> %s\n' "$*"; }
fail() { echo "make check: FAILED: $*" >&2; exit 1; }

step "dependencies"
if [ "$VM" = 1 ]; then test/deps.sh build vm lint; else test/deps.sh build lint; fi || fail "missing packages"

# KVER may only be known now that the kernel packages are installed.
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
	step "multi-boot tests: reboot and kill -9 of the guest (pytest on the host)"
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -rfEs \
		--junitxml=build/results/junit-host.xml test/host
	rc=$?
	[ $rc = 0 ] || fail "multi-boot tests (pytest exited $rc)"
fi
