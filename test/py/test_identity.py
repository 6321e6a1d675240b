# SPDX-License-Identifier: GPL-2.0-only
"""Device identity records: written durably on attach, group-committed."""
import concurrent.futures
import os
import subprocess

import pytest

from dmtools import (CmdError, blockdev_sectors, dmsetup, pattern, pread, pwrite, run,
                     wait_for)
from pools import (Manager, RemapDev, data_start, devices, free_pool, labels, pool_active,
                   pool_attr)


def devno(path):
    rdev = os.stat(path).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


@pytest.fixture
def mgr(dm):
    return Manager(dm)


@pytest.fixture
def pool(mgr, dm, loopdev):
    spare = loopdev(64)
    mgr.format(spare)
    mgr.resume(3, spare)
    yield 3
    free_pool(mgr, dm, 3)


def test_attach_records_identity_durably(mgr, pool, dm, loopdev):
    main = loopdev(8)
    seq = int(pool_attr(pool, "metadata_seq"))
    name = dm.create(f"0 1024 remap 7 {main} {pool}", hint="data")
    assert devices(mgr, pool) == {7: {"sectors": blockdev_sectors(main), "blocks": 0}}
    assert int(pool_attr(pool, "metadata_seq")) > seq
    dm.remove(name)
    spare = "/dev/" + pool_attr(pool, "spare_device")
    mgr.free(pool)
    mgr.resume(pool, spare)
    assert devices(mgr, pool) == {7: {"sectors": blockdev_sectors(main), "blocks": 0}}


def test_same_device_again_commits_nothing(mgr, pool, dm, loopdev):
    main = loopdev(8)
    dm.remove(dm.create(f"0 1024 remap 7 {main} {pool}", hint="data"))
    commits = int(pool_attr(pool, "commits"))
    dm.remove(dm.create(f"0 1024 remap 7 {main} {pool}", hint="data"))
    assert int(pool_attr(pool, "commits")) == commits


def test_other_device_without_remaps_updates_identity(mgr, pool, dm, loopdev):
    a, b = loopdev(8), loopdev(16)
    dm.remove(dm.create(f"0 1024 remap 7 {a} {pool}", hint="data"))
    dm.remove(dm.create(f"0 1024 remap 7 {b} {pool}", hint="data"))
    assert devices(mgr, pool)[7]["sectors"] == blockdev_sectors(b)


def test_concurrent_attaches_share_commits(mgr, dm, loopdev):
    """With a slow spare (every write delayed), attaches that arrive while
    a commit is in flight are covered together by the next one."""
    backing, main = loopdev(64), loopdev(8)
    n = blockdev_sectors(backing)
    slow = dm.create(f"0 {n} delay {backing} 0 0 {backing} 0 150", hint="slowspare")
    spare = dm.path(slow)
    mgr.format(spare)
    pool = 3
    mgr.resume(pool, spare)
    n = 24
    commits = int(pool_attr(pool, "commits"))
    names = [dm.name(f"c{i}") for i in range(n)]

    def create(i):
        dmsetup("create", names[i], "--table", f"0 64 remap {100 + i} {main} {pool}")
        dm.names.append(names[i])       # removed at the end, also if others fail

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        list(ex.map(create, range(n)))
    assert set(devices(mgr, pool)) == {100 + i for i in range(n)}
    used = int(pool_attr(pool, "commits")) - commits
    assert 1 <= used < n // 2, f"{n} concurrent attaches took {used} commits"
    free_pool(mgr, dm, pool, keep=[slow])


def test_device_records_are_reused_only_when_worth_nothing(mgr, pool, dm, loopdev):
    """63 records.  With all taken, a new dev_id gets the first one with no
    remapped or pending blocks, no label and no table using it; with none
    such, it is refused and nothing changes."""
    main = loopdev(1)

    def table(ids):
        return "\n".join(f"{8 * k} 8 remap {i} {main} {pool}" for k, i in enumerate(ids))
    d0 = RemapDev(dm, main, pool, dev_id=0, sectors=8)
    d0.force(0)                                   # record 0: a remapped block
    d0.remove()
    d1 = RemapDev(dm, main, pool, dev_id=1, sectors=8)
    d1.msg("set_label", "lab1", "/dev/lab1")     # record 1: a label
    d1.remove()
    RemapDev(dm, main, pool, dev_id=2, sectors=8)  # record 2: live
    dm.remove(dm.create(table(range(3, 63)), hint="d"))
    assert set(devices(mgr, pool)) == set(range(63))
    dm.remove(dm.create(table([63]), hint="d"))
    assert set(devices(mgr, pool)) == set(range(63)) - {3} | {63}
    assert devices(mgr, pool)[0]["blocks"] == 1
    assert labels(mgr, pool)[1][0] == "lab1"
    # Records 4..63 in use too: no record is worth nothing.
    dm.create(table(range(4, 64)), hint="d")
    before = devices(mgr, pool)
    with pytest.raises(CmdError):
        dm.create(table([64]), hint="d")
    assert devices(mgr, pool) == before


@pytest.mark.parametrize("opts", ["1", "1 bogus", "2 force force", "1 force extra", "x force"])
def test_bad_optional_arguments(pool, dm, loopdev, opts):
    main = loopdev(1)
    with pytest.raises(CmdError):
        dm.create(f"0 8 remap 1 {main} {pool} {opts}", hint="d")


@pytest.mark.parametrize("args, reason", [
    ("1 {main}", "Invalid argument count"),
    ("x {main} {pool}", "Invalid dev_id"),
    ("-1 {main} {pool}", "Invalid dev_id"),
    ("4294967296 {main} {pool}", "Invalid dev_id"),
    ("1 {main} x", "Invalid pool_id"),
    ("1 {main} 64", "No active pool with that pool_id"),
    ("1 {main} 40", "No active pool with that pool_id"),
    ("1 /dev/no-such-disk {pool}", "Main device lookup failed"),
])
def test_bad_table_lines_are_refused(mgr, pool, dm, loopdev, kmsg, args, reason):
    """Each bad table line is refused with its reason in the kernel log,
    and no record or commit comes of it."""
    main = loopdev(1)
    before, commits = devices(mgr, pool), int(pool_attr(pool, "commits"))
    kmsg.read()
    with pytest.raises(CmdError):
        dm.create(f"0 8 remap {args.format(main=main, pool=pool)}", hint="d")
    log = kmsg.read()
    assert any(f"remap: {reason}" in ln for ln in log), log
    assert devices(mgr, pool) == before
    assert int(pool_attr(pool, "commits")) == commits


@pytest.mark.parametrize("sectors", [0, 4])
def test_a_main_device_smaller_than_a_block_is_refused(mgr, pool, dm, kmsg, loopdev, sectors):
    """dm takes a device of size 0 for one of unknown size: an empty main
    device (a loop device with no file) or one below a block would be
    recorded as a device shrunk to nothing, dropping its record's label."""
    main = loopdev(1)
    if sectors:
        tiny = dm.path(dm.create(f"0 {sectors} linear {main} 0", hint="tiny"))
    else:
        tiny = run("losetup", "-f").strip()         # unbound: size 0
        assert blockdev_sectors(tiny) == 0
    other = RemapDev(dm, main, pool, dev_id=7)
    other.msg("set_label", "data7", "/dev/disk/by-id/seven")
    other.remove()
    before, names = devices(mgr, pool), labels(mgr, pool)
    commits = int(pool_attr(pool, "commits"))
    kmsg.read()
    with pytest.raises(CmdError):
        dm.create(f"0 8 remap 7 {tiny} {pool}", hint="d")
    assert any("Main device is empty or smaller than one pool block" in ln
               for ln in kmsg.read())
    assert devices(mgr, pool) == before and labels(mgr, pool) == names
    assert int(pool_attr(pool, "commits")) == commits


def test_force_option_accepted(mgr, pool, dm, loopdev):
    main = loopdev(1)
    dm.remove(dm.create(f"0 8 remap 1 {main} {pool} 1 force", hint="d"))
    assert 1 in devices(mgr, pool)


def test_list_devices_without_pool(mgr):
    mgr.msg("switch_to", 40)
    with pytest.raises(CmdError):
        mgr.msg("list_devices")


def test_table_load_does_no_io_and_resume_waits_for_the_record(mgr, dm, loopdev):
    """With the spare suspended, loading a remap table must not block (the
    constructor does no I/O); resuming the device waits for the commit."""
    backing, main = loopdev(64), loopdev(8)
    n = blockdev_sectors(backing)
    lin = dm.create(f"0 {n} linear {backing} 0", hint="spare")
    mgr.format(dm.path(lin))
    mgr.resume(3, dm.path(lin))
    name = dm.name("late")
    dmsetup("create", name, "--notable")
    dm.names.append(name)
    dmsetup("suspend", lin)
    try:
        dmsetup("load", name, "--table", f"0 64 remap 9 {main} 3", timeout=30)
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(dmsetup, "resume", name, timeout=60)
            try:
                fut.result(timeout=3)
                resumed_early = True
            except concurrent.futures.TimeoutError:
                resumed_early = False
            dmsetup("resume", lin)
            fut.result(timeout=60)
    finally:
        dmsetup("resume", lin, check=False)
    assert not resumed_early, "the device went live before its record was durable"
    assert 9 in devices(mgr, 3)
    free_pool(mgr, dm, 3, keep=[lin])


def test_label_is_durable_and_listed(mgr, pool, dm, loopdev):
    main = loopdev(8)
    name = dm.create(f"0 1024 remap 7 {main} {pool}", hint="data")
    assert labels(mgr, pool) == {7: ("-", "-")}
    seq = int(pool_attr(pool, "metadata_seq"))
    locator = "/dev/disk/by-id/virtio-" + "x" * 96     # 119 chars
    dmsetup("message", name, "0", "set_label", name, locator)
    # The message returns after the commit.
    assert int(pool_attr(pool, "metadata_seq")) > seq
    assert labels(mgr, pool) == {7: (name, locator)}
    # The same label again commits nothing.
    commits = int(pool_attr(pool, "commits"))
    dmsetup("message", name, "0", "set_label", name, locator)
    assert int(pool_attr(pool, "commits")) == commits
    dm.remove(name)
    spare = "/dev/" + pool_attr(pool, "spare_device")
    mgr.free(pool)
    mgr.resume(pool, spare)
    assert labels(mgr, pool) == {7: (name, locator)}


def test_a_label_sent_again_returns_once_it_is_durable(mgr, dm, loopdev):
    """set_label killed while its commit is in flight, then sent again:
    the label is already in memory, but the second message too returns
    only once it is durable."""
    backing, main = loopdev(64), loopdev(8)
    n = blockdev_sectors(backing)
    spare = dm.create(f"0 {n} linear {backing} 0", hint="spare")
    mgr.format(dm.path(spare))
    mgr.resume(3, dm.path(spare))
    dev = RemapDev(dm, main, 3, dev_id=5)
    # Every write to the spare takes 500 ms: a commit takes seconds.
    dm.reload(spare, f"0 {n} delay {backing} 0 0 {backing} 0 500")
    seq = int(pool_attr(3, "metadata_seq"))
    first = subprocess.Popen(["dmsetup", "message", dev.name, "0", "set_label", "lab5",
                              "/dev/lab5"])
    try:
        assert wait_for(lambda: labels(mgr, 3)[5] == ("lab5", "/dev/lab5"))
    finally:
        first.kill()
        first.wait()
    dev.msg("set_label", "lab5", "/dev/lab5")
    assert int(pool_attr(3, "metadata_seq")) > seq, "set_label returned before the commit"
    dm.reload(spare, f"0 {n} linear {backing} 0")
    free_pool(mgr, dm, 3, keep=[spare])


@pytest.mark.parametrize("args", [
    ("x" * 128, "/dev/vdb"),            # name too long
    ("data0", "/dev/" + "y" * 115),     # locator too long
    ("data\x01", "/dev/vdb"),           # not printable
    ("data0", "/dev/v\xe9"),            # not ASCII
    ("data0",),                         # missing locator
    ("data0", "/dev/vdb", "extra"),
    ("-", "/dev/vdb"),                  # what list_devices shows for none
])
def test_bad_label_is_refused(mgr, pool, dm, loopdev, args):
    main = loopdev(8)
    name = dm.create(f"0 1024 remap 7 {main} {pool}", hint="data")
    dmsetup("message", name, "0", "set_label", "good", "/dev/vdb")
    commits = int(pool_attr(pool, "commits"))
    with pytest.raises(CmdError):
        dmsetup("message", name, "0", "set_label", *args)
    assert labels(mgr, pool) == {7: ("good", "/dev/vdb")}
    assert int(pool_attr(pool, "commits")) == commits


def test_smaller_device_drops_the_label(mgr, pool, dm, loopdev):
    a, b = loopdev(16), loopdev(8)
    name = dm.create(f"0 1024 remap 7 {a} {pool}", hint="data")
    dmsetup("message", name, "0", "set_label", name, "/dev/disk/by-id/a")
    dm.remove(name)
    # A grown device keeps it, a smaller one is another device.
    dm.remove(dm.create(f"0 1024 remap 7 {b} {pool}", hint="data"))
    assert labels(mgr, pool) == {7: ("-", "-")}


def test_a_cleared_load_changes_no_record(mgr, pool, dm, loopdev):
    """Loading a table and clearing it, not resumed, changes no record: a
    bigger disk loaded by mistake does not make the real one look shrunk
    (it could then only come back with force, dropping its remaps), a
    smaller one does not drop the label, a new dev_id gets no record."""
    main, bigger, smaller = loopdev(16), loopdev(32), loopdev(8)
    dev = RemapDev(dm, main, pool, dev_id=7)
    dev.force(0)
    other = RemapDev(dm, main, pool, dev_id=8)
    other.msg("set_label", "data8", "/dev/disk/by-id/eight")
    before, names = devices(mgr, pool), labels(mgr, pool)
    commits = int(pool_attr(pool, "commits"))
    for name, table in [(dev.name, f"0 64 remap 7 {bigger} {pool}"),
                        (other.name, f"0 64 remap 8 {smaller} {pool}")]:
        dmsetup("load", name, "--table", table)
        dmsetup("clear", name)
    empty = dm.name("empty")
    dmsetup("create", empty, "--notable")
    dm.names.append(empty)
    dmsetup("load", empty, "--table", f"0 64 remap 9 {main} {pool}")
    dmsetup("clear", empty)
    assert devices(mgr, pool) == before and labels(mgr, pool) == names
    assert int(pool_attr(pool, "commits")) == commits
    # sysfs names the main device of the live table, not of the one cleared.
    for d, m in ((dev, main), (other, main)):
        with open(f"/sys/module/dm_remap/pools/{pool}/devices/{d.dev_id}/main_dev") as f:
            assert f.read().strip() == devno(m)
    # The real disk comes back without force, its remap kept.
    dev.remove()
    dev = RemapDev(dm, main, pool, dev_id=7)
    assert list(dev.remaps()) == [0]
    # Resumed, the same loads change the records.
    dmsetup("load", empty, "--table", f"0 64 remap 9 {main} {pool}")
    dmsetup("resume", empty)
    dm.reload(other.name, f"0 64 remap 8 {smaller} {pool}")
    assert devices(mgr, pool)[9] == {"sectors": blockdev_sectors(main), "blocks": 0}
    assert devices(mgr, pool)[8]["sectors"] == blockdev_sectors(smaller)
    assert labels(mgr, pool)[8] == ("-", "-")


def test_force_drops_the_remaps_only_when_the_table_resumes(mgr, pool, dm, loopdev):
    """A forced load of a smaller disk under a dev_id with remaps, then
    cleared, keeps them.  Loaded again (twice: the second replaces the
    first before it went live) and resumed, it drops them, and I/O goes
    to the new disk.  Once a table of the dev_id has been live, a forced
    load that would drop remaps is refused."""
    main, small = loopdev(16), loopdev(8)
    dev = RemapDev(dm, main, pool, dev_id=3)
    dev.force(0)
    dev.force(8 * 100)
    pwrite(dev.path, 0, pattern("old", 4096))
    dev.remove()
    kept = {"sectors": blockdev_sectors(main), "blocks": 2}
    assert devices(mgr, pool)[3] == kept
    pwrite(small, 0, pattern("new", 4096))
    name = dm.name("forced")
    dmsetup("create", name, "--notable")
    dm.names.append(name)
    table = f"0 {blockdev_sectors(small)} remap 3 {small} {pool} 1 force"
    dmsetup("load", name, "--table", table)
    dmsetup("clear", name)
    assert devices(mgr, pool)[3] == kept
    assert pool_attr(pool, "blocks_used") == "2"
    dmsetup("load", name, "--table", table)
    dmsetup("load", name, "--table", table)
    assert devices(mgr, pool)[3] == kept
    dmsetup("resume", name)
    assert devices(mgr, pool)[3] == {"sectors": blockdev_sectors(small), "blocks": 0}
    assert pool_attr(pool, "blocks_used") == "0"
    assert dmsetup("message", name, "0", "list_remaps").strip() == ""
    assert dmsetup("status", name).split()[5] == "0"      # active remaps
    assert pread(dm.path(name), 0, 4096) == pattern("new", 4096)
    # Live now: a remap, then a forced load of a smaller disk is refused.
    dmsetup("message", name, "0", "force_remap", "0")
    smaller = loopdev(4)
    with pytest.raises(CmdError):
        dmsetup("load", name, "--table",
                f"0 {blockdev_sectors(smaller)} remap 3 {smaller} {pool} 1 force")
    assert devices(mgr, pool)[3] == {"sectors": blockdev_sectors(small), "blocks": 1}


def test_loads_of_new_dev_ids_count_the_records_others_will_take(mgr, pool, dm, loopdev):
    """Records are taken at resume; a load checks that one is left for it
    after those that other loaded tables of new dev_ids will take, so that
    it does not pass and then fail at resume."""
    main = loopdev(1)

    def table(ids):
        return "\n".join(f"{8 * k} 8 remap {i} {main} {pool}" for k, i in enumerate(ids))
    dm.create(table(range(62)), hint="d")                # one record left
    a, b = dm.name("a"), dm.name("b")
    for name in (a, b):
        dmsetup("create", name, "--notable")
        dm.names.append(name)
    dmsetup("load", a, "--table", table([100]))
    with pytest.raises(CmdError) as e:
        dmsetup("load", b, "--table", table([101]))
    assert "No space left" in e.value.err
    dmsetup("load", a, "--table", table([100]))          # a's own claim again
    dmsetup("clear", a)
    with pytest.raises(CmdError):
        dmsetup("load", b, "--table", table([101, 102]))  # two in one table
    dmsetup("load", b, "--table", table([101]))
    dmsetup("resume", b)
    assert set(devices(mgr, pool)) == set(range(62)) | {101}
    # All 63 taken; 101's record is worth nothing once b is gone.  A load
    # of new dev_id 102 counts on it, so 101 itself may not be loaded.
    dm.remove(b)
    dmsetup("load", a, "--table", table([102]))
    with pytest.raises(CmdError) as e:
        dm.create(table([101]), hint="d")
    assert "No space left" in e.value.err
    dmsetup("resume", a)
    assert set(devices(mgr, pool)) == set(range(62)) | {102}


def test_a_device_of_a_failed_pool_still_resumes(mgr, dm, loopdev, kmsg):
    """When the pool's metadata cannot be written (state fail), a table
    that would change a record is refused, but the device can still be
    suspended, resumed and reloaded as it is: its I/O must not hang in a
    suspended device."""
    backing, main, bigger = loopdev(64), loopdev(8), loopdev(16)
    n = blockdev_sectors(backing)
    lin = dm.create(f"0 {n} linear {backing} 0", hint="spare")
    mgr.format(dm.path(lin))
    mgr.resume(3, dm.path(lin))
    dev = RemapDev(dm, main, 3, dev_id=2)
    pwrite(dev.path, 0, pattern("before", 4096))
    ds = data_start(dm.path(lin))                        # metadata fails, data not
    dm.reload(lin, f"0 {ds} error\n{ds} {n - ds} linear {backing} {ds}")
    with pytest.raises(CmdError):
        dev.force(0)                                     # its commit fails
    assert pool_attr(3, "state") == "fail"
    dmsetup("suspend", dev.name)
    dmsetup("resume", dev.name, timeout=30)
    dm.reload(dev.name, f"0 {blockdev_sectors(main)} remap 2 {main} 3")
    assert pread(dev.path, 0, 4096) == pattern("before", 4096)
    with pytest.raises(CmdError):
        dmsetup("load", dev.name, "--table", f"0 64 remap 2 {bigger} 3")
    # Refusals that the pool's state explains say so in the kernel log.
    kmsg.read()
    with pytest.raises(CmdError):
        dev.msg("set_label", "data2", "/dev/disk/by-id/two")
    with pytest.raises(CmdError):
        dev.force(8)
    log = kmsg.read()
    for what in ("set_label", "force_remap"):
        assert any(f"{what}: pool 3: its metadata cannot be written" in ln for ln in log), log
    dev.remove()
    with pytest.raises(CmdError):
        mgr.free(3)                     # released, but its last commit failed
    assert not pool_active(3)
