#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make lint: checkpatch (from Debian's linux-source-6.1) over the module and
# common/, sparse over the kernel build, and pyflakes over the Python
# tests and tools.  Any finding fails.
set -u
cd "$(dirname "$0")/.."
test/deps.sh build lint || exit 1
KVER=${KVER:-$(test/vm/kver.sh)}

cp=/usr/src/linux-source-6.1/scripts/checkpatch.pl
if [ ! -x "$cp" ]; then
	mkdir -p build/lint
	if [ ! -x build/lint/scripts/checkpatch.pl ]; then
		tar -C build/lint -xJf /usr/src/linux-source-6.1.tar.xz --strip-components=1 \
			linux-source-6.1/scripts/checkpatch.pl linux-source-6.1/scripts/spelling.txt \
			linux-source-6.1/scripts/const_structs.checkpatch || exit 1
	fi
	cp=build/lint/scripts/checkpatch.pl
fi

rc=0
opts=(--no-tree --quiet --show-types --strict --ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG)
ls_src() { git ls-files --cached --others --exclude-standard "$@"; }
kfiles=$(ls_src 'dm-remap/*.[ch]' 'dm-remap-mgr/*.[ch]' | grep -v compat.h)
# The compat header is the one place allowed to test the kernel version.
compat=$(ls_src 'dm-remap-mgr/*compat.h')
# common/ is plain C shared with user space: it uses the <stdint.h> names.
cfiles=$(ls_src 'common/*.[ch]')
nk=$(echo $kfiles $compat $cfiles | wc -w)
echo "checkpatch: $nk files"
# Outside a git checkout git finds nothing: that must not pass as clean.
[ "$nk" -gt 0 ] || { echo "lint: no source files found (not a git checkout?)" >&2; exit 1; }
"$cp" "${opts[@]}" -f $kfiles || rc=1
"$cp" "${opts[@]}" --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON -f $compat || rc=1
"$cp" "${opts[@]}" --ignore PREFER_KERNEL_TYPES,BIT_MACRO -f $cfiles || rc=1

echo "sparse: kernel build with C=2"
make -s -C "/lib/modules/$KVER/build" M="$PWD" C=2 CHECK=sparse modules >build/sparse.log 2>&1 || { cat build/sparse.log; exit 1; }
if grep -E 'warning|error' build/sparse.log; then rc=1; fi
pyfiles=$(ls_src '*.py')
echo "pyflakes: $(echo $pyfiles | wc -w) files"
/usr/bin/python3 -m pyflakes $pyfiles || rc=1
[ $rc = 0 ] && echo "lint: clean"
exit $rc
