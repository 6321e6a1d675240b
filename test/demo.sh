#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# make demo: not written yet.  It will boot the test VM, build a main device
# with injected bad sectors and a spare, format and resume a pool, create a
# remap device, write data and a filesystem across the bad sectors while
# showing the remaps appear, and verify every byte at the end.
echo "make demo: the demonstration arrives with automatic error handling; nothing to show yet." >&2
exit 0
