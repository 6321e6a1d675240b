# SPDX-License-Identifier: GPL-2.0-only
"""The remap target: redirect of remapped blocks, forced remaps, listing,
status, persistence and bad input."""
import concurrent.futures
import contextlib
import glob
import mmap
import os
import threading

import pytest

import pools

from dmtools import (FIO_VERIFY, CmdError, blockdev_sectors, dm_names, dmsetup, linear_table,
                     pattern, pread, pwrite, run, wait_for)
from pools import Manager, PoolEnv, RemapDev, data_start, devices, free_pool, mkpool, pool_attr

BLOCK = 4096
BS = BLOCK // 512          # sectors per block


@pytest.fixture
def env(dm, loopdev):
    """A pool (slot 1) on a 64 MiB spare and a 16 MiB main device."""
    e = PoolEnv(dm, loopdev, 1)
    yield e
    e.close()


def spare_block(env, spare_idx, length=BLOCK, offset=0):
    return pread(env.spare, (data_start(env.spare) + spare_idx * BS) * 512 + offset, length)


def test_forced_remaps_copy_and_redirect(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    old = pattern("old", 1 << 20)
    pwrite(dev.path, 0, old)
    chosen = [3, 10, 11, 100, 255]
    for b in chosen:
        dev.force(b * BS + 1)          # any sector of the block
    remaps = dev.remaps()
    assert sorted(remaps) == chosen
    assert all(st == "mapped" for _, st in remaps.values())
    # The copies are exact and reads are redirected.
    assert pread(dev.path, 0, len(old)) == old
    for b in chosen:
        assert spare_block(env, remaps[b][0]) == old[b * BLOCK:(b + 1) * BLOCK]
    # New writes land on the side each block belongs to.
    new = pattern("new", 1 << 20)
    pwrite(dev.path, 0, new)
    assert pread(dev.path, 0, len(new)) == new
    on_main = pread(env.main, 0, len(new))
    for b in range(256):
        blk = slice(b * BLOCK, (b + 1) * BLOCK)
        if b in chosen:
            assert on_main[blk] == old[blk], f"block {b} written to main"
            assert spare_block(env, remaps[b][0]) == new[blk]
        else:
            assert on_main[blk] == new[blk], f"block {b} not on main"
    st = dev.status()
    assert st["remaps"] == len(chosen) and st["pending"] == 0 and st["state"] == "ok"
    assert st["remapped_ios"] > 0
    assert pool_attr(env.pool, "blocks_used") == str(len(chosen))


@pytest.mark.parametrize("offset, length", [
    (5 * 512, 64 << 10),            # unaligned start, spans remapped and normal blocks
    (3 * BLOCK + 512, 512),         # one sector inside a remapped block
    (3 * BLOCK - 512, 1024),        # straddles the start of a remapped block
    (11 * BLOCK + 3584, 1536),      # straddles the end of a remapped block
    (0, 1 << 20),                   # big bio over everything
])
def test_partial_and_spanning_io(env, offset, length):
    dev = RemapDev(env.dm, env.main, env.pool)
    pwrite(dev.path, 0, pattern("base", 1 << 20))
    for b in (3, 4, 11, 13):
        dev.force(b * BS)
    data = pattern(f"io{offset}", length)
    pwrite(dev.path, offset, data)
    assert pread(dev.path, offset, length) == data
    base = pattern("base", 1 << 20)
    expect = bytearray(base)
    expect[offset:offset + length] = data
    assert pread(dev.path, 0, 1 << 20) == bytes(expect)


def test_buffered_io_and_filesystem(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    for b in (0, 1, 2, 50, 1000, 4000):
        dev.force(b * BS)
    run("mkfs.ext4", "-q", "-F", "-b", "4096", dev.path)
    mnt = "/tmp/rmt-mnt"
    os.makedirs(mnt, exist_ok=True)
    run("mount", dev.path, mnt)
    try:
        with open(f"{mnt}/f", "wb") as f:
            f.write(pattern("fs", 3 << 20))
        run("sync")
    finally:
        run("umount", mnt)
    run("fsck.ext4", "-n", "-f", dev.path)
    run("mount", dev.path, mnt)
    try:
        with open(f"{mnt}/f", "rb") as f:
            assert f.read() == pattern("fs", 3 << 20)
    finally:
        run("umount", mnt)


def test_list_remaps_sorted(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    for b in (40, 7, 2000, 1):
        dev.force(b * BS)
    lines = dev.msg("list_remaps").splitlines()
    assert [int(x.split()[0]) for x in lines] == [1, 7, 40, 2000]


def test_clear_stats(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    dev.force(0)
    pread(dev.path, 0, BLOCK)
    assert dev.status()["remapped_ios"] > 0
    dev.msg("clear_stats")
    st = dev.status()
    assert st["remapped_ios"] == 0 and st["remaps"] == 1


def test_table_status_gives_the_table_back(env):
    dev = RemapDev(env.dm, env.main, env.pool, dev_id=9, opts="1 force")
    st = os.stat(env.main)
    assert dmsetup("table", dev.name).split()[2:] == [
        "remap", "9", f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}", "1", "1", "force"]


@pytest.mark.parametrize("args", [
    ["force_remap"],
    ["force_remap", "x"],
    ["force_remap", "-1"],
    ["force_remap", "32768"],           # == device size in sectors
    ["force_remap", "1", "2"],
    ["list_remaps", "x"],
    ["clear_stats", "now"],
    ["bogus"],
])
def test_bad_messages_rejected(env, args):
    dev = RemapDev(env.dm, env.main, env.pool)
    with pytest.raises(CmdError):
        dev.msg(*args)
    assert dev.remaps() == {}
    assert pool_attr(env.pool, "blocks_used") == "0"


def test_force_remap_twice_is_refused(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    dev.force(8)
    with pytest.raises(CmdError):
        dev.force(9)
    assert list(dev.remaps()) == [1]


@pytest.fixture
def small_pool(dm, loopdev):
    """A pool in slot 1 with 20 data blocks (pools.small_pool())."""
    with pools.small_pool(dm, loopdev, 1) as p:
        yield p


def test_exhaustion_is_a_clear_error_and_changes_nothing(dm, loopdev, small_pool, kmsg):
    mgr, _, total = small_pool
    dev = RemapDev(dm, loopdev(16), 1)
    for b in range(total):
        dev.force(b * BS)
    with pytest.raises(CmdError) as e:
        dev.force(total * BS)
    assert "No space" in e.value.err
    assert any("no free spare block" in ln for ln in kmsg.read())
    assert len(dev.remaps()) == total
    assert pool_attr(1, "blocks_free") == "0"
    dev.remove()
    mgr.free(1)


def test_freed_spare_blocks_are_handed_out_again(dm, loopdev, small_pool):
    """Spare blocks in use stay in use across free/resume (the pool's
    loaded map of taken blocks); the blocks of remaps dropped with a
    dev_id's identity ('force') are handed out again, after the free
    blocks past the last one handed out (the search wraps around); every
    spare block once; a full pool resumed is still full."""
    mgr, small, total = small_pool
    assert total >= 19
    main_a, main_b = loopdev(16), loopdev(16)
    a = RemapDev(dm, main_a, 1, dev_id=1)
    b = RemapDev(dm, main_b, 1, dev_id=2)
    for blk in range(10):
        a.force(blk * BS)
    for blk in range(5):
        b.force(blk * BS)
    a.remove()
    b.remove()
    mgr.free(1)
    mgr.resume(1, small)
    assert int(pool_attr(1, "blocks_free")) == total - 15
    b = RemapDev(dm, main_b, 1, dev_id=2)
    for blk in range(5, 8):
        b.force(blk * BS)
    assert [b.remaps()[blk][0] for blk in range(8)] == list(range(10, 18)), \
        "a spare block in use was handed out again after resume"
    a = RemapDev(dm, loopdev(8), 1, dev_id=1, opts="1 force")
    assert a.remaps() == {}
    assert int(pool_attr(1, "blocks_free")) == total - 8
    for blk in range(8, total):
        b.force(blk * BS)
    with pytest.raises(CmdError) as e:
        b.force(total * BS)
    assert "No space" in e.value.err
    remaps = b.remaps()
    assert sorted(s for s, _ in remaps.values()) == list(range(total))
    assert [remaps[blk][0] for blk in range(total)] == \
        list(range(10, total)) + list(range(10)), "not handed out from the cursor on"
    data = pattern("reuse", total * BLOCK)
    pwrite(b.path, 0, data)
    start = data_start(small)
    for blk, (s, _) in remaps.items():
        assert pread(small, (start + s * BS) * 512, BLOCK) == \
            data[blk * BLOCK:(blk + 1) * BLOCK], f"block {blk} not on spare block {s}"
    a.remove()
    b.remove()
    mgr.free(1)
    mgr.resume(1, small)
    assert pool_attr(1, "blocks_free") == "0"
    b = RemapDev(dm, main_b, 1, dev_id=2)
    with pytest.raises(CmdError) as e:
        b.force(total * BS)
    assert "No space" in e.value.err
    assert b.remaps() == remaps
    assert pread(b.path, 0, total * BLOCK) == data


def test_blocks_dropped_by_force_are_not_reused_before_the_drop_is_durable(dm, loopdev, kmsg):
    """A forced identity change frees the dropped remaps' spare blocks, but
    until that commit is on the spare a crash brings the old remaps back:
    another device must not get those blocks (and write its data into
    them) meanwhile.  The spare is a dm device, suspended to hold the
    commit; the pool is full, so any block handed out would be one of
    them."""
    mgr = Manager(dm)
    backing = loopdev(8)
    spare = dm.create(linear_table(backing, (36 + 20) * BS), hint="spare")
    spare_path = dm.path(spare)
    mgr.format(spare_path)
    mgr.resume(1, spare_path)
    try:
        total = int(pool_attr(1, "blocks_total"))
        a = RemapDev(dm, loopdev(16), 1, dev_id=1)
        b = RemapDev(dm, loopdev(16), 1, dev_id=2)
        for blk in range(total):
            a.force(blk * BS)
        a.remove()
        kmsg.read()
        dmsetup("suspend", spare)
        try:
            pool = concurrent.futures.ThreadPoolExecutor(1)
            attach = pool.submit(RemapDev, dm, loopdev(8), 1, dev_id=1, opts="1 force")
            seen = []
            assert wait_for(lambda: seen.extend(kmsg.read()) or
                            any("forced: dropping" in ln for ln in seen), 30), seen
            assert not attach.done()
            assert pool_attr(1, "blocks_free") == "0", "freed before the drop was durable"
            with pytest.raises(CmdError) as e:
                b.force(0)
            assert "No space" in e.value.err
        finally:
            dmsetup("resume", spare)
        a = attach.result(timeout=60)
        pool.shutdown()
        assert a.remaps() == {}
        assert wait_for(lambda: pool_attr(1, "blocks_free") == str(total))
        b.force(0)
        assert len(b.remaps()) == 1
    finally:
        free_pool(mgr, dm, 1, keep=(spare,))


def test_remaps_survive_remove_recreate_and_free_resume(env):
    dev = RemapDev(env.dm, env.main, env.pool, dev_id=4)
    data = pattern("keep", 1 << 20)
    pwrite(dev.path, 0, data)
    for b in (5, 6, 77):
        dev.force(b * BS)
    pwrite(dev.path, 0, pattern("keep2", 1 << 20))
    before = dev.remaps()
    dev.remove()
    dev = RemapDev(env.dm, env.main, env.pool, dev_id=4)
    assert dev.remaps() == before
    assert pread(dev.path, 0, 1 << 20) == pattern("keep2", 1 << 20)
    dev.remove()
    env.mgr.free(env.pool)
    env.mgr.resume(env.pool, env.spare)
    dev = RemapDev(env.dm, env.main, env.pool, dev_id=4)
    assert dev.remaps() == before
    assert pread(dev.path, 0, 1 << 20) == pattern("keep2", 1 << 20)


def test_devices_do_not_see_each_others_remaps(env, loopdev):
    other = loopdev(16)
    a = RemapDev(env.dm, env.main, env.pool, dev_id=1)
    b = RemapDev(env.dm, other, env.pool, dev_id=2)
    pwrite(a.path, 0, pattern("a", 64 << 10))
    pwrite(b.path, 0, pattern("b", 64 << 10))
    a.force(0)
    assert b.remaps() == {}
    assert pread(b.path, 0, 64 << 10) == pattern("b", 64 << 10)
    assert pread(a.path, 0, 64 << 10) == pattern("a", 64 << 10)


def test_list_devices_counts_each_devices_blocks(env, loopdev):
    """list_devices gives each device record its own remapped blocks,
    whatever the order of the dev_ids, and keeps those of a device that is
    no longer attached."""
    want = {40: 3, 2: 1, 7: 0, 25: 2}          # dev_id: remaps
    devs = {}
    for dev_id, n in want.items():
        devs[dev_id] = RemapDev(env.dm, env.main if dev_id == 40 else loopdev(16),
                                env.pool, dev_id=dev_id)
        for b in range(n):
            devs[dev_id].force(b * 5 * BS)
    devs[25].remove()
    assert {i: r["blocks"] for i, r in devices(env.mgr, env.pool).items()} == want


def test_dev_id_owned_by_another_device_is_refused(env, loopdev):
    RemapDev(env.dm, env.main, env.pool, dev_id=1)
    with pytest.raises(CmdError):
        RemapDev(env.dm, env.main, env.pool, dev_id=1)


def test_shrunk_device_with_remaps_needs_force(env, loopdev):
    dev = RemapDev(env.dm, env.main, env.pool, dev_id=3)
    dev.force(0)
    dev.remove()
    small = loopdev(8)
    with pytest.raises(CmdError):
        RemapDev(env.dm, small, env.pool, dev_id=3)
    assert devices(env.mgr, env.pool)[3]["blocks"] == 1
    dev = RemapDev(env.dm, small, env.pool, dev_id=3, opts="1 force")
    assert dev.remaps() == {}
    assert pool_attr(env.pool, "blocks_used") == "0"


def test_grown_device_keeps_its_remaps(env, dm, loopdev):
    backing = loopdev(32)
    lin = dm.create(f"0 {16 << 11} linear {backing} 0", hint="lv")
    dev = RemapDev(env.dm, dm.path(lin), env.pool, dev_id=5, sectors=16 << 11)
    dev.force(0)
    pwrite(dev.path, 0, pattern("g", BLOCK))
    dev.remove()
    dm.reload(lin, f"0 {32 << 11} linear {backing} 0")    # lvextend
    dev = RemapDev(env.dm, dm.path(lin), env.pool, dev_id=5)
    assert list(dev.remaps()) == [0]
    assert pread(dev.path, 0, BLOCK) == pattern("g", BLOCK)


def diskstat(dev, field):
    with open(f"/sys/block/{os.path.basename(os.path.realpath(dev))}/stat") as f:
        return int(f.read().split()[field])


def write_and_fsync(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_flush_reaches_both_devices(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    dev.force(0)
    flushes = (diskstat(env.main, 15), diskstat(env.spare, 15))
    write_and_fsync(dev.path, pattern("f", BLOCK))
    assert diskstat(env.main, 15) > flushes[0]
    assert diskstat(env.spare, 15) > flushes[1]


def test_bios_are_split_only_at_remapped_blocks(env, dm):
    """A 1 MiB write that touches no remapped block reaches the main device
    in as many requests as the same write through dm-linear over it (it is
    not cut at block boundaries).  One over a remapped block is cut only
    there: the spare gets that block as one request, the main device the
    pieces around it in at most one request more."""
    def writes(dev):
        return diskstat(dev, 4)         # write requests completed

    lin = dm.create(linear_table(env.main, blockdev_sectors(env.main)), hint="lin")
    dev = RemapDev(env.dm, env.main, env.pool)
    dev.force(1000 * BS)
    data = pattern("split", 1 << 20)            # 256 blocks
    counts = []
    for path, offset in [(dm.path(lin), 0), (dev.path, 0), (dev.path, 900 * BLOCK)]:
        m, s = writes(env.main), writes(env.spare)
        pwrite(path, offset, data, sync=False)
        counts.append((writes(env.main) - m, writes(env.spare) - s))
    (lin_main, lin_spare), far, over = counts
    assert lin_spare == 0 and far == (lin_main, 0), counts
    # Cut once at most: how many requests the pieces take depends on the
    # main device's request size (a loop device's varies with its file).
    assert over[1] == 1 and over[0] <= lin_main + 1, counts
    assert pread(dev.path, 900 * BLOCK, 1 << 20) == data


def test_flush_reaches_the_spare_when_the_main_disk_has_no_write_cache(env):
    """dm passes flushes down only if a device it is told about has a write
    cache.  A main disk without one must not make the spare's cache be
    skipped: the remap device has a write cache, and fsync flushes the
    spare (before, it said write through and the flush never came)."""
    def write_cache(dev):
        rdev = os.stat(dev).st_rdev
        return f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/queue/write_cache"

    with open(write_cache(env.main)) as f:
        was = f.read().strip()
    with open(write_cache(env.main), "w") as f:
        f.write("write through")
    try:
        dev = RemapDev(env.dm, env.main, env.pool)
        with open(write_cache(dev.path)) as f:
            assert f.read().strip() == "write back"
        dev.force(0)
        before = diskstat(env.spare, 15)
        write_and_fsync(dev.path, pattern("f", BLOCK))
        assert diskstat(env.spare, 15) > before
        assert pread(dev.path, 0, BLOCK) == pattern("f", BLOCK)
    finally:
        # Put back: the setting belongs to the loop device, not its file
        # (on 6.12 a queue flag), and the next user of it would inherit it.
        with open(write_cache(env.main), "w") as f:
            f.write(was)


@contextlib.contextmanager
def zram_disk():
    """A 64 MiB zram device: it compresses pages as it writes them."""
    run("modprobe", "zram")
    with open("/sys/class/zram-control/hot_add") as f:
        idx = int(f.read())
    try:
        with open(f"/sys/block/zram{idx}/disksize", "w") as f:
            f.write(str(64 << 20))
        yield f"/dev/zram{idx}"
    finally:
        with open("/sys/class/zram-control/hot_remove", "w") as f:
            f.write(str(idx))


@contextlib.contextmanager
def integrity_disk():
    """A 64 MiB scsi_debug disk with T10 protection information."""
    def disks():
        return [d for d in glob.glob("/sys/block/sd*")
                if open(f"{d}/device/model").read().strip() == "scsi_debug"]

    run("modprobe", "sd_mod")
    run("modprobe", "scsi_debug", "dev_size_mb=64", "dif=1", "dix=1")
    try:
        assert wait_for(lambda: len(disks()) == 1)
        yield "/dev/" + os.path.basename(disks()[0])
    finally:
        run("rmmod", "scsi_debug")


@contextlib.contextmanager
def loop_disk(loopdev):
    yield loopdev(64)


@pytest.mark.parametrize("kind", ["zram", "integrity", "loop"])
def test_a_spare_that_needs_stable_pages_makes_the_device_need_them(dm, loopdev, kind):
    """A spare that must not see a page change while it is written (zram
    compresses it; a disk with protection information checksums it): the
    remap device asks for stable pages too, or a page changed during a
    write to a remapped block would reach the spare torn.  The main
    device, a loop device, has no such need, and over a loop device spare
    neither has the remap device."""
    def stable(dev):
        rdev = os.stat(dev).st_rdev
        with open(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/queue/stable_writes") as f:
            return f.read().strip()

    disks = {"zram": zram_disk, "integrity": integrity_disk, "loop": lambda: loop_disk(loopdev)}
    with disks[kind]() as spare:
        main = loopdev(16)
        assert stable(main) == "0"
        mgr = Manager(dm)
        mgr.format(spare)
        mgr.resume(1, spare)
        try:
            dev = RemapDev(dm, main, 1)
            assert stable(dev.path) == ("0" if kind == "loop" else "1")
            data = pattern("z", 64 << 10)
            pwrite(dev.path, 0, data)
            dev.force(3 * BS)
            assert dev.remaps() == {3: (0, "mapped")}
            assert pread(dev.path, 0, 64 << 10) == data
        finally:
            free_pool(mgr, dm, 1)


def test_discard_over_a_spare_that_takes_none(dm, loopdev):
    """The device offers discard because the main device takes it.  A
    discard over a remapped block whose spare takes none succeeds without
    reaching the spare (before, the spare refused it: a failed discard bio,
    counted as a write error, which the ioctl hides but a filesystem's own
    discards see); the main device's blocks are discarded, the spare block
    keeps its data."""
    # A loop device of its own, removed afterwards: from 6.9 on, a
    # discard_max_bytes of 0 cannot be written back and outlives the
    # loop device's file, so the next user of the device would inherit it.
    index = next(n for n in range(64, 1 << 20) if not os.path.exists(f"/sys/block/loop{n}"))
    spare = loopdev(64, index=index)
    with open(f"/sys/block/loop{index}/queue/discard_max_bytes", "w") as f:
        f.write("0")
    mgr = Manager(dm)
    mgr.format(spare)
    mgr.resume(1, spare)
    try:
        main = loopdev(16)
        dev = RemapDev(dm, main, 1)
        pwrite(dev.path, 0, pattern("d", 64 << 10))
        dev.force(2 * BS)
        run("blkdiscard", "-f", "-o", "0", "-l", str(64 << 10), dev.path)
        on_main = pread(main, 0, 64 << 10)
        assert on_main[:2 * BLOCK] + on_main[3 * BLOCK:] == bytes(15 * BLOCK)
        assert pread(dev.path, 2 * BLOCK, BLOCK) == pattern("d", 64 << 10)[2 * BLOCK:3 * BLOCK]
        assert dev.status()["write_errors"] == 0
    finally:
        free_pool(mgr, dm, 1)


def test_discard_and_write_zeroes_reach_both_devices(env):
    dev = RemapDev(env.dm, env.main, env.pool)
    pwrite(dev.path, 0, pattern("d", 64 << 10))
    dev.force(2 * BS)
    spare_idx = dev.remaps()[2][0]
    run("blkdiscard", "-o", "0", "-l", str(64 << 10), dev.path)
    assert spare_block(env, spare_idx) == bytes(BLOCK)
    on_main = pread(env.main, 0, 64 << 10)
    # Block 2 lives on the spare: its stale copy on main is left alone.
    assert on_main[:2 * BLOCK] + on_main[3 * BLOCK:] == bytes(15 * BLOCK)
    # Write-zeroes: fallocate's punch hole sends it with no fallback to
    # writes of zeroes (BLKZEROOUT, blkdiscard -z, would fall back).
    pwrite(dev.path, 0, pattern("z", 64 << 10))
    run("fallocate", "-p", "-o", "0", "-l", str(64 << 10), dev.path)
    assert pread(dev.path, 0, 64 << 10) == bytes(64 << 10)
    assert spare_block(env, spare_idx) == bytes(BLOCK)
    on_main = pread(env.main, 0, 64 << 10)
    assert on_main[:2 * BLOCK] + on_main[3 * BLOCK:] == bytes(15 * BLOCK)
    assert on_main[2 * BLOCK:3 * BLOCK] != bytes(BLOCK)
    st = dev.status()
    assert st["write_errors"] == 0 and st["remaps"] == 1 and st["state"] == "ok"


def test_writes_racing_a_forced_remap_are_not_lost(env):
    """A writer hammers one block while it is being remapped; the last
    acknowledged write must be what the block holds afterwards."""
    dev = RemapDev(env.dm, env.main, env.pool)
    stop = threading.Event()
    last = {}

    def writer(block):
        i = 0
        while not stop.is_set():
            pwrite(dev.path, block * BLOCK, pattern(f"{block}:{i}", BLOCK))
            last[block] = i
            i += 1

    blocks = [20, 21, 22, 23]
    with concurrent.futures.ThreadPoolExecutor(len(blocks)) as ex:
        futs = [ex.submit(writer, b) for b in blocks]
        try:
            for b in blocks:
                dev.force(b * BS)
        finally:
            stop.set()
        for f in futs:
            f.result()
    for b in blocks:
        assert pread(dev.path, b * BLOCK, BLOCK) == pattern(f"{b}:{last[b]}", BLOCK)
    assert sorted(dev.remaps()) == blocks


def test_fio_verify_while_blocks_are_remapped(env, tmp_path):
    dev = RemapDev(env.dm, env.main, env.pool)
    fio = subprocess_fio(dev.path, tmp_path, size_mib=8, runtime=20)
    try:
        for b in range(0, 2048, 97):
            dev.force(b * BS)
    finally:
        rc = fio.wait(timeout=300)
    out = fio.stdout.read()
    assert rc == 0 and "err= 0" in out, out
    assert len(dev.remaps()) == len(range(0, 2048, 97))


def subprocess_fio(path, tmp_path, size_mib, runtime, fd=None):
    """fio on path, or on the open file descriptor fd (which it inherits):
    fio opens its file again for each loop, and a device whose removal was
    deferred has lost its /dev/mapper name."""
    import subprocess
    half = size_mib // 2
    return subprocess.Popen(
        ["fio", "--name=v", f"--filename={path if fd is None else f'/dev/fd/{fd}'}",
         "--direct=1", "--ioengine=psync", "--rw=randrw", "--bs=4k", f"--size={half}M",
         f"--offset_increment={half}M", "--numjobs=2", f"--runtime={runtime}", *FIO_VERIFY,
         "--verify_backlog=64", "--group_reporting"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path),
        pass_fds=() if fd is None else (fd,))


def test_suspend_resume_reload_resize_remove_under_load(env, dm, loopdev, tmp_path):
    """fio with verification runs while the device is suspended and
    resumed, its table reloaded, its main device and itself resized,
    blocks remapped, and its removal asked for (deferred: it is open; fio
    opens it again for each of its loops, through a descriptor the test
    holds); nothing hangs, fio sees no error and no bad data, and the
    device goes away once closed, detached from the pool."""
    import time
    backing = loopdev(32)
    lv = dm.create(f"0 {16 << 11} linear {backing} 0", hint="lv")
    dev = RemapDev(env.dm, dm.path(lv), env.pool, dev_id=6, sectors=16 << 11)
    dev.force(0)
    table = dmsetup("table", dev.name).strip()
    holder = os.open(dev.path, os.O_RDONLY)
    fio = subprocess_fio(dev.path, tmp_path, size_mib=8, runtime=40, fd=holder)
    try:
        for i in range(3):
            dmsetup("suspend", dev.name)
            time.sleep(0.3)
            dmsetup("resume", dev.name)
            dm.reload(dev.name, table)                  # same table again
            dev.force((100 + i) * BS)
        dm.reload(lv, f"0 {32 << 11} linear {backing} 0")   # lvextend
        grown = table.replace(f"0 {16 << 11} remap", f"0 {32 << 11} remap")
        dm.reload(dev.name, grown)
        assert blockdev_sectors(dev.path) == 32 << 11
        dev.force(5000 * BS)                            # beyond the old end
        assert sorted(dev.remaps()) == [0, 100, 101, 102, 5000]
        assert fio.poll() is None, "fio ended before the removal"
        dmsetup("remove", "--deferred", dev.name)
    finally:
        rc = fio.wait(timeout=300)
        os.close(holder)
    out = fio.stdout.read()
    assert rc == 0 and "err= 0" in out, out
    assert wait_for(lambda: dev.name not in dm_names(), timeout=30)
    env.dm.forget(dev.name)
    assert pool_attr(env.pool, "attached_devices") == "0"


def test_sysfs_device_directory(env):
    dev = RemapDev(env.dm, env.main, env.pool, dev_id=12)
    base = f"/sys/module/dm_remap/pools/{env.pool}/devices/12"
    dev.force(0)
    pread(dev.path, 0, BLOCK)

    def attr(n):
        with open(f"{base}/{n}") as f:
            return f.read().strip()

    st = os.stat(env.main)
    assert attr("main_dev") == f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    dst = os.stat(dev.path)
    assert attr("dev") == f"{os.major(dst.st_rdev)}:{os.minor(dst.st_rdev)}"
    assert attr("remaps") == "1" and attr("pending") == "0"
    assert int(attr("remapped_ios")) >= 1
    assert attr("read_errors") == "0" and attr("write_errors") == "0"
    # One remap: the smallest table (64 slots), within the fixed allowance.
    assert 64 * 16 < int(attr("index_bytes")) <= INDEX_FIXED_BYTES
    with open(f"{base}/dm/dev") as f:           # the link leads to the dm disk
        assert f.read().strip() == attr("dev")
    with pytest.raises(OSError):
        with open(f"{base}/remaps", "w") as f:
            f.write("0")
    dev.remove()
    assert not os.path.exists(base)


# Memory of a device's index (Documentation/design-index.md): at most 32
# bytes per remap plus this much per device (the region bitmap at its
# minimum geometry, at most 8 KiB with its rounding; a page of rounding of
# the slots; the header).
INDEX_FIXED_BYTES = 12800


def test_ten_thousand_remaps_route_every_block(dm, loopdev, tmp_path):
    """A pool holding 10,000 remaps of one device (mkpool) on a 4 GiB main
    device: the index is then larger than its minimum and its
    region filter finer than the minimum one (a region of 8 blocks instead
    of 16), a geometry the small tests never reach.  Every remapped block
    and both its neighbours are written in one bio each (normal, remapped,
    normal), read back through the device, and found on their own side."""
    n, dev_id, slot = 10000, 9, 2

    def data(b):
        return pattern(f"b{b}", BLOCK)        # what main block b holds
    main = loopdev(4096)                        # sparse: 2^20 blocks
    spare = loopdev(64)
    nblocks = blockdev_sectors(main) // BS
    expected = mkpool(spare, main, dev_id, 7, n, tmp_path)
    mgr = Manager(dm)
    mgr.resume(slot, spare)
    try:
        dev = RemapDev(dm, main, slot, dev_id=dev_id)
        assert dev.remaps() == expected
        st = dev.status()
        assert (st["remaps"], st["pending"], st["state"]) == (n, 0, "ok")
        # The index in kernel memory: within 32 bytes per remap, as the
        # allocator hands it out (kmalloc would round 260 KiB up to 512).
        with open(f"/sys/module/dm_remap/pools/{slot}/devices/{dev_id}/index_bytes") as f:
            index_bytes = int(f.read())
        assert 16 * n < index_bytes <= 32 * n + INDEX_FIXED_BYTES, index_bytes

        def span(b):
            return max(b - 1, 0), min(b + 1, nblocks - 1)

        fd = os.open(dev.path, os.O_RDWR | os.O_DIRECT)
        buf = mmap.mmap(-1, 3 * BLOCK)
        written = set()
        try:
            for b in sorted(expected):
                lo, hi = span(b)
                out = b"".join(data(x) for x in range(lo, hi + 1))
                buf[:len(out)] = out
                assert os.pwritev(fd, [memoryview(buf)[:len(out)]], lo * BLOCK) == len(out)
                written.update(range(lo, hi + 1))
            os.fsync(fd)
            for b in sorted(expected):
                lo, hi = span(b)
                size = (hi - lo + 1) * BLOCK
                assert os.preadv(fd, [memoryview(buf)[:size]], lo * BLOCK) == size
                got = bytes(buf[:size])
                want = b"".join(data(x) for x in range(lo, hi + 1))
                assert got == want, f"blocks {lo}..{hi} read back wrong through the device"
        finally:
            os.close(fd)
        # Each block on its own side: remapped ones on the spare only.
        zero = bytes(BLOCK)
        for x in sorted(written):
            want = zero if x in expected else data(x)
            assert pread(main, x * BLOCK, BLOCK) == want, f"main block {x}"
        ds = data_start(spare)
        by_spare = {s: b for b, (s, _) in expected.items()}
        chunk = 256
        for first in range(0, n, chunk):
            count = min(chunk, n - first)
            area = pread(spare, (ds + first * BS) * 512, count * BLOCK)
            for i in range(count):
                assert area[i * BLOCK:(i + 1) * BLOCK] == data(by_spare[first + i]), \
                    f"spare block {first + i}"
        st = dev.status()
        assert st["remapped_ios"] >= 2 * n and st["read_errors"] == st["write_errors"] == 0
        # New remaps join the big index: their data is copied, then redirected.
        new = sorted(x for x in written if x not in expected)[:3]
        for x in new:
            dev.force(x * BS)
        got = dev.remaps()
        assert sorted(set(got) - set(expected)) == new and len(got) == n + 3
        for x in new:
            assert pread(dev.path, x * BLOCK, BLOCK) == data(x)
            assert pread(spare, (ds + got[x][0] * BS) * 512, BLOCK) == data(x)
        dev.remove()
        dev = RemapDev(dm, main, slot, dev_id=dev_id)
        assert dev.remaps() == got
        for x in new + sorted(expected)[:50]:
            assert pread(dev.path, x * BLOCK, BLOCK) == data(x)
        dev.remove()
    finally:
        free_pool(mgr, dm, slot)


def test_index_grows_past_its_first_table(dm, loopdev, tmp_path):
    """38 remaps (written by build/mkpool) give the smallest table, 64 slots;
    the 49th remap no longer fits its load limit, so the index is rebuilt
    bigger and the old one freed after a grace period.  Every remap, old
    and new, still routes its block, the memory stays within its bound, and
    the rebuilt index is the one a re-created device gets."""
    n, dev_id, slot = 38, 4, 3
    main = loopdev(16)                          # 4096 blocks
    spare = loopdev(16)
    nblocks = blockdev_sectors(main) // BS
    first = set(mkpool(spare, main, dev_id, 3, n, tmp_path))
    mgr = Manager(dm)
    mgr.resume(slot, spare)
    try:
        dev = RemapDev(dm, main, slot, dev_id=dev_id)
        data = pattern("grow", nblocks * BLOCK)
        pwrite(dev.path, 0, data)
        new = [b for b in range(0, nblocks, 97) if b not in first][:11]
        for b in new:
            dev.force(b * BS)
        got = dev.remaps()
        assert set(got) == first | set(new) and len(got) == n + 11
        assert pread(dev.path, 0, len(data)) == data
        on_main = pread(main, 0, len(data))
        for b in new:
            blk = slice(b * BLOCK, (b + 1) * BLOCK)
            assert on_main[blk] == data[blk], f"block {b}: its copy source changed"
        # Written again after the rebuild: remapped blocks go to the spare only.
        data2 = pattern("after", nblocks * BLOCK)
        pwrite(dev.path, 0, data2)
        assert pread(dev.path, 0, len(data2)) == data2
        on_main = pread(main, 0, len(data2))
        ds = data_start(spare)
        for b in sorted(got):
            blk = slice(b * BLOCK, (b + 1) * BLOCK)
            assert on_main[blk] != data2[blk], f"block {b} written to main"
            assert pread(spare, (ds + got[b][0] * BS) * 512, BLOCK) == data2[blk]
        with open(f"/sys/module/dm_remap/pools/{slot}/devices/{dev_id}/index_bytes") as f:
            assert 0 < int(f.read()) <= 32 * len(got) + INDEX_FIXED_BYTES
        dev.remove()
        dev = RemapDev(dm, main, slot, dev_id=dev_id)
        assert dev.remaps() == got
        assert pread(dev.path, 0, len(data2)) == data2
        dev.remove()
    finally:
        free_pool(mgr, dm, slot)
