#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The dm-remap demonstration, run inside the test VM by `make demo`.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=4096                    # pool block size
BAD="300 301 1200 5000"   # main-device blocks with bad sectors

say()  { printf '\n== %s\n' "$*"; }
show() { printf '   $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/     /'; }
note() { printf '   %s\n' "$*"; }

bad_table() {   # linear over the main disk, error segments at the given blocks
	local n=$1; shift
	local pos=0 b
	for b in $(printf '%s\n' "$@" | sort -n); do
		[ $((b * 8)) -gt $pos ] && echo "$pos $((b * 8 - pos)) linear $MAIN $pos"
		echo "$((b * 8)) 8 error"
		pos=$((b * 8 + 8))
	done
	[ $pos -lt $n ] && echo "$pos $((n - pos)) linear $MAIN $pos"
}

say "Setting up: a 64 MiB main disk and a 32 MiB spare disk"
for m in dm-mod dm-bufio libcrc32c loop; do modprobe $m; done
insmod "$ROOT/dm-remap.ko"
mkdir -p /tmp/demo
truncate -s 64M /tmp/demo/main.img
truncate -s 32M /tmp/demo/spare.img
MAIN=$(losetup -f --show /tmp/demo/main.img)
SPARE=$(losetup -f --show /tmp/demo/spare.img)
N=$(blockdev --getsz "$MAIN")
note "main disk $MAIN, spare disk $SPARE"

say "Injecting bad sectors into the main disk: blocks $BAD fail every read and write"
bad_table "$N" $BAD | dmsetup create baddisk
show dmsetup table baddisk
printf '   $ dd if=/dev/mapper/baddisk of=/dev/null bs=4k skip=300 count=1\n'
dd if=/dev/mapper/baddisk of=/dev/null bs=4k skip=300 count=1 iflag=direct 2>&1 | sed 's/^/     /' | head -2 || true

say "Creating the manager, formatting the spare and resuming it as pool 0"
show dmsetup create remap-mgr --table "0 1 remap-mgr"
show dmsetup message remap-mgr 0 format_spare "$SPARE"
show dmsetup message remap-mgr 0 switch_to 0
show dmsetup message remap-mgr 0 resume_spare "$SPARE"
# The background scanner is shown on its own at the end.
echo 0 > /sys/module/dm_remap/pools/0/scan_enabled
show dmsetup message remap-mgr 0 list

say "Creating the remap device data0 over the bad disk (dev_id 1 in pool 0)"
show dmsetup create data0 --table "0 $N remap 1 /dev/mapper/baddisk 0"
note "status: pool dev remaps pending read_errors write_errors remapped_ios state"
show dmsetup status data0

say "Writing 8 MiB of data across the bad blocks"
head -c 8M /dev/urandom > /tmp/demo/data
show dd if=/tmp/demo/data of=/dev/mapper/data0 bs=1M oflag=direct status=none
note "the write succeeded: the failing blocks were moved to the spare"
show dmsetup status data0
show dmsetup message data0 0 list_remaps
printf '   $ cmp <(dd if=/dev/mapper/data0 bs=1M count=8 status=none) /tmp/demo/data\n'
cmp <(dd if=/dev/mapper/data0 bs=1M count=8 iflag=direct status=none) /tmp/demo/data &&
	note "read back: identical"

say "A block that goes bad under existing data: block 1500"
bad_table "$N" $BAD 1500 | dmsetup load baddisk
dmsetup suspend baddisk; dmsetup resume baddisk
printf '   $ dd if=/dev/mapper/data0 of=/dev/null bs=4k skip=1500 count=1 iflag=direct\n'
dd if=/dev/mapper/data0 of=/dev/null bs=4k skip=1500 count=1 iflag=direct 2>&1 | sed 's/^/     /' | head -2 || true
note "its data is gone: reads fail with EIO (never zeros, never stale data), the block is pending"
show dmsetup status data0
note "overwriting the block heals it (the write goes to the spare block reserved for it)"
show dd if=/tmp/demo/data of=/dev/mapper/data0 bs=4k skip=1500 seek=1500 count=1 oflag=direct status=none
show dd if=/dev/mapper/data0 of=/dev/null bs=4k skip=1500 count=1 iflag=direct status=none
note "read OK again"
show dmsetup status data0

say "A filesystem on the bad disk"
show mkfs.ext4 -q -F /dev/mapper/data0
mkdir -p /tmp/demo/mnt
show mount /dev/mapper/data0 /tmp/demo/mnt
cp /tmp/demo/data /tmp/demo/mnt/file1
head -c 20M /dev/urandom > /tmp/demo/data2
cp /tmp/demo/data2 /tmp/demo/mnt/file2
sync
show df -h /tmp/demo/mnt
show umount /tmp/demo/mnt
show fsck.ext4 -f -n /dev/mapper/data0
show dmsetup status data0

say "The pool in sysfs"
for f in /sys/module/dm_remap/pools/0/* /sys/module/dm_remap/pools/0/devices/1/*; do
	[ -f "$f" ] && printf '     %-52s %s\n' "${f#/sys/module/dm_remap/}" "$(cat "$f")"
done

say "Reboot-style check: remove everything, resume the pool, verify every byte"
dmsetup remove data0
show dmsetup message remap-mgr 0 free_spare
show dmsetup message remap-mgr 0 resume_spare "$SPARE"
echo 0 > /sys/module/dm_remap/pools/0/scan_enabled
show dmsetup create data0 --table "0 $N remap 1 /dev/mapper/baddisk 0"
mount -o ro /dev/mapper/data0 /tmp/demo/mnt
ok=1
cmp /tmp/demo/mnt/file1 /tmp/demo/data || ok=0
cmp /tmp/demo/mnt/file2 /tmp/demo/data2 || ok=0
umount /tmp/demo/mnt
show dmsetup message data0 0 list_remaps
dmsetup remove data0
dmsetup message remap-mgr 0 free_spare
dmsetup remove remap-mgr
dmsetup remove baddisk
losetup -d "$MAIN" "$SPARE"
rmmod dm_remap
if [ $ok = 1 ]; then
	say "All data verified: the disk's bad blocks cost nothing but spare blocks."
else
	say "DATA MISMATCH"; exit 1
fi
