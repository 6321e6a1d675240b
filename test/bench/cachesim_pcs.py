#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""L1d misses and instructions per I/O by function, from a
PHASE=cachesim-pcs boot under test/bench/cachesim.c with pcs=on
(Documentation/benchmarks.md, "Cache model": "Misses by function").

   cachesim_pcs.py DIR      # DIR: cachesim.txt, pcs.json, kallsyms

For each remap count and direction: each device's L1d misses per I/O in all,
then in the functions of dm_remap and of dm core's bio path, per device;
then the instructions per I/O those functions ran, and the functions
whose instructions per I/O differ most between remap and dm-linear (the
mean of A and B).  A function's counts grow only while it runs, so fio's
start and end do not reach the target's own functions; the totals of all
code include them.
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

    # Per mark: (misses, executions) by function.
    dumps, cur, lost = {}, None, [0, 0]
    with open(os.path.join(d, "cachesim.txt")) as f:
        for ln in f:
            w = ln.split()
            if w and w[0] == "mark" and len(w) > 1:
                cur = dumps.setdefault(int(w[1]), (collections.Counter(), collections.Counter()))
            elif w and w[0] == "pc" and len(w) > 2 and w[1] == "lost":
                lost = [int(x) for x in w[2:4]] + [0] * (4 - len(w))
            elif w and w[0] == "pc" and len(w) in (3, 4) and cur is not None:
                f_ = name(int(w[1], 16))
                cur[0][f_] += int(w[2])
                if len(w) == 4:
                    cur[1][f_] += int(w[3])
    with open(os.path.join(d, "pcs.json")) as f:
        runs = json.load(f)["runs"]
    by = collections.defaultdict(dict)
    ins = collections.defaultdict(dict)
    for r in runs:
        c = dumps.get(r["marks"][1])
        if c is None or not r["ios"]:
            continue
        by[(r["remaps"], r["rw"])][r["cfg"]] = {k: v / r["ios"] for k, v in c[0].items()}
        ins[(r["remaps"], r["rw"])][r["cfg"]] = {k: v / r["ios"] for k, v in c[1].items()}
    if lost[0] or lost[1]:
        print(f"note: the plugin's table ran out of room: {lost[0]} misses went uncounted, "
              f"{lost[1]} instructions were translated with no execution count")
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
        print_insns(n, rw, ins[(n, rw)], cfgs)
    return 0


def print_insns(n, rw, per, cfgs):
    """Instructions per I/O by function (plugin builds that count them)."""
    if not all(per.get(c) for c in cfgs):
        return
    print(f"{n} remaps, {rw}: instructions per I/O, " + ", ".join(
        f"{c} {sum(per[c].values()):.0f}" for c in cfgs) + " (all code, fio's start and end included)")
    for mod in ("[dm_remap]", "[dm_mod]"):
        print(f"   in {mod} functions: " + ", ".join(
            f"{c} {sum(v for f, v in per[c].items() if mod in f):.1f}" for c in cfgs))
    funcs = {f for c in cfgs for f in per[c]}
    diff = {f: per["remap"].get(f, 0) - (per["lin_a"].get(f, 0) + per["lin_b"].get(f, 0)) / 2
            for f in funcs if f != "(user space)"}
    print("   kernel functions that differ most, remap - dm-linear (the A/A: lin_a - lin_b):")
    for f in sorted(diff, key=lambda f: -abs(diff[f]))[:20]:
        print(f"   {f:<40} {diff[f]:+8.1f}  (A/A {per['lin_a'].get(f, 0) - per['lin_b'].get(f, 0):+8.1f})")


if __name__ == "__main__":
    sys.exit(main())
