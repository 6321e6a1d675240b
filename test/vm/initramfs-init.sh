#!/bin/busybox sh
# /init of the test initramfs: mount the host root (9p, read-only), writable
# tmpfs where the guest needs to write, the shared out dir, then hand over to
# the second stage vm-run wrote into the out dir.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
	insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o ro,$o,cache=loose hostroot /newroot || { echo "init: cannot mount host root"; poweroff -f; }
for d in run tmp var/tmp root; do
	mount -t tmpfs -o mode=0755 tmpfs /newroot/$d
done
chmod 1777 /newroot/tmp /newroot/var/tmp
mkdir -p /newroot/tmp/out
mount -t 9p -o $o out /newroot/tmp/out || { echo "init: cannot mount out dir"; poweroff -f; }
# The project directory, shared on its own: it may lie under a path the
# guest covers with tmpfs (a checkout in /tmp or /root).
if [ -s /newroot/tmp/out/.vm-proj ]; then
	p=$(cat /newroot/tmp/out/.vm-proj)
	mkdir -p "/newroot$p" 2>/dev/null
	mount -t 9p -o ro,$o proj "/newroot$p" || { echo "init: cannot mount $p"; poweroff -f; }
fi
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh /tmp/out/.vm-stage2
