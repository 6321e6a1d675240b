# SPDX-License-Identifier: GPL-2.0-only
"""Automatic error handling: write errors remapped, read errors isolated as
pending blocks, healing by overwrite, triage, exhaustion and dm events."""
import errno
import os
import subprocess
import threading
import time

import pytest

from dmtools import (FIO_VERIFY, CmdError, blockdev_sectors, dmsetup, pattern, pread, pwrite, run,
                     segments_table, wait_for)
from pools import Manager, PoolEnv, RemapDev, pool_active, pool_attr, refused

BLOCK = 4096
BS = BLOCK // 512
MiB = 1 << 20

# Kernel log lines these tests provoke on purpose (I/O errors of dm-error).
pytestmark = pytest.mark.allow_kmsg(r"I/O error|Buffer I/O error")


@pytest.fixture
def env(dm, loopdev):
    """Pool in slot 2 on a 64 MiB spare; a 16 MiB main backing device."""
    e = PoolEnv(dm, loopdev, 2)
    yield e
    e.close()


def bad_main(env, bad_blocks):
    """A main device over env.backing failing the given blocks."""
    n = blockdev_sectors(env.backing)
    name = env.dm.create(segments_table(env.backing, n, [(b * BS, BS) for b in bad_blocks]),
                         hint="bad")
    return name


def set_bad(env, name, bad_blocks):
    n = blockdev_sectors(env.backing)
    env.dm.reload(name, segments_table(env.backing, n, [(b * BS, BS) for b in bad_blocks]))


def test_writes_across_bad_blocks_succeed_and_only_bad_blocks_are_remapped(env):
    main = bad_main(env, [8, 9, 100])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    data = pattern("w", MiB)
    pwrite(dev.path, 0, data)                     # one big write over the bad blocks
    assert pread(dev.path, 0, MiB) == data
    assert sorted(dev.remaps()) == [8, 9, 100]
    st = dev.status()
    assert st["remaps"] == 3 and st["pending"] == 0 and st["state"] == "ok"
    assert st["write_errors"] >= 1
    # Small and partial writes into a bad block are absorbed too.
    set_bad(env, main, [8, 9, 100, 200])
    pwrite(dev.path, 0, pattern("base", MiB))
    pwrite(dev.path, 200 * BLOCK + 1024, pattern("part", 1024))
    expect = bytearray(pattern("base", MiB))
    expect[200 * BLOCK + 1024:200 * BLOCK + 2048] = pattern("part", 1024)
    assert pread(dev.path, 0, MiB) == bytes(expect)
    assert sorted(dev.remaps()) == [8, 9, 100, 200]


def test_read_errors_fail_exactly_the_unreadable_blocks(env):
    data = pattern("r", MiB)
    pwrite(env.backing, 0, data)
    main = bad_main(env, [5, 6])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    with pytest.raises(OSError) as e:
        pread(dev.path, 0, 16 * BLOCK)            # multi-block read over them
    assert e.value.errno == errno.EIO
    for b in range(16):
        if b in (5, 6):
            with pytest.raises(OSError) as e:
                pread(dev.path, b * BLOCK, BLOCK)
            assert e.value.errno == errno.EIO
        else:
            assert pread(dev.path, b * BLOCK, BLOCK) == data[b * BLOCK:(b + 1) * BLOCK]
    assert dev.remaps() == {5: (dev.remaps()[5][0], "pending"),
                            6: (dev.remaps()[6][0], "pending")}
    st = dev.status()
    assert st["pending"] == 2 and st["state"] == "degraded" and st["read_errors"] >= 1
    # The medium heals (e.g. the disk reallocated it): the block still fails,
    # its data is gone; never zeros, never the stale data.
    set_bad(env, main, [])
    with pytest.raises(OSError):
        pread(dev.path, 5 * BLOCK, BLOCK)
    # A buffered multi-block read returns the readable data around the
    # lost blocks: up to the first one, and from after the last one.
    fd = os.open(dev.path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert os.pread(fd, 8 * BLOCK, 0) == data[:5 * BLOCK]
        assert os.pread(fd, 9 * BLOCK, 7 * BLOCK) == data[7 * BLOCK:16 * BLOCK]
    finally:
        os.close(fd)


def test_overwrite_heals_a_pending_block(env):
    pwrite(env.backing, 0, pattern("h", MiB))
    main = bad_main(env, [3])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    with pytest.raises(OSError):
        pread(dev.path, 3 * BLOCK, BLOCK)
    assert dev.status()["pending"] == 1
    with pytest.raises(OSError):                  # a partial write cannot heal it
        pwrite(dev.path, 3 * BLOCK, pattern("x", 512))
    pwrite(dev.path, 3 * BLOCK, pattern("new", BLOCK))
    assert pread(dev.path, 3 * BLOCK, BLOCK) == pattern("new", BLOCK)
    st = dev.status()
    assert st["pending"] == 0 and st["remaps"] == 1 and st["state"] == "ok"
    assert list(dev.remaps().values())[0][1] == "mapped"


def test_a_block_lost_and_overwritten_in_one_batch_is_healed(env):
    """One repair batch: a read loses 16 blocks (pending), then a whole-block
    write to one of them heals it.  The write must read back, in the index
    and after the device is made again.  Both bios fail on the main device
    while the repair worker is busy with an earlier read (block 100, slow to
    fail), so they reach it together; 16 fixes fill the batch's first array,
    which the heal must not grow under its own entry."""
    pwrite(env.backing, 0, pattern("batch", MiB))
    n = blockdev_sectors(env.backing)
    err = env.dm.create(f"0 {BS} error", hint="err")
    slow = env.dm.create(f"0 {BS} delay {env.dm.path(err)} 0 3000", hint="slow")
    main = env.dm.create("\n".join([
        segments_table(env.backing, 100 * BS, [(0, 16 * BS)]),
        f"{100 * BS} {BS} linear {env.dm.path(slow)} 0",
        f"{101 * BS} {n - 101 * BS} linear {env.backing} {101 * BS}"]), hint="bad")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    new = pattern("healed", BLOCK)
    result = {}

    def run_io(key, fn):
        try:
            result[key] = fn()
        except OSError as e:
            result[key] = e.errno
    threads = {
        "slow": threading.Thread(target=run_io, args=("slow", lambda: pread(dev.path, 100 * BLOCK, BLOCK))),
        "lost": threading.Thread(target=run_io, args=("lost", lambda: pread(dev.path, 0, 16 * BLOCK))),
        "heal": threading.Thread(target=run_io, args=("heal", lambda: pwrite(dev.path, 5 * BLOCK, new))),
    }
    try:
        threads["slow"].start()
        # Its first read failed: the worker now retries it, 3 s a read: about
        # 12 s before its batch ends.
        assert wait_for(lambda: dev.status()["read_errors"] >= 1, timeout=30)
        threads["lost"].start()
        assert wait_for(lambda: dev.status()["read_errors"] >= 2, timeout=30)
        threads["heal"].start()
        assert wait_for(lambda: dev.status()["write_errors"] >= 1, timeout=30)
        # Both queued while the worker was still on block 100.
        assert threads["slow"].is_alive()
    finally:
        for t in threads.values():
            t.join(timeout=120)
    assert result == {"slow": errno.EIO, "lost": errno.EIO, "heal": BLOCK}
    for check in range(2):
        assert pread(dev.path, 5 * BLOCK, BLOCK) == new
        remaps = {b: st for b, (_, st) in dev.remaps().items()}
        assert remaps == {**{b: "pending" for b in range(16) if b != 5}, 5: "mapped",
                          100: "pending"}
        st = dev.status()
        assert st["pending"] == 16 and st["remaps"] == 1
        assert pool_attr(env.pool, "blocks_used") == "1"
        assert pool_attr(env.pool, "blocks_pending") == "16"
        if not check:
            dev.remove()
            dev = RemapDev(env.dm, env.dm.path(main), env.pool)


def test_discard_and_write_zeroes_over_a_pending_block(env):
    """A discard over a pending block has nothing to drop: it succeeds and
    the block stays pending (it failed the whole discard with EIO).  A
    write-zeroes of the whole block heals it like a write (it was killed).
    fallocate's punch hole sends write-zeroes with no fallback to writes of
    zeroes (BLKZEROOUT would fall back and hide a refusal)."""
    pwrite(env.backing, 0, pattern("p", MiB))
    main = bad_main(env, [7])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool, dev_id=3)
    with pytest.raises(OSError):
        pread(dev.path, 7 * BLOCK, BLOCK)
    # The main device takes discard and write-zeroes again (the error
    # target does neither); a reload makes the remap device take them too.
    set_bad(env, main, [])
    env.dm.reload(dev.name, f"0 {dev.sectors} remap 3 {env.dm.path(main)} {env.pool}")
    run("blkdiscard", "-f", "-o", str(4 * BLOCK), "-l", str(8 * BLOCK), dev.path)
    assert dev.status()["pending"] == 1
    with pytest.raises(OSError):
        pread(dev.path, 7 * BLOCK, BLOCK)
    with pytest.raises(CmdError):
        run("fallocate", "-p", "-o", str(7 * BLOCK), "-l", "512", dev.path)
    assert dev.status()["pending"] == 1
    run("fallocate", "-p", "-o", str(7 * BLOCK), "-l", str(BLOCK), dev.path)
    assert dev.status()["pending"] == 0
    assert [st for _, st in dev.remaps().values()] == ["mapped"]
    assert pread(dev.path, 7 * BLOCK, BLOCK) == bytes(BLOCK)
    assert pread(dev.path, 6 * BLOCK, BLOCK) == bytes(BLOCK)          # discarded on main
    assert pread(dev.path, 12 * BLOCK, BLOCK) == pattern("p", MiB)[12 * BLOCK:13 * BLOCK]


def test_pending_blocks_survive_free_and_resume(env):
    pwrite(env.backing, 0, pattern("p", MiB))
    main = bad_main(env, [7])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool, dev_id=3)
    with pytest.raises(OSError):
        pread(dev.path, 7 * BLOCK, BLOCK)
    dev.remove()
    env.mgr.free(env.pool)
    set_bad(env, main, [])
    env.mgr.resume(env.pool, env.spare)
    dev = RemapDev(env.dm, env.dm.path(main), env.pool, dev_id=3)
    assert [st for _, st in dev.remaps().values()] == ["pending"]
    with pytest.raises(OSError):
        pread(dev.path, 7 * BLOCK, BLOCK)


def test_wholesale_failure_does_not_drain_the_pool(env):
    n = blockdev_sectors(env.backing)
    dead = env.dm.create(f"0 {n} error", hint="bad")
    dev = RemapDev(env.dm, env.dm.path(dead), env.pool)
    for b in range(0, 64, 8):
        with pytest.raises(OSError) as e:
            pwrite(dev.path, b * BLOCK, pattern("dead", BLOCK))
        assert e.value.errno == errno.EIO
    with pytest.raises(OSError):
        pread(dev.path, 0, BLOCK)
    assert dev.remaps() == {}
    assert pool_attr(env.pool, "blocks_used") == "0"
    st = dev.status()
    assert st["state"] == "fail" and st["write_errors"] >= 8


def test_a_main_device_dropping_out_during_a_repair_loses_no_block(env, kmsg):
    """One read over two unreadable blocks, 10 and 20, each failing after
    3 s: block 10 is recorded pending, then the whole main device drops
    out while block 20 is being retried.  Block 20 must not be recorded as
    lost: the device is probed again before it is, and now fails
    everywhere, so the error passes through.  The rest of the main device
    goes through `mid`, which turns to errors: a reload of the main device
    itself would let dm-delay send block 20's held read at once, and the
    probe after it could reach the old table before the suspend holds it."""
    base = pattern("drop", 128 << 10)
    pwrite(env.backing, 0, base)
    n = blockdev_sectors(env.backing)
    err = env.dm.create(f"0 {n} error", hint="err")
    mid = env.dm.create(f"0 {n} linear {env.backing} 0", hint="mid")
    slow_bad = segments_table(env.dm.path(mid), n, [(10 * BS, BS), (20 * BS, BS)],
                              target="delay",
                              target_args=env.dm.path(err) + " {start} 3000")
    main = env.dm.create(slow_bad, hint="bad")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    result = []

    def read():
        try:
            pread(dev.path, 10 * BLOCK, 11 * BLOCK)
            result.append(0)
        except OSError as e:
            result.append(e.errno)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        seen = []
        assert wait_for(lambda: seen.extend(kmsg.read()) or
                        any("block 10 is unreadable: now pending" in ln for ln in seen),
                        timeout=120)
        env.dm.reload(mid, f"0 {n} error")
    finally:
        reader.join(timeout=300)
    assert result == [errno.EIO]
    assert {b: st for b, (_, st) in dev.remaps().items()} == {10: "pending"}
    assert dev.status()["state"] == "fail"
    # Back again: the rest reads (which ends the state), and block 20,
    # still unreadable, is pending now.
    set_bad(env, main, [10, 20])
    assert pread(dev.path, 11 * BLOCK, 9 * BLOCK) == base[11 * BLOCK:20 * BLOCK]
    with pytest.raises(OSError):
        pread(dev.path, 20 * BLOCK, BLOCK)
    assert {b: st for b, (_, st) in dev.remaps().items()} == {10: "pending", 20: "pending"}
    assert dev.status()["state"] == "degraded"


def test_a_read_that_succeeds_on_retry_returns_the_data(env):
    """Block 10 fails its first read (after 3 s); the fault is gone before
    the retries.  The caller gets the data, no error, and nothing is
    recorded or moved.  Block 10 of the main device goes through `mid`, a
    linear device over a 3 s delay over an error device: `mid` is suspended
    while the first read is held below it (the suspend waits for that read,
    which then fails), so the retries wait in `mid` until it is resumed
    over the good data."""
    base = pattern("retry", 64 << 10)
    pwrite(env.backing, 0, base)
    n = blockdev_sectors(env.backing)
    err = env.dm.create(f"0 {BS} error", hint="err")
    slow = env.dm.create(f"0 {BS} delay {env.dm.path(err)} 0 3000", hint="slow")
    mid = env.dm.create(f"0 {BS} linear {env.dm.path(slow)} 0", hint="mid")
    main = env.dm.create(segments_table(env.backing, n, [(10 * BS, BS)], target="linear",
                                        target_args=env.dm.path(mid) + " 0"), hint="bad")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    result = []

    def read():
        try:
            result.append(pread(dev.path, 8 * BLOCK, 4 * BLOCK))
        except OSError as e:
            result.append(e.errno)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        def held():
            """dm-delay's status: the reads, writes and flushes it holds."""
            return int(dmsetup("status", slow).split()[3]) > 0
        assert wait_for(held, timeout=60)
        env.dm.reload(mid, f"0 {BS} linear {env.backing} {10 * BS}")
    finally:
        reader.join(timeout=300)
    assert result == [base[8 * BLOCK:12 * BLOCK]]
    st = dev.status()
    assert st["read_errors"] == 1 and st["remaps"] == 0 and st["pending"] == 0, st
    assert st["state"] == "ok"
    assert dev.remaps() == {}
    assert pool_attr(env.pool, "blocks_used") == "0"


def test_a_main_device_taking_no_writes_does_not_drain_the_pool(env):
    """A main device that reads but fails every write (gone read-only):
    a few blocks move, then a rewrite of a block elsewhere fails too (that
    block moves with its data), the device's state is `fail` and its write
    errors pass through until a write to it succeeds.  A long run of bad
    blocks on a device that takes writes elsewhere moves every one of
    them."""
    base = pattern("ro", 1 * MiB)
    pwrite(env.backing, 0, base)
    n = blockdev_sectors(env.backing)
    # Blocks 100-139 fail writes and reads; the rest of the device works.
    main = bad_main(env, range(100, 140))
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    expect = bytearray(base)
    for b in range(100, 140):
        pwrite(dev.path, b * BLOCK, pattern(f"run{b}", BLOCK), sync=False)
        expect[b * BLOCK:(b + 1) * BLOCK] = pattern(f"run{b}", BLOCK)
    assert sorted(dev.remaps()) == list(range(100, 140))
    assert dev.status()["state"] == "ok"
    pwrite(dev.path, 50 * BLOCK, pattern("w50", BLOCK), sync=False)
    expect[50 * BLOCK:51 * BLOCK] = pattern("w50", BLOCK)
    # Now the whole device fails writes (dm-flakey error_writes) but reads.
    name = os.path.basename(main)
    env.dm.reload(name, f"0 {n} flakey {env.backing} 0 0 1 1 error_writes")
    event = event_nr(dev.name)
    written = []
    for b in range(0, 48, 2):
        try:
            # No O_SYNC: dm-flakey would fail the flush too.
            pwrite(dev.path, b * BLOCK, pattern(f"w{b}", BLOCK), sync=False)
            assert len(written) == b // 2, "a write succeeded after one failed"
            written.append(b)
        except OSError as e:
            assert e.errno == errno.EIO
    assert 0 < len(written) <= 8
    # The blocks the check rewrote without success moved with their data.
    probed = set(dev.remaps()) - set(written) - set(range(100, 140))
    assert set(written) <= set(dev.remaps()) and 0 < len(probed) <= 3
    st = dev.status()
    assert st["state"] == "fail"
    assert event_nr(dev.name) > event
    health = f"/sys/module/dm_remap/pools/{env.pool}/devices/{dev.dev_id}/health"
    with open(health) as f:
        assert f.read().strip() == "0"
    for b in written:
        expect[b * BLOCK:(b + 1) * BLOCK] = pattern(f"w{b}", BLOCK)
    assert pread(dev.path, 0, 1 * MiB) == bytes(expect)
    # Reads do not end it; a write that the main device takes does.
    assert dev.status()["state"] == "fail"
    env.dm.reload(name, segments_table(env.backing, n, [(b * BS, BS) for b in range(100, 140)]))
    pwrite(dev.path, 60 * BLOCK, pattern("w60", BLOCK), sync=False)
    assert dev.status()["state"] == "ok"
    with open(health) as f:
        assert int(f.read()) > 0
    assert 60 not in dev.remaps()
    # And the next write error moves its block again.
    env.dm.reload(name, f"0 {n} flakey {env.backing} 0 0 1 1 error_writes")
    pwrite(dev.path, 62 * BLOCK, pattern("w62", BLOCK), sync=False)
    assert 62 in dev.remaps()
    expect[60 * BLOCK:61 * BLOCK] = pattern("w60", BLOCK)
    expect[62 * BLOCK:63 * BLOCK] = pattern("w62", BLOCK)
    assert pread(dev.path, 0, 1 * MiB) == bytes(expect)


def sectors_written(dev):
    """Sectors written to block device dev so far (its stat file)."""
    rdev = os.stat(dev).st_rdev
    with open(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/stat") as f:
        return int(f.read().split()[6])


def test_the_write_check_leaves_the_block_in_repair_alone(env):
    """Blocks 0, 2, ..., 14 fail writes (but read); the rest of the device
    works.  The eighth write error in a row, on block 0, makes dm-remap
    check that the device takes writes elsewhere, starting at block 0:
    that check must pass over block 0, the block being repaired, and the
    write of it must succeed on the spare like the seven before."""
    base = pattern("probe", 64 << 10)
    pwrite(env.backing, 0, base)
    n = blockdev_sectors(env.backing)
    bad = list(range(2, 16, 2)) + [0]
    main = env.dm.create(segments_table(env.backing, n, [(b * BS, BS) for b in bad],
                                        target="flakey",
                                        target_args="{dev} {start} 0 1 1 error_writes"),
                         hint="bad")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    expect = bytearray(base)
    written = sectors_written(env.backing)
    for b in bad:
        # No O_SYNC: dm-flakey would fail the flush too.
        pwrite(dev.path, b * BLOCK, pattern(f"p{b}", BLOCK), sync=False)
        expect[b * BLOCK:(b + 1) * BLOCK] = pattern(f"p{b}", BLOCK)
    # dm-flakey passes no write of a bad block down: all the main device
    # wrote is the check's rewrite of one block (block 1, its own data).
    assert sectors_written(env.backing) - written == BS
    assert sorted(dev.remaps()) == sorted(bad)
    assert dev.status()["state"] == "ok"
    assert pool_attr(env.pool, "blocks_used") == str(len(bad))
    assert pread(dev.path, 0, 64 << 10) == bytes(expect)
    # What the pool recorded loads again: one mapping per block.
    dev.remove()
    env.mgr.free(env.pool)
    env.mgr.resume(env.pool, env.spare)
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    assert sorted(dev.remaps()) == sorted(bad)
    assert pread(dev.path, 0, 64 << 10) == bytes(expect)


def event_nr(name):
    return int(dmsetup("info", "-c", "--noheadings", "-o", "events", name).strip())


def wait_event_in_background(name):
    nr = event_nr(name)
    return subprocess.Popen(["dmsetup", "wait", name, str(nr)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_exhaustion_passes_errors_and_raises_an_event(env, loopdev):
    # A second pool with very few spare blocks.
    small_file = run("losetup", "-n", "-O", "BACK-FILE", loopdev(8)).strip()
    small = run("losetup", "--sizelimit", str(300 * 1024), "-f", "--show",
                small_file).strip()
    try:
        env.mgr.format(small)
        env.mgr.resume(9, small)
        total = int(pool_attr(9, "blocks_total"))
        bad = list(range(10, 10 + total + 3))
        main = bad_main(env, bad)
        dev = RemapDev(env.dm, env.dm.path(main), 9)
        # No low-water event: the one waited for is exhaustion's.
        with open("/sys/module/dm_remap/pools/9/low_water", "w") as f:
            f.write("0")
        for b in bad[:total]:
            pwrite(dev.path, b * BLOCK, pattern(f"e{b}", BLOCK))
        assert pool_attr(9, "blocks_free") == "0"
        waiter = wait_event_in_background(dev.name)
        failed = 0
        for b in bad[total:]:
            try:
                pwrite(dev.path, b * BLOCK, pattern(f"e{b}", BLOCK))
            except OSError as e:
                assert e.errno == errno.EIO
                failed += 1
        assert failed == 3
        assert len(dev.remaps()) == total
        assert pool_attr(9, "blocks_free") == "0"
        assert pool_attr(9, "state") == "exhausted"
        assert dev.status()["state"] == "degraded"
        assert waiter.wait(timeout=30) == 0
        assert "exhausted" in env.mgr.msg("list")
        dev.remove()
        # Blocks freed end the state: a forced identity change drops the
        # remaps of dev_id 1, and once that is durable they are free.
        other = RemapDev(env.dm, loopdev(8), 9, opts="1 force")
        assert wait_for(lambda: pool_attr(9, "blocks_free") == str(total))
        assert pool_attr(9, "state") == "ok"
        assert other.status()["state"] == "ok"
        other.remove()
        env.mgr.free(9)
    finally:
        run("losetup", "-d", small)


def test_low_water_mark_raises_an_event(env):
    """Bad values are refused and change nothing; a block taken that
    leaves low_water free raises no event, the one that leaves fewer does,
    and not again until the free blocks were above the mark."""
    total = int(pool_attr(env.pool, "blocks_total"))
    lw = f"/sys/module/dm_remap/pools/{env.pool}/low_water"
    before = pool_attr(env.pool, "low_water")
    for bad in (str(total + 1), "many", "-1"):
        with pytest.raises(OSError) as e:
            with open(lw, "w") as f:
                f.write(bad)
        assert e.value.errno == errno.EINVAL
        assert pool_attr(env.pool, "low_water") == before
    free = int(pool_attr(env.pool, "blocks_free"))
    with open(lw, "w") as f:
        f.write(str(free - 1))
    assert pool_attr(env.pool, "low_water") == str(free - 1)
    main = bad_main(env, [4, 5])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    events = event_nr(dev.name)
    pwrite(dev.path, 4 * BLOCK, pattern("lw4", BLOCK))      # free - 1 left: at the mark
    assert event_nr(dev.name) == events
    waiter = wait_event_in_background(dev.name)
    pwrite(dev.path, 5 * BLOCK, pattern("lw5", BLOCK))      # free - 2: below it
    assert waiter.wait(timeout=30) == 0
    # At the mark again (a new one): a block taken and given back (a forced
    # remap of a block that does not read) raises the event once, not at
    # every try.
    with open(lw, "w") as f:
        f.write(str(free - 2))
    set_bad(env, main, [4, 5, 7])
    for i in range(3):
        events = event_nr(dev.name)
        with pytest.raises(CmdError):
            dev.force(7 * BS)
        assert pool_attr(env.pool, "blocks_free") == str(free - 2)
        assert (event_nr(dev.name) > events) == (i == 0), f"try {i}"


def test_fio_verify_while_the_bad_block_set_grows(env, tmp_path):
    """fio (3 jobs, random reads and writes, verified) over a main device
    whose set of blocks that fail writes grows during the run."""
    main = bad_main(env, [])
    n = blockdev_sectors(env.backing)
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    fio = subprocess.Popen(
        ["fio", "--name=grow", f"--filename={dev.path}", "--direct=1", "--ioengine=psync",
         "--rw=randrw", "--bs=4k", "--numjobs=3", "--offset_increment=5M",
         "--size=4M", "--runtime=25", *FIO_VERIFY, "--verify_backlog=32",
         "--group_reporting"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
    bad = []
    try:
        for step in range(6):
            time.sleep(3)
            bad += [b for b in (step * 150 + 7, step * 150 + 8, step * 150 + 2077,
                                step * 150 + 3001) if b * BS < n]
            env.dm.reload(main, segments_table(
                env.backing, n, [(b * BS, BS) for b in bad], target="flakey",
                target_args="{dev} {start} 0 1 1 error_writes"))
    finally:
        rc = fio.wait(timeout=300)
    out = fio.stdout.read()
    assert rc == 0, out
    assert "err= 0" in out, out
    st = dev.status()
    assert st["read_errors"] == 0 and st["pending"] == 0
    # Only blocks that failed a write were remapped.
    assert set(dev.remaps()) <= set(bad)
    assert st["write_errors"] >= 1 and st["remaps"] >= 1


def test_partial_write_into_a_write_failing_block_keeps_the_rest(env):
    """The block fails writes but still reads: the rest of the block is
    read from the main device and the write laid over it on the spare."""
    base = pattern("rest", 64 << 10)
    pwrite(env.backing, 0, base)
    n = blockdev_sectors(env.backing)
    main = env.dm.create(segments_table(env.backing, n, [(9 * BS, BS)], target="flakey",
                                        target_args="{dev} {start} 0 1 1 error_writes"),
                         hint="bad")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    # No O_SYNC: dm-flakey would fail the flush too (a real disk does not).
    pwrite(dev.path, 9 * BLOCK + 512, pattern("mid", 1024), sync=False)
    expect = bytearray(base)
    expect[9 * BLOCK + 512:9 * BLOCK + 1536] = pattern("mid", 1024)
    assert pread(dev.path, 0, 64 << 10) == bytes(expect)
    assert list(dev.remaps()) == [9]


def test_partial_write_over_unreadable_sectors_keeps_the_rest(env):
    """The sectors written fail reads and writes, the rest of the block
    reads: only the rest is read from the main device (before, the whole
    block was, which failed, and the write got EIO)."""
    base = pattern("rest", 64 << 10)
    pwrite(env.backing, 0, base)
    n = blockdev_sectors(env.backing)
    main = env.dm.create(segments_table(env.backing, n, [(9 * BS + 1, 2)]), hint="bad")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool)
    pwrite(dev.path, 9 * BLOCK + 512, pattern("mid", 1024))
    expect = bytearray(base)
    expect[9 * BLOCK + 512:9 * BLOCK + 1536] = pattern("mid", 1024)
    assert pread(dev.path, 0, 64 << 10) == bytes(expect)
    assert list(dev.remaps()) == [9]


def test_errors_in_a_partial_last_block_pass_through(env, kmsg):
    """A main device of 1001 sectors ends one sector into block 125, which
    has no spare block: a read or write error there is passed on and
    nothing is recorded (a pending record of it would make the pool fail
    its load checks), force_remap refuses it; the whole blocks before it
    are handled as anywhere else, and the pool resumes."""
    data = pattern("tail", MiB)
    pwrite(env.backing, 0, data)
    main = env.dm.create(f"0 1000 linear {env.backing} 0\n1000 1 error", hint="tail")
    dev = RemapDev(env.dm, env.dm.path(main), env.pool, dev_id=4)
    assert dev.sectors == 1001
    for off, n in [(1000, 1), (992, 9)]:
        with pytest.raises(OSError) as e:
            pread(dev.path, off * 512, n * 512)
        assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        pwrite(dev.path, 1000 * 512, pattern("w", 512))
    assert e.value.errno == errno.EIO
    assert dev.remaps() == {}
    assert any("error in block 125 (partial or past the recorded size)" in ln for ln in kmsg.read())
    with pytest.raises(CmdError):
        dev.force(1000)
    assert dev.remaps() == {}
    dev.force(999)                                # block 124, the last whole one
    assert list(dev.remaps()) == [124]
    assert pread(dev.path, 0, 1000 * 512) == data[:1000 * 512]
    dev.remove()
    env.mgr.free(env.pool)
    env.mgr.resume(env.pool, env.spare)
    dev = RemapDev(env.dm, env.dm.path(main), env.pool, dev_id=4)
    assert list(dev.remaps()) == [124]
    assert pread(dev.path, 0, 1000 * 512) == data[:1000 * 512]


def test_remaps_made_after_a_smaller_table_was_loaded_refuse_its_resume(env, loopdev, kmsg):
    """A table for a smaller main device is loaded (not yet live) under a
    dev_id without remaps.  The record keeps the live device's size, so a
    read error of the live table past the smaller size is recorded as
    usual; the smaller table may then not go live without force: its
    resume is refused and changes nothing.  The old table, loaded again,
    resumes with the block still pending, and the pool resumes afterwards."""
    from pools import devices
    n = blockdev_sectors(env.backing)
    main = bad_main(env, [3000])
    dev = RemapDev(env.dm, env.dm.path(main), env.pool, dev_id=6)
    before = devices(env.mgr, env.pool)[6]
    small = loopdev(8)
    assert 3000 * BS >= blockdev_sectors(small) and 3001 * BS <= n
    dmsetup("load", dev.name, "--table",
            f"0 {blockdev_sectors(small)} remap 6 {small} {env.pool}")
    assert devices(env.mgr, env.pool)[6] == before
    with pytest.raises(OSError) as e:
        pread(dev.path, 3000 * BLOCK, BLOCK)
    assert e.value.errno == errno.EIO
    assert [(b, st) for b, (_, st) in dev.remaps().items()] == [(3000, "pending")]
    kmsg.read()
    with pytest.raises(CmdError):
        dmsetup("resume", dev.name)
    log = kmsg.read()
    assert any("dev_id 6: Other device under a dev_id with remaps" in ln for ln in log), log
    assert devices(env.mgr, env.pool)[6] == {"sectors": n, "blocks": 1}
    # dm leaves the device suspended with the refused table.
    dmsetup("load", dev.name, "--table", f"0 {n} remap 6 {env.dm.path(main)} {env.pool}")
    dmsetup("resume", dev.name)
    assert list(dev.remaps()) == [3000]
    dev.remove()
    env.mgr.free(env.pool)
    env.mgr.resume(env.pool, env.spare)
    assert devices(env.mgr, env.pool)[6] == {"sectors": n, "blocks": 1}


def test_dev_id_twice_in_one_table_is_refused(env, loopdev):
    other = loopdev(16)
    n = 16 << 11
    with pytest.raises(CmdError):
        env.dm.create(f"0 {n} remap 7 {env.backing} {env.pool}\n"
                      f"{n} {n} remap 7 {other} {env.pool}", hint="two")


def test_a_second_load_replaces_the_inactive_table(env):
    """dm constructs a loaded table before it destroys the inactive one it
    replaces: with a live table that is three tables of one dev_id for a
    moment.  The second load works, as for any dm target (it was refused:
    'dev_id is in two tables already'), and the device keeps its remaps."""
    dev = RemapDev(env.dm, env.backing, env.pool, dev_id=5)
    dev.force(8 * 10)
    pwrite(dev.path, 10 * 4096, pattern("kept", 4096))
    n = dev.sectors
    dmsetup("load", dev.name, "--table", f"0 {n // 2} remap 5 {env.backing} {env.pool}")
    dmsetup("load", dev.name, "--table", f"0 {n - 8} remap 5 {env.backing} {env.pool}")
    assert "LIVE & INACTIVE" in dmsetup("info", dev.name)
    dmsetup("resume", dev.name)
    assert blockdev_sectors(dev.path) == n - 8         # the second table went live
    assert list(dev.remaps()) == [10]
    assert pread(dev.path, 10 * 4096, 4096) == pattern("kept", 4096)


def test_refused_create_leaves_the_owners_identity_alone(env, loopdev):
    from pools import devices
    RemapDev(env.dm, env.backing, env.pool, dev_id=5)
    before = devices(env.mgr, env.pool)[5]
    bigger = loopdev(32)
    with pytest.raises(CmdError):
        RemapDev(env.dm, bigger, env.pool, dev_id=5)
    assert devices(env.mgr, env.pool)[5] == before


@pytest.fixture
def dmspare(dm, loopdev):
    """A pool in slot 4 on a dm device over a 64 MiB loop device (so that
    parts of the spare can fail later): (manager, dm name of the spare,
    backing loop device, first data sector).  Frees the pool, also after a
    failure, before it removes the spare."""
    from pools import data_start, free_pool
    mgr = Manager(dm)
    backing = loopdev(64)
    n = blockdev_sectors(backing)
    spare = dm.create(f"0 {n} linear {backing} 0", hint="sparedev")
    mgr.format(dm.path(spare))
    mgr.resume(4, dm.path(spare))
    yield mgr, spare, backing, data_start(backing)
    free_pool(mgr, dm, 4, keep=(spare,))
    dm.remove(spare)


def block_6_remapped(dm, loopdev, linear=False):
    """A device in pool 4 over a new 16 MiB main device (with linear, a dm
    linear device over it, whose table a test may change), 64 KiB of data
    written, block 6 forced to the spare: (main, device, data)."""
    main = loopdev(16)
    if linear:
        main = dm.path(dm.create(f"0 {blockdev_sectors(main)} linear {main} 0", hint="main"))
    dev = RemapDev(dm, main, 4)
    base = pattern("base", 64 << 10)
    pwrite(dev.path, 0, base)
    dev.force(6 * BS)
    return main, dev, base


def test_spare_blocks_failing_under_io_are_retired_and_replaced(dm, loopdev, dmspare):
    """A remapped block whose spare block fails reads and writes moves to a
    new spare block (the old one retired, both in one commit): a whole-block
    write succeeds there; a partial write or a read cannot get the block's
    data back, fails with EIO and leaves the block pending, which a write
    of the whole block heals.  Nothing of it is lost over free/resume."""
    mgr, spare, backing, ds = dmspare
    main = loopdev(16)
    dev = RemapDev(dm, main, 4)
    base = pattern("base", 64 << 10)
    pwrite(dev.path, 0, base)
    for b in (3, 4, 5):
        dev.force(b * BS)
    assert dev.remaps() == {3: (0, "mapped"), 4: (1, "mapped"), 5: (2, "mapped")}
    # Spare blocks 0-2 fail every read and write from now on.
    n = blockdev_sectors(backing)
    dm.reload(spare, segments_table(backing, n, [(ds, 3 * BS)]))
    expect = bytearray(base)
    expect[3 * BLOCK:4 * BLOCK] = pattern("new3", BLOCK)
    pwrite(dev.path, 3 * BLOCK, pattern("new3", BLOCK))
    with pytest.raises(OSError) as e:
        pwrite(dev.path, 4 * BLOCK + 512, pattern("p4", 512))
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        pread(dev.path, 5 * BLOCK, BLOCK)
    assert e.value.errno == errno.EIO
    r = dev.remaps()
    assert [r[b][1] for b in (3, 4, 5)] == ["mapped", "pending", "pending"]
    assert not {r[b][0] for b in (3, 4, 5)} & {0, 1, 2}
    assert pool_attr(4, "blocks_retired") == "3"
    st = dev.status()
    assert (st["remaps"], st["pending"], st["state"]) == (1, 2, "degraded")
    for b in (4, 5):
        with pytest.raises(OSError) as e:
            pread(dev.path, b * BLOCK, BLOCK)
        assert e.value.errno == errno.EIO
    assert pread(dev.path, 3 * BLOCK, BLOCK) == expect[3 * BLOCK:4 * BLOCK]
    # A write of the whole block heals a pending one.
    pwrite(dev.path, 4 * BLOCK, pattern("new4", BLOCK))
    expect[4 * BLOCK:5 * BLOCK] = pattern("new4", BLOCK)
    assert dev.remaps()[4] == (r[4][0], "mapped")
    assert pread(dev.path, 0, 5 * BLOCK) == expect[:5 * BLOCK]
    # Durable: the same after the pool is freed and resumed.
    r = dev.remaps()
    dev.remove()
    mgr.free(4)
    mgr.resume(4, dm.path(spare))
    dev = RemapDev(dm, main, 4)
    assert dev.remaps() == r
    assert pool_attr(4, "blocks_retired") == "3"
    assert pread(dev.path, 0, 5 * BLOCK) == expect[:5 * BLOCK]


def test_a_spare_block_failing_writes_is_relocated_with_its_data(dm, loopdev, dmspare):
    """The spare block fails writes but still reads (a read-only view of
    it): a partial write to the remapped block succeeds, the rest of the
    block coming from the old spare block."""
    mgr, spare, backing, ds = dmspare
    main, dev, base = block_6_remapped(dm, loopdev)
    assert dev.remaps() == {6: (0, "mapped")}
    view = loopdev.read_only_view(backing, ds * 512, BLOCK)
    n = blockdev_sectors(backing)
    dm.reload(spare, "\n".join([f"0 {ds} linear {backing} 0",
                                f"{ds} {BS} linear {view} 0",
                                f"{ds + BS} {n - ds - BS} linear {backing} {ds + BS}"]))
    pwrite(dev.path, 6 * BLOCK + 1024, pattern("mid", 512))
    expect = bytearray(base)
    expect[6 * BLOCK + 1024:6 * BLOCK + 1536] = pattern("mid", 512)
    assert pread(dev.path, 0, 64 << 10) == bytes(expect)
    assert dev.remaps() == {6: (1, "mapped")}
    assert pool_attr(4, "blocks_retired") == "1"
    assert dev.status()["state"] == "ok"
    dev.remove()
    mgr.free(4)
    mgr.resume(4, dm.path(spare))
    dev = RemapDev(dm, main, 4)
    assert dev.remaps() == {6: (1, "mapped")}
    assert pread(dev.path, 0, 64 << 10) == bytes(expect)


@pytest.mark.parametrize("change", ["record", "relocation"])
def test_a_change_whose_commit_failed_is_taken_back(dm, loopdev, dmspare, change):
    """A commit fails (the spare's metadata area takes no writes): the
    change it carried is taken back in the pool as in the device's index,
    so the pool's counts are as before and a device created again on the
    failed pool finds what the disk has, not a remap the disk never got.
    record: a forced remap of block 2, which is then written on the main
    device; relocation: block 6 moving off its spare block, which fails."""
    mgr, spare, backing, ds = dmspare
    main, dev, base = block_6_remapped(dm, loopdev)
    keys = ("blocks_free", "blocks_used", "blocks_pending", "blocks_retired")
    counts = {k: pool_attr(4, k) for k in keys}
    remaps = dev.remaps()
    assert remaps == {6: (0, "mapped")}
    # The metadata fails, and with relocation spare block 0 (block 6's) too.
    bad = ds + BS if change == "relocation" else ds
    n = blockdev_sectors(backing)
    dm.reload(spare, f"0 {bad} error\n{bad} {n - bad} linear {backing} {bad}")
    expect = bytearray(base)
    if change == "record":
        refused(dev.force, 2 * BS)
        expect[2 * BLOCK:3 * BLOCK] = pattern("new", BLOCK)
        pwrite(dev.path, 2 * BLOCK, expect[2 * BLOCK:3 * BLOCK])
    else:
        with pytest.raises(OSError) as e:
            pwrite(dev.path, 6 * BLOCK, pattern("new", BLOCK))
        assert e.value.errno == errno.EIO
    assert pool_attr(4, "state") == "fail"

    def check():
        assert dev.remaps() == remaps
        assert {k: pool_attr(4, k) for k in keys} == counts
        if change == "record":
            assert pread(dev.path, 0, 64 << 10) == bytes(expect)
        else:
            assert pread(dev.path, 0, 6 * BLOCK) == bytes(expect[:6 * BLOCK])
            assert pread(dev.path, 7 * BLOCK, 9 * BLOCK) == bytes(expect[7 * BLOCK:])
    check()
    dev.remove()
    dev = RemapDev(dm, main, 4)
    check()
    dev.remove()
    refused(mgr.free, 4)                # released, but its last commit failed
    assert not pool_active(4)


def test_a_spare_failing_everywhere_retires_nothing(dm, loopdev, dmspare):
    """A spare that fails every I/O (pulled, dead): the I/O of remapped
    blocks fails with EIO, no spare block is retired, nothing is recorded
    (so no commit fails the pool), the device's state is `fail`; when the
    spare answers again, every block reads as it was and the state is
    `ok` again."""
    mgr, spare, backing, ds = dmspare
    main, dev, base = block_6_remapped(dm, loopdev)
    n = blockdev_sectors(backing)
    dm.reload(spare, f"0 {n} error")
    try:
        with pytest.raises(OSError) as e:
            pread(dev.path, 6 * BLOCK, BLOCK)
        assert e.value.errno == errno.EIO
        with pytest.raises(OSError) as e:
            pwrite(dev.path, 6 * BLOCK + 512, pattern("lost", 512))
        assert e.value.errno == errno.EIO
        assert pool_attr(4, "blocks_retired") == "0"
        assert dev.remaps() == {6: (0, "mapped")}
        assert dev.status()["state"] == "fail"
    finally:
        dm.reload(spare, f"0 {n} linear {backing} 0")
    assert pread(dev.path, 0, 64 << 10) == base
    assert pool_attr(4, "state") == "ok"
    assert dev.status()["state"] == "ok"


def test_a_spare_taking_no_writes_loses_few_blocks(dm, loopdev, dmspare):
    """A spare whose data area takes no writes but reads (a read-only view
    of it): the first failed write tries four new spare blocks, which are
    retired; then the device's state is `fail` and further failed writes,
    to remapped blocks or to a bad block of the main device, pass their
    error through without retiring more, until a write to the spare
    succeeds.  Reads keep working throughout."""
    mgr, spare, backing, ds = dmspare
    main, dev, base = block_6_remapped(dm, loopdev, linear=True)
    dev.force(7 * BS)
    # Block 9 of the main device fails writes and reads.
    main_back = dmsetup("table", os.path.basename(main)).split()[3]
    dm.reload(os.path.basename(main),
              segments_table(main_back, blockdev_sectors(main), [(9 * BS, BS)]))
    n = blockdev_sectors(backing)
    view = loopdev.read_only_view(backing, ds * 512, (n - ds) * 512)
    dm.reload(spare, f"0 {ds} linear {backing} 0\n{ds} {n - ds} linear {view} 0")
    for b in (6, 7, 6, 9):
        with pytest.raises(OSError) as e:
            pwrite(dev.path, b * BLOCK, pattern("no", BLOCK))
        assert e.value.errno == errno.EIO
    assert pool_attr(4, "blocks_retired") == "4"
    assert dev.remaps() == {6: (0, "mapped"), 7: (1, "mapped")}
    assert dev.status()["state"] == "fail"
    assert pread(dev.path, 0, 36 << 10) == base[:36 << 10]
    assert dev.status()["state"] == "fail"     # reads do not end it
    dm.reload(spare, f"0 {n} linear {backing} 0")
    pwrite(dev.path, 7 * BLOCK, pattern("yes", BLOCK))
    assert dev.status()["state"] == "ok"
    expect = bytearray(base)
    expect[7 * BLOCK:8 * BLOCK] = pattern("yes", BLOCK)
    assert pread(dev.path, 0, 36 << 10) == bytes(expect[:36 << 10])


def test_fio_verify_while_spare_blocks_fail_writes(dm, loopdev, dmspare, tmp_path):
    """fio (random 2 KiB reads and writes, 16 in flight, verified) over 64
    remapped blocks whose spare blocks start failing writes (but still
    read) during the run: each block written moves to a new spare block
    with its data, writes in flight to its other half included."""
    mgr, spare, backing, ds = dmspare
    main = loopdev(16)
    dev = RemapDev(dm, main, 4)
    for b in range(64):
        dev.force(b * BS)
    n = blockdev_sectors(backing)
    fio = subprocess.Popen(
        ["fio", "--name=sparefail", f"--filename={dev.path}", "--direct=1",
         "--ioengine=libaio", "--iodepth=16", "--rw=randrw", "--bs=2k", "--size=256k",
         "--runtime=20", *FIO_VERIFY, "--verify_backlog=32", "--serialize_overlap=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
    try:
        for step in range(1, 5):
            time.sleep(3)
            # Spare blocks [0, 16 * step) fail writes from now on.
            view = loopdev.read_only_view(backing, ds * 512, step * 16 * BLOCK)
            end = ds + step * 16 * BS
            dm.reload(spare, "\n".join([f"0 {ds} linear {backing} 0",
                                        f"{ds} {end - ds} linear {view} 0",
                                        f"{end} {n - end} linear {backing} {end}"]))
    finally:
        rc = fio.wait(timeout=300)
    out = fio.stdout.read()
    assert rc == 0 and "err= 0" in out, out
    remaps = dev.remaps()
    assert sorted(remaps) == list(range(64))
    assert {st for _, st in remaps.values()} == {"mapped"}
    moved = [b for b, (sp, _) in remaps.items() if sp >= 64]
    assert len(moved) >= 16
    assert pool_attr(4, "blocks_retired") == str(len(moved))
    assert dev.status()["state"] == "ok"


def test_a_failing_spare_block_is_retired_and_replaced(dm, loopdev):
    from pools import data_start
    mgr = Manager(dm)
    backing, main_back = loopdev(64), loopdev(16)
    n = blockdev_sectors(backing)
    spare = dm.create(f"0 {n} linear {backing} 0", hint="sparedev")
    mgr.format(dm.path(spare))
    ds = data_start(backing)
    # Spare block 0 (the first one handed out) fails writes.
    dm.reload(spare, segments_table(backing, n, [(ds, BS)]))
    mgr.resume(4, dm.path(spare))
    main = dm.create(segments_table(main_back, blockdev_sectors(main_back), [(6 * BS, BS)]),
                     hint="bad")
    dev = RemapDev(dm, dm.path(main), 4)
    pwrite(dev.path, 0, pattern("ret", 64 << 10))
    assert pread(dev.path, 0, 64 << 10) == pattern("ret", 64 << 10)
    assert dev.remaps() == {6: (1, "mapped")}
    assert pool_attr(4, "blocks_retired") == "1"
    dev.remove()
    mgr.free(4)
    mgr.resume(4, dm.path(spare))
    assert pool_attr(4, "blocks_retired") == "1"
    mgr.free(4)
    dm.remove(main)
    dm.remove(spare)
