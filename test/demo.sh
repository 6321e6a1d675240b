#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make demo: boots Debian's kernel in a QEMU guest and shows dm-remap at
# work on a disk with bad sectors (test/demo-guest.sh is what runs inside).
set -u
cd "$(dirname "$0")/.."
echo "==> installing what is missing and building"
test/deps.sh build vm || exit 1
KVER=$(test/vm/kver.sh)
make -s KVER="$KVER" module >build-demo.log 2>&1 || { cat build-demo.log; exit 1; }
rm -f build-demo.log
echo "==> booting the demo VM (kernel $KVER; QEMU software emulation, about a minute)"
exec test/vm/vm-run --kver "$KVER" --timeout 900 -- bash test/demo-guest.sh
