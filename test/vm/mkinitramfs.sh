#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# mkinitramfs.sh KVER OUT: a tiny initramfs with static busybox and the
# virtio/9p modules needed to mount the host root; its /init hands over to
# the second stage that vm-run put in the shared out dir.
set -eu
kver=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" | grep -q 'statically linked' ||
	{ echo "mkinitramfs: static busybox needed (apt-get install busybox-static)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" "$root/bin/busybox"
: > "$root/modules.list"
for m in virtio_pci 9pnet_virtio 9p virtio_console virtio_blk; do
	modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	name=$(basename "$ko")
	case "$ko" in
	*.ko.xz) xz -dc "$ko" > "$root/lib/modules/${name%.xz}"; name=${name%.xz} ;;
	*.ko.zst) zstd -qdc "$ko" > "$root/lib/modules/${name%.zst}"; name=${name%.zst} ;;
	*.ko.gz) gzip -dc "$ko" > "$root/lib/modules/${name%.gz}"; name=${name%.gz} ;;
	*) cp "$ko" "$root/lib/modules/$name" ;;
	esac
	echo "$name" >> "$root/modules.list"
done
cp "$here/initramfs-init.sh" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
