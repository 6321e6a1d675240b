# SPDX-License-Identifier: GPL-2.0-only
"""The whole remapctl lifecycle across reboots, run on the host: boot 1
formats and resumes a pool, creates two devices (one over a disk with bad
blocks), gets remaps and a pending block, removes the devices and frees the
pool; boot 2 runs `remapctl activate` and must find the pool, both devices,
every remap and the data; boot 3, without the bad disk's dm device, must
bring back the other device and report the missing one (exit code 3)."""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_RUN = os.path.join(ROOT, "test/vm/vm-run")
GUEST = os.path.join(ROOT, "test/host/guest_remapctl.py")
NBLOCKS = 64


def image(path, mb):
    with open(path, "wb") as f:
        f.truncate(mb << 20)
    return str(path)


def boot(tmp_path, disks, phase):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    log = tmp_path / f"{phase}.log"
    argv = [VM_RUN, "--quiet", "--timeout", "900", "--out", str(out), "--console", str(log)]
    for d in disks:
        argv += ["--disk", d]
    argv += ["--", "/usr/bin/python3", GUEST, phase]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, f"guest phase {phase} failed ({p.returncode}):\n" + \
        log.read_text()[-4000:] + p.stderr
    name = {"setup": "setup.json", "activate": "activate.json",
            "activate-missing": "missing.json"}[phase]
    with open(out / name) as f:
        return json.load(f)


def remaps(snap, name):
    return {r["block"]: r["state"] for r in snap["remaps"][name]}


def devices(snap):
    return {d["name"]: d for d in snap["status"]["devices"]}


def test_remapctl_lifecycle_across_reboots(tmp_path):
    disks = [image(tmp_path / "spare.img", 64), image(tmp_path / "good.img", 16),
             image(tmp_path / "bad.img", 16)]

    s = boot(tmp_path, disks, "setup")
    assert remaps(s, "data0") == {3: "mapped", 17: "mapped"}
    assert remaps(s, "data1") == {5: "mapped", 9: "mapped", 20: "pending"}
    d = devices(s)
    assert d["data0"]["dev_id"] == 0 and d["data1"]["dev_id"] == 1
    assert d["data1"]["remaps"] == 2 and d["data1"]["pending"] == 1
    assert d["data1"]["state"] == "degraded"
    assert s["status"]["pools"][0]["blocks_used"] + \
        s["status"]["pools"][0]["blocks_pending"] == 5
    assert "data1" in s["human"] and "degraded" in s["human"]
    assert set(s["read"]["data0"].values()) == {"ok"}
    assert s["read"]["data1"]["20"] == "eio"
    assert s["free"]["rc"] == 0, s["free"]

    a = boot(tmp_path, disks, "activate")
    assert a["before"] == {"pools": [], "devices": []}
    assert a["activate"]["rc"] == 0, a["activate"]
    assert a["activate"]["err"] == ""
    out = a["activate"]["out"]
    assert "pool 0: resumed from /dev/vda" in out
    assert "data0: created over /dev/vdb" in out
    assert "data1: created over /dev/mapper/badmain" in out
    (pool,) = a["status"]["pools"]
    assert pool["uuid"] == s["uuid"] and pool["spare"] == "vda"
    d = devices(a)
    assert set(d) == {"data0", "data1"}
    assert d["data0"]["dev_id"] == 0 and d["data0"]["main"] == "/dev/vdb"
    assert d["data1"]["dev_id"] == 1 and d["data1"]["state"] == "degraded"
    assert d["data1"]["main"] == "/dev/mapper/badmain"
    assert [x["name"] for x in a["scan"]["devices"]] == ["data0", "data1"]
    assert remaps(a, "data0") == remaps(s, "data0")
    assert remaps(a, "data1") == remaps(s, "data1")
    assert a["read"]["data0"] == {str(b): "ok" for b in range(NBLOCKS)}
    assert a["read"]["data1"] == {str(b): "eio" if b == 20 else "ok" for b in range(NBLOCKS)}
    # activate again changes nothing.
    assert a["again"]["rc"] == 0, a["again"]
    assert "0 pools resumed, 0 devices created" in a["again"]["out"]
    assert "data0: already active" in a["again"]["out"]
    assert [x["name"] for x in a["after_again"]["devices"]] == \
        [x["name"] for x in a["status"]["devices"]]

    m = boot(tmp_path, disks, "activate-missing")
    assert m["activate"]["rc"] == 3, m["activate"]
    err = m["activate"]["err"].splitlines()
    assert len(err) == 1 and err[0].startswith("remapctl: data1: main device /dev/mapper/badmain")
    assert "missing" in err[0]
    assert set(devices(m)) == {"data0"}
    assert remaps(m, "data0") == remaps(s, "data0")
    assert m["read"]["data0"] == {str(b): "ok" for b in range(NBLOCKS)}
