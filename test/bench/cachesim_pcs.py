#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""L1d misses per I/O by function, from a PHASE=cachesim-pcs boot under
test/bench/cachesim.c with pcs=on (Documentation/benchmarks.md, "Cache
model": "Misses by function").

   cachesim_pcs.py DIR      # DIR: cachesim.txt, pcs.json, kallsyms

For each remap count and direction: each device's L1d misses per I/O in all,
then in the functions of dm_remap and of dm core's bio path, per device.
A function's misses happen only while it runs, so fio's start and end do
not reach the target's own lines; the totals include them.
"""
import bisect
import collections
import json
import os
import sys


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    syms = []
    with open(os.path.join(d, "kallsyms")) as f:
        for ln in f:
            w = ln.split()
            if len(w) >= 3 and w[1] in "tTwW":
                syms.append((int(w[0], 16), w[2] + (" " + w[3] if len(w) > 3 else "")))
    syms.sort()
    addrs = [a for a, _ in syms]

    def name(pc):
        i = bisect.bisect_right(addrs, pc) - 1
        if pc < 1 << 47:
            return "(user space)"
        return syms[i][1] if i >= 0 else hex(pc)

    dumps, cur, lost = {}, None, 0
    with open(os.path.join(d, "cachesim.txt")) as f:
        for ln in f:
            w = ln.split()
            if w and w[0] == "mark" and len(w) > 1:
                cur = dumps.setdefault(int(w[1]), collections.Counter())
            elif w and w[0] == "pc" and w[1] == "lost":
                lost = int(w[2])
            elif w and w[0] == "pc" and len(w) == 3 and cur is not None:
                cur[name(int(w[1], 16))] += int(w[2])
    with open(os.path.join(d, "pcs.json")) as f:
        runs = json.load(f)["runs"]
    by = collections.defaultdict(dict)
    for r in runs:
        c = dumps.get(r["marks"][1])
        if c is None or not r["ios"]:
            continue
        by[(r["remaps"], r["rw"])][r["cfg"]] = {k: v / r["ios"] for k, v in c.items()}
    if lost:
        print(f"note: {lost} misses of instructions past the plugin's table went uncounted")
    cfgs = ("remap", "lin_a", "lin_b")
    for (n, rw), per in sorted(by.items()):
        if not all(c in per for c in cfgs):
            continue
        print(f"{n} remaps, {rw}: L1d misses per I/O, " + ", ".join(
            f"{c} {sum(per[c].values()):.1f}" for c in cfgs) + " (all code, fio's start and end included)")
        mine = sorted({f for c in cfgs for f in per[c]
                       if "[dm_remap]" in f or "[dm_mod]" in f},
                      key=lambda f: -per["remap"].get(f, 0))
        for f in mine:
            if max(per[c].get(f, 0) for c in cfgs) >= 0.005:
                print(f"   {f:<40} " + "  ".join(f"{c} {per[c].get(f, 0):5.2f}" for c in cfgs))
        own = sum(v for f, v in per["remap"].items() if "[dm_remap]" in f)
        print(f"   in dm_remap's own functions: {own:.2f} per I/O")
    return 0


if __name__ == "__main__":
    sys.exit(main())
