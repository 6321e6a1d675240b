# SPDX-License-Identifier: GPL-2.0-only
"""Multi-boot tests, run on the host: each test boots the guest more than
once over the same disk image (not tmpfs), with a clean power-off or a
kill -9 of QEMU in between, and checks what the second boot finds."""
import json
import os
import random
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_RUN = os.path.join(ROOT, "test/vm/vm-run")


@pytest.fixture
def disk(tmp_path):
    img = tmp_path / "spare.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    return str(img)


def vm(tmp_path, disk, *phase, timeout=600, background=False, mem=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    argv = [VM_RUN, "--quiet", "--timeout", str(timeout), "--out", str(out), "--disk", disk,
            *(["--mem", str(mem)] if mem else []),
            "--pidfile", str(tmp_path / "qemu.pid"), "--console", str(tmp_path / "console.log"),
            "--", "/usr/bin/python3", os.path.join(ROOT, "test/host/guest.py"), *phase]
    if background:
        return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, f"guest phase {phase} failed ({p.returncode}):\n{p.stdout}{p.stderr}"
    return out


def result(out, name):
    with open(out / name) as f:
        return json.load(f)


def test_pool_survives_reboot(tmp_path, disk):
    out = vm(tmp_path, disk, "format")
    before = result(out, "format.json")
    assert before["devices"] == [1]
    out = vm(tmp_path, disk, "check")
    after = result(out, "check.json")
    assert after["uuid"] == before["uuid"]
    assert after["blocks_total"] == before["blocks_total"]
    assert int(after["metadata_seq"]) > int(before["metadata_seq"])
    assert after["devices"] == [1]
    assert after["state"] == "ok"


def test_a_pool_of_more_than_2_27_blocks_resumes(tmp_path):
    """Past 2^27 blocks the load's scratch array is over INT_MAX bytes,
    which kvmalloc() refuses: such a pool (512 GiB of 4 KiB blocks, here
    76 GiB of 512-byte blocks on a sparse image) formatted but never
    resumed.  It must resume and take a remap."""
    disk = tmp_path / "large.img"
    with open(disk, "wb") as f:
        f.truncate(76 << 30)
    try:
        out = vm(tmp_path, str(disk), "large", timeout=1800, mem=6144)
    finally:
        disk.unlink()       # some GiB of metadata on the host's disk
    got = result(out, "large.json")
    assert int(got["blocks_total"]) > 1 << 27
    assert got["state"] == "ok"
    assert got["devices"] == [1]
    main_block, _, state = got["remaps"].split()
    assert (main_block, state) == ("100", "mapped"), got["remaps"]
    print("format, resume seconds:", got["seconds"])


def acked(out):
    try:
        with open(out / "acked.txt") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def test_kill_9_right_after_commits_loses_nothing(tmp_path, disk):
    p = vm(tmp_path, disk, "attach-loop", background=True)
    out = tmp_path / "out"
    want = random.randint(3, 20)
    deadline = time.monotonic() + 300
    while len(acked(out)) < want and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    assert p.poll() is None, "the guest stopped before the kill:\n" + p.stdout.read()
    with open(tmp_path / "qemu.pid") as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGKILL)
    p.wait(timeout=60)
    done = acked(out)
    assert len(done) >= want, "the guest acknowledged too few attaches before the kill"
    assert len(done) < 62, "the kill came after the guest had finished"
    before = result(out, "format.json")
    out = vm(tmp_path, disk, "check")
    after = result(out, "check.json")
    assert after["uuid"] == before["uuid"]
    missing = set(done) - set(after["devices"])
    assert not missing, f"acknowledged device records lost after kill -9: {sorted(missing)}"
    assert after["state"] == "ok"


def read_acked(out):
    """(last acknowledged version per block, acknowledged remaps, done,
    writes acknowledged after the spare blocks began to fail)."""
    writes, remaps, done, after_fail, failing = {}, set(), False, 0, False
    try:
        with open(out / "acked.txt") as f:
            for line in f:
                p = line.split()
                if p[:1] == ["w"]:
                    writes[int(p[1])] = max(writes.get(int(p[1]), -1), int(p[2]))
                    after_fail += failing
                elif p[:1] == ["r"]:
                    remaps.add(int(p[1]))
                elif p[:1] == ["fail"]:
                    failing = True
                elif p[:1] == ["done"]:
                    done = True
    except FileNotFoundError:
        pass
    return writes, remaps, done, after_fail


@pytest.mark.parametrize("phase", ["remap-burst", "error-burst", "relocate-burst"])
def test_kill_9_during_a_burst_of_remaps_under_write_load(tmp_path, disk, phase):
    """remap-burst: forced remaps while blocks are rewritten; error-burst:
    every third block fails writes on the main device, so the first write
    to each is a write-error remap; relocate-burst: all 64 blocks remapped,
    then their spare blocks fail writes, so the next write to each moves
    it to a new spare block.  kill -9 of QEMU in the middle; the next boot
    must find every acknowledged remap and write."""
    main = str(tmp_path / "main.img")
    with open(main, "wb") as f:
        f.truncate(16 << 20)
    out = tmp_path / "out"
    out.mkdir()
    argv = [VM_RUN, "--quiet", "--timeout", "600", "--out", str(out), "--disk", disk,
            "--disk", main, "--pidfile", str(tmp_path / "qemu.pid"), "--",
            "/usr/bin/python3", os.path.join(ROOT, "test/host/guest.py"), phase]
    p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    if phase == "remap-burst":
        def ready():
            return len(read_acked(out)[1]) >= want
        want = random.randint(5, 40)
    elif phase == "relocate-burst":
        def ready():
            return read_acked(out)[3] >= want
        # Each writer may acknowledge one write sent before the spare blocks
        # began to fail after "fail": the third is a relocated block's.
        want = random.randint(3, 40)
    else:
        def ready():
            w = read_acked(out)[0]
            return len(w) == 64 and max(w.values()) >= want
        want = random.randint(1, 3)
    deadline = time.monotonic() + 400
    while not ready() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    assert p.poll() is None, "the guest stopped before the kill:\n" + p.stdout.read()
    with open(tmp_path / "qemu.pid") as f:
        os.kill(int(f.read().strip()), signal.SIGKILL)
    p.wait(timeout=60)
    writes, remaps, done, _ = read_acked(out)
    assert ready()
    assert not done, "the kill came after the burst of remaps had ended"
    assert len(writes) == 64 and max(writes.values()) >= 1, "no write load ran"
    argv = [VM_RUN, "--quiet", "--timeout", "600", "--out", str(out), "--disk", disk,
            "--disk", main, "--console", str(tmp_path / "verify.log"), "--",
            "/usr/bin/python3", os.path.join(ROOT, "test/host/guest.py"), "verify-" + phase]
    v = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert v.returncode == 0, (tmp_path / "verify.log").read_text()[-3000:] + v.stderr
    got = result(out, "verify.json")
    missing = remaps - set(got["remaps"])
    assert not missing, f"acknowledged remaps lost: {sorted(missing)}"
    stale = {b: (got["versions"][str(b)], w) for b, w in writes.items()
             if got["versions"][str(b)] < w}
    assert not stale, f"blocks older than their last acknowledged write: {stale}"
    if phase == "relocate-burst":
        # An acknowledged write to a failing spare block is on a new one.
        assert got["retired"] >= 1
