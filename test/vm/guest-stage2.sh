#!/bin/sh
# Second stage in the guest (PID 1 on the shared host root): set up the
# environment, run the command vm-run wrote, report its exit code through
# the "ret" virtio-serial port, and power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
export DM_DISABLE_UDEV=1 PYTHONDONTWRITEBYTECODE=1
export VM_OUT=/tmp/out IN_VM=1

ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm /run/lock
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname dm-remap-vm 2>/dev/null

# Tells vm-run that the command ran (a QEMU abort before it may be retried).
: > /tmp/out/.vm-started
sh /tmp/out/.vm-cmd </dev/console >/dev/console 2>&1
rc=$?

for p in /sys/class/virtio-ports/*; do
	if [ "$(cat "$p/name" 2>/dev/null)" = ret ]; then
		echo "$rc" > "/dev/${p##*/}"
	fi
done
sync
# reboot(2) straight away; -no-reboot makes QEMU exit.
/bin/busybox poweroff -f
echo o > /proc/sysrq-trigger
