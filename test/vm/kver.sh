#!/bin/sh
# kver.sh [SERIES]: prints the kernel version to build for and boot: the
# newest installed /boot/vmlinuz-* that also has its build headers, of
# SERIES (e.g. 6.1, 6.12) if one is given.  Empty if there is none.
series=${1:-}
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
	case "$k" in
	"$series".*) ;;
	*) [ -z "$series" ] || continue ;;
	esac
	if [ -d "/lib/modules/$k/build" ]; then
		echo "$k"
		exit 0
	fi
done
exit 0
