#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# deps.sh [group...]: install the Debian packages dm-remap's build, tests,
# demo and benchmarks need, if any is missing.  Groups: build (module, tools,
# unit tests), vm (QEMU harness and guest tools), bench, lint, install (DKMS
# (and openssl, which signs the module it builds) and the boot unit's check,
# for the install tests), kernel612
# (Debian 12's 6.12 LTS kernel and headers, the second supported kernel).
set -eu

groups=${*:-build vm}
pkgs=()
for g in $groups; do
	case "$g" in
	build) pkgs+=(make gcc libc6-dev kmod linux-image-amd64 linux-headers-amd64
		      libdevmapper-dev pkg-config clang libclang-rt-14-dev python3) ;;
	vm) pkgs+=(qemu-system-x86 busybox-static cpio dmsetup python3-pytest
		   fio e2fsprogs util-linux procps xz-utils zstd file) ;;
	bench) pkgs+=(fio valgrind linux-perf patch) ;;
	lint) pkgs+=(sparse linux-source-6.1 xz-utils perl python3-pyflakes git) ;;
	install) pkgs+=(dkms openssl systemd man-db) ;;
	kernel612) pkgs+=(linux-image-6.12-amd64 linux-headers-6.12-amd64) ;;
	*) echo "deps.sh: unknown group $g" >&2; exit 2 ;;
	esac
done

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}
missing=()
for p in "${pkgs[@]}"; do
	installed "$p" || missing+=("$p")
done
# A kernel's headers are installed with its image, so that the two match:
# the headers alone would be those of the newest kernel, while an image
# already installed may be older (apt-get install upgrades it).
for pair in "linux-image-amd64 linux-headers-amd64" \
	    "linux-image-6.12-amd64 linux-headers-6.12-amd64"; do
	set -- $pair
	for p in "${missing[@]}"; do
		if [ "$p" = "$2" ] && installed "$1"; then
			missing+=("$1")
			break
		fi
	done
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
