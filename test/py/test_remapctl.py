# SPDX-License-Identifier: GPL-2.0-only
"""remapctl, the management CLI, against the real module: every command's
normal path, its refusals (one line on stderr, documented exit code),
--json output and --help; the manager lock; activate."""
import fcntl
import json
import os
import shutil
import stat
import subprocess
import time

import pytest

from conftest import ROOT
from dmtools import (CmdError, blockdev_sectors, dm_names, dmsetup, pattern, pread, pwrite, run,
                     segments_table, wait_for)
from pools import SB_COPIES, Manager, corrupt_block, data_start, pool_active, pool_attr

RC = os.path.join(ROOT, "build", "remapctl")
LOCK = "/run/remapctl/lock"
BLOCK = 4096
BS = BLOCK // 512

# set_label / scan messages an older module refuses, and dm-error's I/O errors.
pytestmark = pytest.mark.allow_kmsg(r"I/O error|Buffer I/O error")

COMMANDS = ["pool", "pool format", "pool resume", "pool free", "pool list", "create",
            "remove", "status", "remaps", "scan", "activate", "targets", "version"]


class Ctl:
    """Runs build/remapctl; removes at the end what the test left: remap
    devices, pools it resumed, and the manager device remapctl made."""

    def __init__(self):
        self.names_before = dm_names()
        self.pools_before = {s for s in range(64) if pool_active(s)}

    def __call__(self, *args, timeout=120):
        return subprocess.run([RC, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args):
        p = self(*args)
        assert p.returncode == 0 and p.stderr == "", \
            f"remapctl {' '.join(map(str, args))}: rc {p.returncode}: {p.stderr}"
        return p.stdout

    def create(self, *args):
        """remapctl create: the device and its label (set_label), with
        nothing on stderr."""
        return self.ok("create", *args)

    def err(self, code, *args):
        """The command must fail with exit code `code` and exactly one line
        on stderr of the form 'remapctl: <what>: <why>'; returns it."""
        p = self(*args)
        assert p.returncode == code, \
            f"remapctl {' '.join(map(str, args))}: rc {p.returncode} (want {code}): " \
            f"{p.stdout}{p.stderr}"
        lines = p.stderr.splitlines()
        assert len(lines) == 1, f"want one error line, got: {p.stderr!r}"
        assert lines[0].startswith("remapctl: ") and lines[0].count(": ") >= 2, lines[0]
        return lines[0]

    def json(self, *args):
        return json.loads(self.ok("--json", *args))

    def cleanup(self):
        for name in sorted(dm_names() - self.names_before):
            t = dmsetup("table", name)
            if " remap " in f" {t}" and "remap-mgr" not in t:
                dmsetup("remove", "--retry", name)
        for s in range(64):
            if pool_active(s) and s not in self.pools_before:
                self.ok("pool", "free", s)
        if "remap-mgr" in dm_names() - self.names_before:
            dmsetup("remove", "--retry", "remap-mgr")


@pytest.fixture
def ctl(dm, loopdev):
    c = Ctl()
    yield c
    c.cleanup()


@pytest.fixture
def spare(loopdev):
    return loopdev(64)


def scan_off(ctl, slot):
    """The scanner's reads (slow ones are moved) would blur what the tests
    count: off, except where it is tested."""
    ctl.ok("scan", slot, "set", "enabled=0")


@pytest.fixture
def pool(ctl, spare):
    """A pool formatted and resumed by remapctl, scanner off; its slot."""
    ctl.ok("pool", "format", spare)
    out = ctl.ok("pool", "resume", spare)
    slot = int(out.split()[1].rstrip(":"))
    scan_off(ctl, slot)
    return slot


def devno(path):
    st = os.stat(path)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def list_devices(slot):
    """{dev_id: {key: value}} straight from the manager (not via remapctl)."""
    mgr = [n for n in dm_names() if dmsetup("table", n).split()[2:3] == ["remap-mgr"]][0]
    dmsetup("message", mgr, "0", "switch_to", slot)
    out = {}
    for line in dmsetup("message", mgr, "0", "list_devices").splitlines():
        f = line.split()
        out[int(f[0])] = dict(x.split("=", 1) for x in f[1:])
    return out


# ---- help, usage errors, version ------------------------------------------

def test_help_of_every_command(ctl):
    main = ctl.ok("--help")
    assert main.startswith("usage: remapctl")
    for cmd in COMMANDS:
        if cmd != "pool":
            assert cmd in main, f"{cmd} missing from remapctl --help"
        out = ctl.ok(*cmd.split(), "--help")
        assert out.startswith("usage: remapctl"), cmd
        assert cmd.split()[-1] in out.splitlines()[0], cmd


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["--bogus", "status"], ["pool"], ["pool", "shrink"],
    ["pool", "format"], ["pool", "format", "/dev/x", "/dev/y"],
    ["pool", "format", "--block-size", "1000", "/dev/loop0"],
    ["pool", "format", "--block-size"], ["pool", "resume", "--slot", "64", "/dev/loop0"],
    ["pool", "free"], ["pool", "free", "x"], ["pool", "list", "extra"],
    ["create", "d"], ["create", "d", "/dev/loop0"], ["create", "a b", "/dev/loop0", "--pool", "0"],
    ["create", "d", "/dev/loop0", "--pool", "0", "--dev-id", "-1"],
    ["create", "d", "/dev/loop0", "--pool", "0", "--colour"],
    ["remove"], ["remaps"], ["status", "a", "--pool", "1"], ["scan", "0"],
    ["scan", "0", "twiddle"], ["scan", "0", "set"], ["scan", "0", "set", "speed=3"],
    ["scan", "0", "set", "rate"], ["activate", "now"], ["version", "x"],
])
def test_usage_errors_exit_2_with_one_line(ctl, args):
    line = ctl.err(2, *args)
    assert "Traceback" not in line


def test_version_and_targets(ctl):
    assert ctl.ok("version").startswith("remapctl ")
    assert ctl.ok("--version") == ctl.ok("version")
    out = ctl.ok("targets")
    assert {ln.split()[0] for ln in out.splitlines()} == {"remap", "remap-mgr"}
    # Output that cannot be written is a failure, not a success.
    for args in (["version"], ["--version"], ["targets"], ["--json", "status"]):
        with open("/dev/full", "w") as full:
            p = subprocess.run([RC, *args], stdout=full, stderr=subprocess.PIPE, text=True)
        assert p.returncode == 1 and "cannot write the output: No space left on device" \
            in p.stderr, (args, p.returncode, p.stderr)


def test_options_before_and_in_bundles(ctl):
    """-v may be given bundled before the command (-vv); an unknown letter
    in a bundle is named itself, not the word before it."""
    assert ctl.ok("-vv", "version") == ctl.ok("version")
    assert "unknown option '-vx'" in ctl.err(2, "-vx", "version")
    assert ctl.err(2, "status", "--json=1") == "remapctl: status: option '--json' takes no value"
    assert ctl.err(2, "create", "-", "/dev/loop0", "--pool", "0") == (
        "remapctl: create: invalid name '-' (1..127 printable characters, no whitespace, "
        "'/' or '\\', not '-')")
    assert "invalid name 'a\\b'" in ctl.err(2, "create", "a\\b", "/dev/loop0", "--pool", "0")
    assert "unknown option '-x'" in ctl.err(2, "pool", "format", "-xf", "/dev/null")
    assert "unknown option '--bogus'" in ctl.err(2, "pool", "format", "--bogus", "/dev/null")


def test_not_root_is_a_clear_error(ctl, loopdev):
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", RC,
                        "status"], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "root needed" in p.stderr, p.stderr


# ---- pools ------------------------------------------------------------------

def test_pool_format_resume_list_free(ctl, spare):
    out = ctl.ok("pool", "format", spare)
    assert out.startswith(f"formatted {spare}: ")
    line = ctl.err(1, "pool", "format", spare)
    assert "already holds a dm-remap pool" in line and "--force" in line
    ctl.ok("pool", "format", "--force", spare)
    free_slot = min(s for s in range(64) if not pool_active(s))
    out = ctl.ok("pool", "resume", spare)
    assert out.startswith(f"pool {free_slot}: resumed from {spare}")
    slot = free_slot
    total = int(pool_attr(slot, "blocks_total"))
    assert f"{total} blocks" in out
    line = ctl.err(1, "pool", "resume", spare)
    assert f"already active as pool {slot}" in line

    listing = ctl.ok("pool", "list").splitlines()
    assert listing[0].split()[:3] == ["POOL", "SPARE", "DEVNO"]
    row = [ln.split() for ln in listing[1:] if ln.split()[0] == str(slot)][0]
    assert row[1] == os.path.basename(spare) and row[2] == devno(spare)
    assert row[4] == str(total)
    pools = ctl.json("pool", "list")["pools"]
    p = [x for x in pools if x["id"] == slot][0]
    assert p["spare"] == os.path.basename(spare)
    assert p["blocks_total"] == total and p["blocks_free"] == total
    assert p["block_size"] == 4096 and p["state"] == "ok"
    assert p["uuid"] == pool_attr(slot, "uuid")

    assert ctl.ok("pool", "free", slot).startswith(f"pool {slot}: freed")
    assert not pool_active(slot)
    line = ctl.err(1, "pool", "free", slot)
    assert "no active pool" in line


def test_a_read_only_spare_is_named_so(ctl, spare):
    """format and resume of a read-only device say so (before: "no such
    device"), and change nothing."""
    run("blockdev", "--setro", spare)
    try:
        assert "the device is read-only" in ctl.err(1, "pool", "format", spare)
        run("blockdev", "--setrw", spare)
        ctl.ok("pool", "format", spare)
        run("blockdev", "--setro", spare)
        assert "the device is read-only" in ctl.err(1, "pool", "resume", spare)
        assert not any(pool_active(s) for s in range(64) if s not in ctl.pools_before)
    finally:
        run("blockdev", "--setrw", spare)
    ctl.ok("pool", "resume", spare)


def test_free_of_a_failed_pool_says_it_is_freed(ctl, dm, loopdev):
    """free_spare releases a pool whose metadata cannot be written, with
    EIO: remapctl reports the pool freed, with a warning, not a failure."""
    backing = loopdev(64)
    n = blockdev_sectors(backing)
    lin = dm.create(f"0 {n} linear {backing} 0", hint="spare")
    ctl.ok("pool", "format", dm.path(lin))
    slot = int(ctl.ok("pool", "resume", dm.path(lin)).split()[1].rstrip(":"))
    scan_off(ctl, slot)
    ctl.create("rc-failed", loopdev(8), "--pool", slot)
    ds = data_start(dm.path(lin))                # metadata fails, data not
    dm.reload(lin, f"0 {ds} error\n{ds} {n - ds} linear {backing} {ds}")
    with pytest.raises(CmdError):
        dmsetup("message", "rc-failed", "0", "force_remap", "0")    # its commit fails
    assert pool_attr(slot, "state") == "fail"
    ctl.ok("remove", "rc-failed")
    p = ctl("pool", "free", slot)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"pool {slot}: freed")
    (line,) = p.stderr.splitlines()
    assert line.startswith(f"remapctl: pool {slot}: warning: the last metadata commit failed")
    assert not pool_active(slot)


def test_pool_block_size_and_slot(ctl, spare):
    ctl.ok("pool", "format", "--block-size", "65536", spare)
    ctl.ok("pool", "resume", "--slot", "9", spare)
    assert pool_attr(9, "block_size") == "65536"
    assert ctl.json("status", "--pool", "9")["pools"][0]["block_size"] == 65536


def test_resume_into_busy_slot_refused(ctl, loopdev, pool):
    other = loopdev(64)
    ctl.ok("pool", "format", other)
    line = ctl.err(1, "pool", "resume", "--slot", pool, other)
    assert f"slot {pool} is busy" in line
    assert not any(pool_attr(s, "spare_device") == os.path.basename(other)
                   for s in range(64) if pool_active(s))


def test_resume_untrustworthy_metadata_says_so(ctl, spare):
    ctl.ok("pool", "format", spare)
    for copy in range(SB_COPIES):
        corrupt_block(spare, copy)
    line = ctl.err(1, "pool", "resume", spare)
    assert "metadata cannot be trusted" in line


def test_format_busy_and_not_a_block_device(ctl, dm, spare, pool):
    line = ctl.err(1, "pool", "format", "--force", spare)
    assert "busy" in line
    line = ctl.err(1, "pool", "format", "/etc/hostname")
    assert "not a block device" in line
    line = ctl.err(1, "pool", "resume", "/dev/does-not-exist")
    assert "No such file" in line


def test_manager_is_found_or_created(ctl, dm, spare):
    before = dm_names()
    assert not [n for n in before if dmsetup("table", n).split()[2:3] == ["remap-mgr"]], \
        "a manager device was left by an earlier test"
    ctl.ok("pool", "format", spare)
    assert dm_names() - before == {"remap-mgr"}
    assert dmsetup("table", "remap-mgr").split()[2] == "remap-mgr"
    # An existing manager of another name is used, none is added.
    dmsetup("remove", "remap-mgr")
    mine = Manager(dm)
    ctl.ok("pool", "format", "--force", spare)
    assert dm_names() - before == {mine.name}


def test_switch_to_and_message_are_serialized_by_the_lock(ctl, spare):
    ctl.ok("pool", "format", spare)
    os.makedirs(os.path.dirname(LOCK), mode=0o700, exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        p = subprocess.Popen([RC, "pool", "resume", "--slot", "11", spare],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert p.poll() is None, "remapctl did not wait for the lock"
        assert not pool_active(11)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert err == "remapctl: waiting for another remapctl (/run/remapctl/lock)\n"
    assert pool_active(11)


def test_a_lock_held_too_long_is_a_clear_error(ctl, spare):
    """remapctl waits for the lock at most REMAPCTL_LOCK_WAIT seconds, says
    it is waiting, then gives up with exit 1 and does nothing."""
    ctl.ok("pool", "format", spare)
    os.makedirs(os.path.dirname(LOCK), mode=0o700, exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = time.monotonic()
        p = subprocess.run([RC, "pool", "resume", "--slot", "11", spare], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "REMAPCTL_LOCK_WAIT": "3"})
        took = time.monotonic() - start
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert p.returncode == 1 and 2.5 < took < 30, (p.returncode, took, p.stderr)
    assert p.stderr.splitlines() == [
        "remapctl: waiting for another remapctl (/run/remapctl/lock)",
        f"remapctl: {spare}: another remapctl still holds /run/remapctl/lock "
        "after 3 s; nothing done"]
    assert not pool_active(11)
    for bad in ("", "x", "-1", "86401"):
        p = subprocess.run([RC, "pool", "resume", "--slot", "11", spare], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "REMAPCTL_LOCK_WAIT": bad})
        assert p.returncode == 2 and p.stderr == (
            f"remapctl: {spare}: REMAPCTL_LOCK_WAIT must be a number of seconds "
            f"(0-86400), not '{bad}'\n")
    assert not pool_active(11)


def test_the_lock_lives_where_only_root_can_create_it(ctl, spare, tmp_path):
    """In a world-writable directory any user could create the lock file
    first and hold it, stalling every remapctl.  The lock directory must be
    root's, writable by root alone; one that is not (here: group and world
    writable, or a symlink to such a directory) is refused with a clear
    error, nothing done."""
    ctl.ok("pool", "format", spare)
    lock_dir = os.path.dirname(LOCK)
    assert not LOCK.startswith("/run/lock/")
    ctl.ok("pool", "list")
    st = os.lstat(lock_dir)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700
    st = os.lstat(LOCK)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    shutil.rmtree(lock_dir)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    try:
        cases = [(lambda: os.symlink(open_dir, lock_dir),
                  f"cannot open {lock_dir}: Not a directory"),
                 (lambda: (os.mkdir(lock_dir), os.chmod(lock_dir, 0o777)),
                  f"{lock_dir} is not a directory of this user that only it can write; "
                  "remove it")]
        for make, why in cases:
            make()
            p = ctl("pool", "resume", "--slot", "11", spare)
            assert p.returncode == 1 and p.stderr == f"remapctl: {spare}: {why}\n", p.stderr
            assert not pool_active(11)
            assert not os.path.exists(open_dir / "lock")
            if os.path.islink(lock_dir):
                os.unlink(lock_dir)
            else:
                os.rmdir(lock_dir)
    finally:
        if os.path.islink(lock_dir):
            os.unlink(lock_dir)
        elif os.path.isdir(lock_dir):
            shutil.rmtree(lock_dir)
    ctl.ok("pool", "resume", "--slot", "11", spare)
    assert pool_active(11)
    ctl.ok("pool", "free", "11")


# ---- devices -------------------------------------------------------------------

def test_create_status_remaps_remove(ctl, loopdev, pool):
    main = loopdev(16)
    sectors = blockdev_sectors(main)
    out = ctl.create("rc-d0", main, "--pool", pool)
    assert out.startswith("rc-d0: created over")
    assert dmsetup("table", "rc-d0").split() == \
        ["0", str(sectors), "remap", "0", devno(main), str(pool)]
    data = pattern("ctl", 1 << 20)
    pwrite("/dev/mapper/rc-d0", 0, data)
    for b in (7, 42):       # bad blocks made by hand, through dmsetup
        dmsetup("message", "rc-d0", "0", "force_remap", b * BS)

    st = ctl.json("status", "rc-d0")
    assert [p["id"] for p in st["pools"]] == [pool]
    assert st["pools"][0]["blocks_used"] == 2
    (d,) = st["devices"]
    assert d["name"] == "rc-d0" and d["pool"] == pool and d["dev_id"] == 0
    assert d["main"] == main and d["sectors"] == sectors
    assert d["remaps"] == 2 and d["pending"] == 0 and d["state"] == "ok"
    human = ctl.ok("status")
    row = [ln.split() for ln in human.splitlines() if ln.startswith("rc-d0 ")][0]
    assert row[1:4] == [str(pool), "0", main] and row[5] == "2"

    rm = ctl.json("remaps", "rc-d0")
    assert rm["block_size"] == BLOCK and rm["mapped"] == 2 and rm["pending"] == 0
    assert [(r["block"], r["sector"], r["state"]) for r in rm["remaps"]] == \
        [(7, 7 * BS, "mapped"), (42, 42 * BS, "mapped")]
    text = ctl.ok("remaps", "rc-d0").splitlines()
    assert text[0].split() == ["BLOCK", "SECTOR", "SPARE_BLOCK", "STATE"]
    assert [ln.split()[0] for ln in text[1:3]] == ["7", "42"]
    assert "2 remapped, 0 pending" in text[-1]
    assert pread("/dev/mapper/rc-d0", 0, 1 << 20) == data

    line = ctl.err(1, "pool", "free", pool)
    assert "still attached" in line
    assert ctl.ok("remove", "rc-d0") == "rc-d0: removed\n"
    assert "rc-d0" not in dm_names()
    assert "no such device" in ctl.err(1, "remove", "rc-d0")
    assert "no such device" in ctl.err(1, "remaps", "rc-d0")
    assert "no such device" in ctl.err(1, "status", "rc-d0")


def test_write_errors_show_as_remaps(ctl, dm, loopdev, pool):
    backing = loopdev(16)
    n = blockdev_sectors(backing)
    bad = dm.create(segments_table(backing, n, [(5 * BS, BS), (9 * BS, BS)]), hint="bad")
    ctl.create("rc-bad", f"/dev/mapper/{bad}", "--pool", pool)
    pwrite("/dev/mapper/rc-bad", 0, pattern("e", 16 * BLOCK))
    d = ctl.json("status", "--pool", pool)["devices"][0]
    assert d["main"] == f"/dev/mapper/{bad}"
    assert d["remaps"] == 2 and d["write_errors"] >= 1
    assert [r["block"] for r in ctl.json("remaps", "rc-bad")["remaps"]] == [5, 9]
    ctl.ok("remove", "rc-bad")


def test_create_picks_lowest_unused_dev_id(ctl, loopdev, pool):
    m = [loopdev(8) for _ in range(4)]
    ctl.create("rc-a", m[0], "--pool", pool)
    ctl.create("rc-b", m[1], "--pool", pool, "--dev-id", 5)
    ctl.create("rc-c", m[2], "--pool", pool)
    ids = {d["name"]: d["dev_id"] for d in ctl.json("status", "--pool", pool)["devices"]}
    assert ids == {"rc-a": 0, "rc-b": 5, "rc-c": 1}
    # Records outlive their devices: a new main device gets a new id.
    ctl.ok("remove", "rc-a")
    ctl.create("rc-d", m[3], "--pool", pool)
    ids = {d["name"]: d["dev_id"] for d in ctl.json("status", "--pool", pool)["devices"]}
    assert ids["rc-d"] == 2
    # ... and a recorded main device gets its old id (and remaps) back.
    ctl.create("rc-a", m[0], "--pool", pool)
    ids = {d["name"]: d["dev_id"] for d in ctl.json("status")["devices"]}
    assert ids["rc-a"] == 0


def test_create_refusals(ctl, dm, loopdev, pool):
    main, other = loopdev(16), loopdev(16)
    assert "no active pool 63" in ctl.err(1, "create", "rc-x", main, "--pool", 63)
    assert "not a block device" in ctl.err(1, "create", "rc-x", "/etc/hostname", "--pool", pool)
    ctl.create("rc-x", main, "--pool", pool)
    line = ctl.err(1, "create", "rc-y", main, "--pool", pool)
    assert "already the main device of rc-x" in line
    line = ctl.err(1, "create", "rc-x", other, "--pool", pool)
    assert "already exists" in line
    line = ctl.err(1, "create", "rc-y", other, "--pool", pool, "--dev-id", 0)
    assert "busy" in line and "dev_id" in line
    assert "rc-y" not in dm_names()
    # The main device under a dev_id with remaps, shrunk: the module
    # refuses it unless --force, which drops the remaps.
    dmsetup("message", "rc-x", "0", "force_remap", 8)
    ctl.ok("remove", "rc-x")
    back = run("losetup", "-n", "-O", "BACK-FILE", main).strip()
    os.truncate(back, 8 << 20)
    run("losetup", "-c", main)
    line = ctl.err(1, "create", "rc-s", main, "--pool", pool, "--dev-id", 0)
    assert "smaller than recorded" in line
    assert "rc-s" not in dm_names()
    ctl.create("rc-s", main, "--pool", pool, "--dev-id", 0, "--force")
    assert ctl.json("remaps", "rc-s")["remaps"] == []
    # A main device another dm device maps (LVM that found its volumes on
    # the raw disk): a remap device beside it would bypass the remaps.
    third = loopdev(16)
    lv = dm.create(f"0 {blockdev_sectors(third)} linear {third} 0", hint="lv")
    assert f"{third} is in use by {lv}" in ctl.err(1, "create", "rc-z", third, "--pool", pool)
    assert "rc-z" not in dm_names()


def test_activate_leaves_a_main_device_another_device_uses(ctl, dm, loopdev, pool):
    main = loopdev(16)
    ctl.create("rc-h", main, "--pool", pool)
    ctl.ok("remove", "rc-h")
    lv = dm.create(f"0 {blockdev_sectors(main)} linear {main} 0", hint="lv")
    p = ctl("activate")
    assert p.returncode == 1, p.stdout + p.stderr
    assert (f"remapctl: rc-h: main device {main} is already used by {lv}; not created"
            in p.stderr.splitlines()), p.stderr
    assert "rc-h" not in dm_names()


def test_the_locator_names_the_disk_not_its_file_system(ctl, loopdev, pool):
    """Of the /dev/disk links to the main device, by-id comes first, then
    by-path, and by-uuid (the file system's, which mkfs changes) last.  The
    guest has no udev: the links are made here."""
    main = loopdev(16)
    made = []
    try:
        for d in ("by-uuid", "by-path", "by-id"):
            os.makedirs(f"/dev/disk/{d}", exist_ok=True)
        links = {d: f"/dev/disk/{d}/rmt-{d}-{os.getpid()}"
                 for d in ("by-uuid", "by-path", "by-id")}
        for d in ("by-uuid", "by-path"):
            os.symlink(main, links[d])
            made.append(links[d])
        ctl.create("rc-loc", main, "--pool", pool)
        assert list_devices(pool)[0]["locator"] == links["by-path"]
        ctl.ok("remove", "rc-loc")
        os.symlink(main, links["by-id"])
        made.append(links["by-id"])
        ctl.create("rc-loc", main, "--pool", pool)
        assert list_devices(pool)[0]["locator"] == links["by-id"]
        ctl.ok("remove", "rc-loc")
    finally:
        for link in made:
            os.unlink(link)


def test_create_with_a_dev_id_holding_another_devices_remaps(ctl, dm, loopdev, pool):
    """The module takes a main device at least as big as recorded for the
    same disk, so an explicit --dev-id whose remaps belong to another disk
    (or to one it cannot tell) is refused: that disk would read the old
    one's remapped blocks.  The same disk, or --force, is accepted."""
    main, other = loopdev(16), loopdev(16)
    ctl.create("rc-a", main, "--pool", pool)
    dmsetup("message", "rc-a", "0", "force_remap", 8)
    ctl.ok("remove", "rc-a")
    loc = list_devices(pool)[0]["locator"]
    line = ctl.err(1, "create", "rc-b", other, "--pool", pool, "--dev-id", 0)
    assert line == (f"remapctl: rc-b: dev_id 0 holds 1 remapped blocks of {loc}, not {other}; "
                    "--force attaches it anyway (one at least as big takes the remaps over, "
                    "a smaller one drops them)"), line
    assert "rc-b" not in dm_names()
    ctl.create("rc-a", main, "--pool", pool, "--dev-id", 0)
    assert len(ctl.json("remaps", "rc-a")["remaps"]) == 1
    ctl.ok("remove", "rc-a")
    ctl.create("rc-b", other, "--pool", pool, "--dev-id", 0, "--force")
    assert len(ctl.json("remaps", "rc-b")["remaps"]) == 1, "a copy of the disk takes them over"
    ctl.ok("remove", "rc-b")
    # A record with remaps and no label (made with dmsetup): cannot tell.
    third = loopdev(16)
    name = dm.create(f"0 {16 << 11} remap 7 {third} {pool}", hint="nolabel")
    dmsetup("message", name, "0", "force_remap", 8)
    dm.remove(name)
    line = ctl.err(1, "create", "rc-c", third, "--pool", pool, "--dev-id", 7)
    assert "dev_id 7 holds 1 remapped blocks and has no label" in line, line
    assert "rc-c" not in dm_names()
    ctl.create("rc-c", third, "--pool", pool, "--dev-id", 7, "--force")
    assert len(ctl.json("remaps", "rc-c")["remaps"]) == 1


def test_create_refuses_a_new_dev_id_while_a_record_may_be_this_disks(ctl, dm, loopdev, pool):
    """Without --dev-id, a main device no record's locator resolves to gets
    a new dev_id, but not while an unattached record of a device of its
    size with remaps has no label, or a locator that resolves to nothing:
    those remaps may be this disk's.  A record that is attached, has no
    remaps, is of another size, or whose locator names another present
    device is no reason to refuse."""
    main, other, small = loopdev(16), loopdev(16), loopdev(8)
    name = dm.create(f"0 {16 << 11} remap 3 {main} {pool}", hint="nolabel")
    dmsetup("message", name, "0", "force_remap", 8)
    # Attached: it is some other device's, not in doubt.
    ctl.create("rc-o", other, "--pool", pool)
    assert list_devices(pool).keys() == {0, 3}
    ctl.ok("remove", "rc-o")
    dm.remove(name)
    line = ctl.err(1, "create", "rc-m", main, "--pool", pool)
    assert line == (f"remapctl: rc-m: dev_id 3 holds 1 remapped blocks of a device with no "
                    f"label, of the size of {main}; if it is that disk, give --dev-id 3 "
                    "--force, else --dev-id 1 for a new id"), line
    assert "rc-m" not in dm_names()
    ctl.create("rc-s", small, "--pool", pool)           # another size
    ctl.create("rc-m", main, "--pool", pool, "--dev-id", 3, "--force")
    assert len(ctl.json("remaps", "rc-m")["remaps"]) == 1
    # Now labelled: it is found again by its locator, remaps and all.
    ctl.ok("remove", "rc-m")
    ctl.create("rc-m", main, "--pool", pool)
    assert {d["name"]: d["dev_id"] for d in ctl.json("status")["devices"]}["rc-m"] == 3
    ctl.ok("remove", "rc-m")
    # A locator that resolves to another present device: not this disk.
    ctl.create("rc-o", other, "--pool", pool)
    ctl.ok("remove", "rc-o")
    ctl.create("rc-n", loopdev(16), "--pool", pool)
    # A locator that resolves to nothing.
    dmsetup("message", "rc-n", "0", "force_remap", 8)
    dmsetup("message", "rc-n", "0", "set_label", "rc-n", "/dev/disk/by-id/gone-disk")
    ctl.ok("remove", "rc-n")
    line = ctl.err(1, "create", "rc-q", loopdev(16), "--pool", pool)
    assert line.startswith("remapctl: rc-q: dev_id 2 holds 1 remapped blocks of "
                           "/dev/disk/by-id/gone-disk, which is not found"), line


def test_remove_and_status_of_other_devices(ctl, dm, loopdev):
    lin = dm.create(f"0 1024 linear {loopdev(1)} 0", hint="lin")
    assert "not a dm-remap device" in ctl.err(1, "remove", lin)
    assert "not a dm-remap device" in ctl.err(1, "status", lin)
    assert "not a dm-remap device" in ctl.err(1, "remaps", lin)
    assert lin in dm_names()
    assert "no active pool 62" in ctl.err(1, "status", "--pool", 62)


def test_status_json_of_everything_is_valid(ctl, loopdev, pool):
    ctl.create("rc-j1", loopdev(8), "--pool", pool)
    ctl.create("rc-j2", loopdev(8), "--pool", pool)
    st = ctl.json("status")
    assert {d["name"] for d in st["devices"]} >= {"rc-j1", "rc-j2"}
    assert pool in {p["id"] for p in st["pools"]}
    assert ctl.json("pool", "list")["pools"] == ctl.json("status")["pools"]
    # --json is accepted after the command too.
    assert json.loads(ctl.ok("status", "--json")) == st
    # The JSON is what python's own tool accepts.
    p = subprocess.run(["python3", "-m", "json.tool"], input=ctl.ok("--json", "status"),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_json_keeps_utf8_names(ctl, loopdev, pool):
    """A dm name may be UTF-8; the JSON shows it as it is (before, each
    byte came out as its own \\u00XX: mojibake)."""
    name = "rc-donn\u00e9es-\u20ac"
    # Not through dm: the ctl fixture removes the remap devices a test left.
    dmsetup("create", name, "--table", f"0 {8 << 11} remap 3 {loopdev(8)} {pool}")
    raw = subprocess.run([RC, "--json", "status"], capture_output=True, check=True).stdout
    assert name.encode() in raw
    assert name in {d["name"] for d in json.loads(raw)["devices"]}


# ---- scanner -----------------------------------------------------------------

def test_scan_control(ctl, loopdev, pool):
    assert os.path.exists(f"/sys/module/dm_remap/pools/{pool}/scan_state")
    ctl.create("rc-sc", loopdev(16), "--pool", pool)
    st = ctl.json("scan", pool, "status")
    assert st["pool"] == pool and st["scan_state"] == "off" and st["scan_enabled"] == 0
    (d,) = st["devices"]
    assert d["name"] == "rc-sc" and d["dev_id"] == 0 and 0 <= d["health"] <= 100
    assert d["scan_passes"] == 0 and d["scan_last_pass"] == 0
    line = ctl.err(1, "scan", pool, "start")
    assert "disabled" in line and "enabled=1" in line
    out = ctl.ok("scan", pool, "set", "rate=2048", "interval=3600", "slow_ms=5000")
    assert out.count("\n") == 3
    assert pool_attr(pool, "scan_rate") == "2048"
    assert pool_attr(pool, "scan_interval") == "3600"
    assert pool_attr(pool, "scan_slow_ms") == "5000"
    for bad in ("rate=fast", "interval=0", "enabled=2"):
        line = ctl.err(1, "scan", pool, "set", bad)
        assert "refused the value" in line, line
    assert pool_attr(pool, "scan_rate") == "2048"
    assert pool_attr(pool, "scan_enabled") == "0"
    # A refused value in a list: those before it are put back.
    line = ctl.err(1, "scan", pool, "set", "enabled=1", "interval=60", "rate=0")
    assert "nothing changed" in line, line
    assert [pool_attr(pool, k) for k in ("scan_enabled", "scan_interval", "scan_rate")] == \
        ["0", "3600", "2048"]
    # A whole pass over the 16 MiB device.
    ctl.ok("scan", pool, "set", "rate=1048576", "enabled=1")
    ctl.ok("scan", pool, "start")
    assert wait_for(lambda: ctl.json("scan", pool, "status")["devices"][0]["scan_passes"] >= 1,
                    timeout=120, step=0.5)
    st = ctl.json("scan", pool, "status")
    d = st["devices"][0]
    assert d["scanned"] >= 16 * 256 and d["scan_last_pass"] > 0
    assert d["scan_failed"] == 0 and d["health"] == 100
    assert st["scan_state"] in ("idle", "scanning")
    assert ctl.ok("scan", pool, "stop") == f"pool {pool}: scan stopped\n"
    text = ctl.ok("scan", pool, "status").splitlines()
    assert text[0].startswith(f"pool {pool}: scanner ")
    assert text[1].split()[:2] == ["DEV_ID", "DEVICE"]
    row = text[2].split()
    assert row[:2] == ["0", "rc-sc"] and int(row[4]) >= 1 and row[-1] == "100"
    assert "no active pool" in ctl.err(1, "scan", 61, "start")
    assert json.loads(ctl.ok("scan", pool, "status", "--json"))["pool"] == pool


# ---- activate ------------------------------------------------------------------

def test_activate_resumes_pools_and_is_idempotent(ctl, loopdev, dm):
    spares = [loopdev(64), loopdev(64)]
    for s in spares:
        ctl.ok("pool", "format", s)
    held = loopdev(64)
    ctl.ok("pool", "format", held)
    dm.create(f"0 1024 linear {held} 8192", hint="holder")  # held: not touched
    ctl.ok("pool", "resume", "--slot", 20, spares[1])
    uuid1 = pool_attr(20, "uuid")
    before = {s for s in range(64) if pool_active(s)}
    p = ctl("activate")
    assert p.returncode == 0, p.stderr
    now = {s for s in range(64) if pool_active(s)}
    new = now - before
    assert len(new) == 1
    (slot,) = new
    assert slot == min(s for s in range(64) if s not in before)
    assert pool_attr(slot, "spare_device") == os.path.basename(spares[0])
    assert f"pool {slot}: resumed from {spares[0]}" in p.stdout
    assert "pool 20: already active" in p.stdout
    assert pool_attr(20, "uuid") == uuid1
    assert not any(pool_attr(s, "spare_device") == os.path.basename(held) for s in now)
    p = ctl("activate")
    assert p.returncode == 0 and "0 pools resumed, 0 devices created" in p.stdout
    assert {s for s in range(64) if pool_active(s)} == now


def test_activate_does_not_wait_for_a_suspended_device(ctl, dm, loopdev, spare):
    """A read of a suspended dm device, or of one built on it, waits until
    it is resumed: activate (run at boot) must read neither, and says which
    it left alone and why."""
    ctl.ok("pool", "format", spare)
    name = dm.create(f"0 {blockdev_sectors(spare)} linear {spare} 0", hint="susp")
    other = loopdev(16)
    bottom = dm.create(f"0 {blockdev_sectors(other)} linear {other} 0", hint="bottom")
    top = dm.create(f"0 {blockdev_sectors(other)} linear {dm.path(bottom)} 0", hint="top")

    def kname(n):
        return dmsetup("info", "-c", "--noheadings", "-o", "blkdevname", n).strip()

    for n in (name, bottom):
        dmsetup("suspend", n)
    try:
        p = subprocess.Popen([RC, "activate"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            for n in (name, bottom):
                dmsetup("resume", n)
            p.communicate()
            pytest.fail("activate waited for a suspended device")
    finally:
        for n in (name, bottom):
            dmsetup("resume", n)
    assert p.returncode == 0, err
    assert f"/dev/{kname(name)} is suspended: not examined" in err
    assert f"/dev/{kname(top)} is built on /dev/{kname(bottom)}, which is suspended: " \
        "not examined" in err
    assert "0 pools resumed" in out
    # Resumed, it is a pool like any other (its loop device is held).
    out = ctl.ok("activate")
    assert "1 pool resumed" in out and f"/dev/{kname(name)}" in out


def test_activate_reports_a_damaged_pool(ctl, loopdev, spare):
    ctl.ok("pool", "format", spare)
    for copy in range(SB_COPIES):
        corrupt_block(spare, copy)
    p = ctl("activate")
    assert p.returncode == 1
    line = [ln for ln in p.stderr.splitlines() if spare in ln]
    assert len(line) == 1 and "no valid copy" in line[0]


def test_activate_recreates_labelled_devices(ctl, dm, loopdev, spare):
    ctl.ok("pool", "format", spare)
    slot = int(ctl.ok("pool", "resume", spare).split()[1].rstrip(":"))
    scan_off(ctl, slot)
    gone = loopdev(16)
    mains = [loopdev(16), "/dev/mapper/" + dm.create(f"0 {blockdev_sectors(gone)} linear {gone} 0",
                                                     hint="gone")]
    backing = loopdev(16)
    bad = dm.create(segments_table(backing, blockdev_sectors(backing), [(3 * BS, BS)]),
                    hint="bad")
    ctl.create("rc-l0", mains[0], "--pool", slot)
    ctl.create("rc-l1", mains[1], "--pool", slot)
    ctl.create("rc-lbad", f"/dev/mapper/{bad}", "--pool", slot)
    recs = list_devices(slot)
    assert recs[0]["name"] == "rc-l0" and recs[0]["locator"] == mains[0]
    assert recs[1]["name"] == "rc-l1" and recs[1]["locator"] == mains[1]
    assert recs[2]["name"] == "rc-lbad" and recs[2]["locator"] == f"/dev/mapper/{bad}"
    data = pattern("act", 16 * BLOCK)
    pwrite("/dev/mapper/rc-lbad", 0, data)                # block 3 gets remapped
    dmsetup("message", "rc-l0", "0", "force_remap", 10 * BS)
    for n in ("rc-l0", "rc-l1", "rc-lbad"):
        ctl.ok("remove", n)
    ctl.ok("pool", "free", slot)
    # The main device of rc-l1 disappears.
    dm.remove(os.path.basename(mains[1]))
    p = ctl("activate")
    assert p.returncode == 3, p.stdout + p.stderr
    scan_off(ctl, slot)
    err = p.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("remapctl: rc-l1: main device ") \
        and "missing" in err[0]
    assert "rc-l0: created" in p.stdout and "rc-lbad: created" in p.stdout
    st = {d["name"]: d for d in ctl.json("status")["devices"]}
    assert set(st) >= {"rc-l0", "rc-lbad"} and "rc-l1" not in st
    assert st["rc-l0"]["dev_id"] == 0 and st["rc-lbad"]["dev_id"] == 2
    assert [r["block"] for r in ctl.json("remaps", "rc-l0")["remaps"]] == [10]
    assert [r["block"] for r in ctl.json("remaps", "rc-lbad")["remaps"]] == [3]
    assert pread("/dev/mapper/rc-lbad", 0, len(data)) == data
    # Again: nothing to do but the same missing device.
    p = ctl("activate")
    assert p.returncode == 3 and "0 devices created" in p.stdout
    assert "rc-l0: already active" in p.stdout


def test_long_listings_are_complete(ctl, dm, loopdev, pool):
    """More remaps than fit the first message buffer: remaps lists them all."""
    backing = loopdev(16)
    n = blockdev_sectors(backing)
    nbad = 1500
    bad = dm.create(segments_table(backing, n, [(BS, nbad * BS)]), hint="bad")
    ctl.create("rc-many", f"/dev/mapper/{bad}", "--pool", pool)
    pwrite("/dev/mapper/rc-many", 0, pattern("m", (nbad + 2) * BLOCK))
    rm = ctl.json("remaps", "rc-many")
    assert [r["block"] for r in rm["remaps"]] == list(range(1, nbad + 1))
    assert rm["mapped"] == nbad
    text = ctl.ok("remaps", "rc-many").splitlines()
    assert len(text) == nbad + 2 and f"{nbad} remapped" in text[-1]
