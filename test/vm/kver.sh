#!/bin/sh
# Prints the kernel version to build for and boot: the newest installed
# /boot/vmlinuz-* that also has its build headers.  Empty if there is none.
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
	if [ -d "/lib/modules/$k/build" ]; then
		echo "$k"
		exit 0
	fi
done
exit 0
