# SPDX-License-Identifier: GPL-2.0-only
"""Guest side of the remapctl multi-boot test (test_remapctl_boot.py): one
phase per boot, pools and devices driven by build/remapctl only.  dmsetup
is used for fault injection alone: force_remap messages and a main device
with error segments.

    python3 test/host/guest_remapctl.py <phase>

Disks: /dev/vda the spare, /dev/vdb a good main disk, /dev/vdc a disk that
is given bad blocks (the dm device "badmain" over it fails them).
Results go to $VM_OUT as JSON files.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "py"))

from dmtools import dmsetup, pattern, pread, pwrite, run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RC = os.path.join(ROOT, "build", "remapctl")
OUT = os.environ.get("VM_OUT", "/tmp/out")
SPARE, GOOD, BAD = "/dev/vda", "/dev/vdb", "/dev/vdc"
BLOCK, BS, NBLOCKS = 4096, 8, 64
FORCED = [3, 17]            # data0: remapped by hand (force_remap)
WRITE_BAD = [5, 9]          # data1: fail writes: remapped by the first write
READ_BAD = 20               # data1: fails after the data was written: pending


def setup():
    for m in ("dm-mod", "dm-bufio", "libcrc32c"):
        run("modprobe", m)
    run("insmod", os.path.join(ROOT, "dm-remap.ko"))


def ctl(*args):
    p = subprocess.run([RC, *map(str, args)], capture_output=True, text=True, timeout=300)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}


def ctl_ok(*args):
    r = ctl(*args)
    if r["rc"] != 0:
        raise SystemExit(f"remapctl {' '.join(map(str, args))} failed: {r}")
    return r["out"]


def ctl_json(*args):
    return json.loads(ctl_ok("--json", *args))


def badmain(bad_blocks):
    """(Re)create badmain: /dev/vdc failing the given blocks."""
    sectors = int(run("blockdev", "--getsz", BAD))
    lines, pos = [], 0
    for b in sorted(bad_blocks):
        if b * BS > pos:
            lines.append(f"{pos} {b * BS - pos} linear {BAD} {pos}")
        lines.append(f"{b * BS} {BS} error")
        pos = b * BS + BS
    lines.append(f"{pos} {sectors - pos} linear {BAD} {pos}")
    table = "\n".join(lines)
    if "badmain" in dmsetup("ls"):
        dmsetup("suspend", "badmain")
        dmsetup("load", "badmain", "--table", table)
        dmsetup("resume", "badmain")
    else:
        dmsetup("create", "badmain", "--table", table)


def save(name, obj):
    path = os.path.join(OUT, name)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)


def data(dev, b):
    return pattern(f"{dev}-{b}", BLOCK)


def readback(name):
    """{block: "ok" | "bad" (wrong data) | "eio"} of /dev/mapper/<name>."""
    out = {}
    for b in range(NBLOCKS):
        try:
            got = pread(f"/dev/mapper/{name}", b * BLOCK, BLOCK)
            out[b] = "ok" if got == data(name, b) else "bad"
        except OSError:
            out[b] = "eio"
    return out


def snapshot():
    st = ctl_json("status")
    rm = {d["name"]: ctl_json("remaps", d["name"])["remaps"] for d in st["devices"]}
    return {"status": st, "remaps": rm}


def phase_setup():
    ctl_ok("pool", "format", SPARE)
    ctl_ok("pool", "resume", SPARE)
    # The scanner's own moves of slow blocks would blur what is counted.
    ctl_ok("scan", 0, "set", "enabled=0")
    badmain(WRITE_BAD)
    ctl_ok("create", "data0", GOOD, "--pool", 0)
    ctl_ok("create", "data1", "/dev/mapper/badmain", "--pool", 0)
    for name in ("data0", "data1"):
        for b in range(NBLOCKS):
            pwrite(f"/dev/mapper/{name}", b * BLOCK, data(name, b))
    for b in FORCED:
        dmsetup("message", "data0", "0", "force_remap", b * BS)
    badmain(WRITE_BAD + [READ_BAD])
    try:
        pread("/dev/mapper/data1", READ_BAD * BLOCK, BLOCK)
        raise SystemExit("reading the bad block succeeded")
    except OSError:
        pass
    snap = snapshot()
    snap["human"] = ctl_ok("status")
    snap["read"] = {n: readback(n) for n in ("data0", "data1")}
    snap["uuid"] = snap["status"]["pools"][0]["uuid"]
    for name in ("data0", "data1"):
        ctl_ok("remove", name)
    snap["free"] = ctl("pool", "free", 0)
    save("setup.json", snap)


def phase_activate():
    badmain(WRITE_BAD + [READ_BAD])         # the disk is still bad
    res = {"before": ctl_json("status")}
    res["activate"] = ctl("activate")
    ctl_ok("scan", 0, "set", "enabled=0")
    res["scan"] = ctl_json("scan", 0, "status")
    res.update(snapshot())
    res["read"] = {n: readback(n) for n in ("data0", "data1")}
    res["again"] = ctl("activate")
    res["after_again"] = ctl_json("status")
    save("activate.json", res)


def phase_activate_missing():
    """badmain is not there: data1's main device is missing."""
    res = {"activate": ctl("activate")}
    ctl_ok("scan", 0, "set", "enabled=0")
    res.update(snapshot())
    res["read"] = {"data0": readback("data0")}
    save("missing.json", res)


PHASES = {"setup": phase_setup, "activate": phase_activate,
          "activate-missing": phase_activate_missing}

if __name__ == "__main__":
    setup()
    PHASES[sys.argv[1]]()
