# SPDX-License-Identifier: GPL-2.0-only
"""The pool's background scanner: finds slow and failing blocks that no user
read touched, moves the slow ones with their data, records the unreadable
ones as pending; progress, control, tunables, and stopping."""
import errno
import hashlib
import os
import threading
import time

import pytest

from dmtools import (CmdError, blockdev_sectors, dmsetup, dos_table, linear_table, pattern, pread,
                     pwrite, run, wait_for)
from pools import Manager, RemapDev, data_start, pool_active, pool_attr, small_pool

BLOCK = 4096
BS = BLOCK // 512
SLOT = 6
POOLS = "/sys/module/dm_remap/pools"

pytestmark = pytest.mark.allow_kmsg(r"I/O error|Buffer I/O error")


def set_attr(name, value, slot=SLOT):
    with open(os.path.join(POOLS, str(slot), name), "w") as f:
        f.write(str(value))


def dev_attr(dev_id, name, slot=SLOT):
    with open(os.path.join(POOLS, str(slot), "devices", str(dev_id), name)) as f:
        return f.read().strip()


def dev_int(dev_id, name):
    return int(dev_attr(dev_id, name))


def faulty_table(dev, sectors, failing, slow, delay_ms):
    """dev, with the blocks in failing erroring every I/O and those in slow
    delayed by delay_ms; linear elsewhere."""
    marks = {b: "error" for b in failing}
    marks.update({b: f"delay {dev} {b * BS} {delay_ms}" for b in slow})
    return marked_table(dev, sectors, marks)


def marked_table(dev, sectors, marks):
    """dev, linear, except each block b in marks, which is the target line
    marks[b]."""
    lines, pos = [], 0
    for b in sorted(marks):
        if b * BS > pos:
            lines.append(f"{pos} {b * BS - pos} linear {dev} {pos}")
        lines.append(f"{b * BS} {BS} {marks[b]}")
        pos = (b + 1) * BS
    if pos < sectors:
        lines.append(f"{pos} {sectors - pos} linear {dev} {pos}")
    return "\n".join(lines)


def events(name):
    return int(dmsetup("info", "-c", "--noheadings", "-o", "events", name).strip())


@pytest.fixture
def env(dm, loopdev):
    """A pool in SLOT with its scanner on; an 8 MiB main backing device
    filled with a known pattern."""
    mgr = Manager(dm)
    spare, backing = loopdev(64), loopdev(8)
    data = pattern("scan", 8 << 20)
    pwrite(backing, 0, data)
    mgr.format(spare)
    mgr.resume(SLOT, spare, scan=True)

    class Env:
        pass
    e = Env()
    e.defaults = {k: pool_attr(SLOT, k) for k in
                  ["scan_enabled", "scan_interval", "scan_rate", "scan_slow_ms",
                   "scan_state"]}
    # Off until a test has set up its device: a device never scanned
    # starts its first pass as soon as the scanner may run.
    set_attr("scan_enabled", 0)
    set_attr("scan_rate", 1 << 20)
    set_attr("scan_slow_ms", 700)
    e.mgr, e.dm, e.spare, e.backing, e.data = mgr, dm, spare, backing, data
    yield e
    for name in reversed(list(dm.names)):
        if name != mgr.name:
            dm.remove(name)
    mgr.free(SLOT)


def run_pass(dev_id, timeout=120):
    """Enable the scanner and wait for the device's first pass to end."""
    set_attr("scan_enabled", 1)
    assert wait_for(lambda: dev_int(dev_id, "scan_passes") >= 1, timeout=timeout), \
        f"no pass in {timeout}s: at block {dev_attr(dev_id, 'scan_pos')}"
    set_attr("scan_enabled", 0)


def test_pass_finds_slow_and_failing_blocks(env):
    n = blockdev_sectors(env.backing)
    failing, slow = [37, 1500], [5, 900, 2047]
    main = env.dm.create(faulty_table(env.backing, n, failing, slow, 1500), hint="faulty")
    dev = RemapDev(env.dm, env.dm.path(main), SLOT, dev_id=4)
    ev = events(dev.name)
    assert dev_int(4, "health") == 100
    run_pass(4)

    # Counters: every block scanned, each finding counted once.
    assert dev_int(4, "scanned") == n // BS
    assert dev_int(4, "scan_failed") == len(failing)
    assert dev_int(4, "scan_slow") == len(slow)
    assert dev_int(4, "scan_predictive") == len(slow)
    assert dev_int(4, "scan_percent") == 100
    assert int(dev_attr(4, "scan_last_pass")) > 0
    # Slow blocks remapped with their data, failing ones pending.
    remaps = dev.remaps()
    assert {b: st for b, (_, st) in remaps.items()} == \
        {**{b: "mapped" for b in slow}, **{b: "pending" for b in failing}}
    st = dev.status()
    assert st["remaps"] == len(slow) and st["pending"] == len(failing)
    # 10 * bits(3 remaps) + 20 * bits(2 pending) + 5 * bits(3 slow) = 20 + 40 + 10
    assert dev_int(4, "health") == 30
    # The user never read anything; a dm event told about the pending blocks.
    assert st["read_errors"] == 0
    assert events(dev.name) > ev
    for b in slow:
        assert pread(dev.path, b * BLOCK, BLOCK) == env.data[b * BLOCK:(b + 1) * BLOCK]
        spare_block, _ = remaps[b]
        assert pread(env.spare, data_start(env.spare) * 512 + spare_block * BLOCK, BLOCK) == \
            env.data[b * BLOCK:(b + 1) * BLOCK]
    for b in failing:
        with pytest.raises(OSError) as e:
            pread(dev.path, b * BLOCK, BLOCK)
        assert e.value.errno == errno.EIO
    # Everything else reads back unchanged.
    edges = [0] + [x for b in sorted(failing) for x in (b, b + 1)] + [n // BS]
    for lo, hi in zip(edges[::2], edges[1::2]):
        assert pread(dev.path, lo * BLOCK, (hi - lo) * BLOCK) == \
            env.data[lo * BLOCK:hi * BLOCK]
    # A second pass skips what already lives on the spare: nothing new.
    ev = events(dev.name)
    set_attr("scan_enabled", 1)
    env.mgr.msg("switch_to", SLOT)
    env.mgr.msg("scan_start")
    assert wait_for(lambda: dev_int(4, "scan_passes") >= 2, timeout=120)
    assert dev_int(4, "scan_failed") == len(failing)
    assert dev_int(4, "scan_slow") == len(slow)
    assert dev_int(4, "health") == 30
    assert events(dev.name) == ev
    assert dev.remaps() == remaps


def reads_done(dm_name):
    """Reads a dm device completed, failed ones included (its disk stat)."""
    rdev = os.stat(f"/dev/mapper/{dm_name}").st_rdev
    with open(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/stat") as f:
        return int(f.read().split()[0])


def test_a_pass_reads_no_block_that_lives_on_the_spare(env):
    """Blocks in the index, pending or moved, are not read on the main
    device again: the scanner's chunks end before them.  Else each pass
    would read a known-bad block again (on a disk, seconds of retries and
    an error in the log)."""
    n = blockdev_sectors(env.backing)
    bad, moved = 1000, 2000
    errb = env.dm.create(f"0 {BS} error", hint="errb")
    seen_bad = env.dm.create(f"0 {BS} linear {env.dm.path(errb)} 0", hint="seenbad")
    seen_moved = env.dm.create(f"0 {BS} linear {env.backing} {moved * BS}", hint="seenmoved")
    main = env.dm.create(marked_table(env.backing, n, {
        bad: f"linear {env.dm.path(seen_bad)} 0",
        moved: f"linear {env.dm.path(seen_moved)} 0"}), hint="faulty")
    dev = RemapDev(env.dm, env.dm.path(main), SLOT, dev_id=4)
    dev.force(moved * BS)
    assert reads_done(seen_moved) >= 1      # the forced remap's copy
    counts = {d: reads_done(d) for d in (seen_bad, seen_moved)}

    run_pass(4)
    assert dev_int(4, "scan_failed") == 1
    assert {b: st for b, (_, st) in dev.remaps().items()} == \
        {bad: "pending", moved: "mapped"}
    assert reads_done(seen_bad) > counts[seen_bad]
    assert reads_done(seen_moved) == counts[seen_moved]
    counts = {d: reads_done(d) for d in (seen_bad, seen_moved)}

    set_attr("scan_enabled", 1)
    env.mgr.msg("switch_to", SLOT)
    env.mgr.msg("scan_start")
    assert wait_for(lambda: dev_int(4, "scan_passes") >= 2, timeout=120)
    set_attr("scan_enabled", 0)
    assert {d: reads_done(d) for d in counts} == counts
    assert dev_int(4, "scan_failed") == 1
    assert dev_int(4, "scanned") == 2 * (n // BS)
    assert pread(dev.path, 0, bad * BLOCK) == env.data[:bad * BLOCK]
    assert pread(dev.path, (bad + 1) * BLOCK, n * 512 - (bad + 1) * BLOCK) == \
        env.data[(bad + 1) * BLOCK:n * 512]


def block_table(dev, sectors, b, line):
    """dev, linear, except block b, which is the target line given."""
    return "\n".join([f"0 {b * BS} linear {dev} 0", f"{b * BS} {BS} {line}",
                      f"{(b + 1) * BS} {sectors - (b + 1) * BS} linear {dev} {(b + 1) * BS}"])


def read_counts(dm_name):
    """(reads completed, reads held) of a dm-delay device: its status
    counts the bios it holds (sysfs "inflight" does not see them)."""
    return reads_done(dm_name), int(dmsetup("status", dm_name).split()[3])


@pytest.mark.parametrize("first", ["slow", "failing"])
def test_block_read_only_after_a_retry_is_moved_with_its_data(env, first):
    """The 'retried' finding, both ways: a block whose read is slow and
    whose read again fails, or whose first reads fail and a retry reads;
    either is moved with the data a later read gets.  The block's reads
    are steered by swapping what the main device maps it to, each swap
    while the scanner's read before it is held in a 4 s delay, so that the
    order is certain: a suspend waits for that read and holds the next one
    for the new table."""
    n = blockdev_sectors(env.backing)
    b, delay = 1000, 4000
    slowb = env.dm.create(f"0 {BS} delay {env.backing} {b * BS} {delay}", hint="slowb")
    errb = env.dm.create(f"0 {BS} error", hint="errb")
    slowerr = env.dm.create(f"0 {BS} delay {env.dm.path(errb)} 0 {delay}", hint="slowerr")
    via = {d: block_table(env.backing, n, b, f"linear {env.dm.path(d)} 0")
           for d in (slowb, slowerr)}
    base = {d: read_counts(d) for d in (slowb, slowerr)}
    assert base[slowb][1] == 0 and base[slowerr][1] == 0
    if first == "slow":
        # The chunk's read is slow, so the block is read alone: slow
        # again; while that read is held, the block starts failing, so
        # the read again fails; while it is held, the block reads again.
        swaps = [(slowb, 1, via[slowerr]), (slowerr, 0, linear_table(env.backing, n))]
    else:
        # The chunk's read fails, so the block is read alone: it fails
        # again; while that read is held, the block reads again.
        swaps = [(slowerr, 1, linear_table(env.backing, n))]
    main = env.dm.create(via[swaps[0][0]], hint="faulty")
    dev = RemapDev(env.dm, env.dm.path(main), SLOT, dev_id=8)
    set_attr("scan_enabled", 1)
    for d, before, table in swaps:
        want = (base[d][0] + before, 1)
        assert wait_for(lambda: read_counts(d) == want, timeout=120), \
            f"{d}: {read_counts(d)}, waiting for {want}"
        env.dm.reload(main, table)
        assert read_counts(d) == (want[0] + 1, 0)
        base[d] = read_counts(d)
    assert wait_for(lambda: dev_int(8, "scan_passes") >= 1, timeout=120)
    set_attr("scan_enabled", 0)

    assert dev_int(8, "scan_retried") == 1
    assert dev_int(8, "scan_slow") == 0
    assert dev_int(8, "scan_failed") == 0
    assert dev_int(8, "scan_predictive") == 1
    assert dev_int(8, "scanned") == n // BS
    remaps = dev.remaps()
    assert list(remaps) == [b] and remaps[b][1] == "mapped"
    assert dev.status()["pending"] == 0
    # 10 * bits(1 remap) + 5 * bits(1 retried)
    assert dev_int(8, "health") == 85
    want = env.data[b * BLOCK:(b + 1) * BLOCK]
    assert pread(env.spare, data_start(env.spare) * 512 + remaps[b][0] * BLOCK, BLOCK) == want
    assert pread(dev.path, 0, n * 512) == env.data[:n * 512]
    # The move read the block after the last swap.
    assert {d: read_counts(d) for d in base} == base


def test_a_block_that_cannot_be_moved_is_counted_and_the_pass_goes_on(dm, loopdev):
    """With the pool exhausted, failing blocks the scanner finds are counted
    once per pass and left where they are, and the pass goes on to its end
    (it must not stop at the first one and count it again every 30 s)."""
    slot = 7
    with small_pool(dm, loopdev, slot, scan=True) as (mgr, _, total):
        set_attr("scan_enabled", 0, slot)
        set_attr("scan_rate", 1 << 20, slot)
        backing = loopdev(8)
        n = blockdev_sectors(backing)
        failing = [100, 1500]
        main = dm.create(faulty_table(backing, n, failing, [], 0), hint="faulty")
        dev = RemapDev(dm, dm.path(main), slot, dev_id=1)
        for b in range(total):
            dev.force(b * BS)
        forced = dev.remaps()
        assert pool_attr(slot, "blocks_free") == "0"
        set_attr("scan_enabled", 1, slot)
        assert wait_for(lambda: int(dev_attr(1, "scan_passes", slot)) >= 1, timeout=120), \
            f"no pass in 120 s: at block {dev_attr(1, 'scan_pos', slot)}"
        assert int(dev_attr(1, "scan_failed", slot)) == len(failing)
        assert dev_attr(1, "scan_percent", slot) == "100"
        assert dev.remaps() == forced
        assert dev.status()["state"] == "degraded"
        # The next pass finds them again, once each.
        mgr.msg("switch_to", slot)
        mgr.msg("scan_start")
        assert wait_for(lambda: int(dev_attr(1, "scan_passes", slot)) >= 2, timeout=120)
        assert int(dev_attr(1, "scan_failed", slot)) == 2 * len(failing)
        set_attr("scan_enabled", 0, slot)


def test_the_device_comes_back_when_the_scanner_reads_again(env):
    """A main device that failed everywhere under the scanner's reads (state
    fail, health 0) and then answers again is back once the scanner reads
    it, with no user I/O: else the next bad block a user read found would
    pass its error through."""
    n = blockdev_sectors(env.backing)
    main = env.dm.create(linear_table(env.backing, n), hint="main")
    dev = RemapDev(env.dm, env.dm.path(main), SLOT, dev_id=4)
    env.dm.reload(main, f"0 {n} error")
    ev = events(dev.name)
    set_attr("scan_enabled", 1)
    assert wait_for(lambda: dev.status()["state"] == "fail", timeout=60)
    assert dev_int(4, "health") == 0
    assert events(dev.name) > ev
    assert dev.remaps() == {} and dev_int(4, "scan_failed") == 0
    env.dm.reload(main, linear_table(env.backing, n))
    ev = events(dev.name)
    # The scanner leaves the device alone for 30 s, then reads it again.
    assert wait_for(lambda: dev.status()["state"] == "ok", timeout=90), dev.status()
    assert dev_int(4, "health") == 100
    assert events(dev.name) > ev
    st = dev.status()
    assert st["read_errors"] == 0 and st["remapped_ios"] == 0
    set_attr("scan_enabled", 0)


def test_suspend_and_remove_are_prompt_in_a_slow_chunk(env):
    n = blockdev_sectors(env.backing)
    slow = list(range(300, 320))                  # one chunk: minutes to narrow
    main = env.dm.create(faulty_table(env.backing, n, [], slow, 1500), hint="faulty")
    dev = RemapDev(env.dm, env.dm.path(main), SLOT, dev_id=5)
    set_attr("scan_enabled", 1)
    assert wait_for(lambda: dev_int(5, "scan_slow") >= 1, timeout=120)
    t0 = time.time()
    dmsetup("suspend", dev.name)
    assert time.time() - t0 < 15
    pos = dev_int(5, "scan_pos")
    time.sleep(2)
    assert dev_int(5, "scan_pos") == pos
    dmsetup("resume", dev.name)
    assert wait_for(lambda: dev_int(5, "scan_slow") >= 2, timeout=120)
    t0 = time.time()
    dev.remove()
    assert time.time() - t0 < 15


@pytest.mark.parametrize("through", ["remap", "main", "sibling"])
def test_backs_off_while_the_device_is_busy(env, loopdev, through):
    """Foreground reads through the remap device, straight to its main
    device, or to another partition of the main device's disk: the last
    two never pass through the target, the scanner sees them in the
    disk's I/O statistics."""
    if through == "sibling":
        disk = loopdev(72, mbr=dos_table((2048, 65536), (67584, 79872)))
        backing, target = disk + "p1", disk + "p2"
        assert wait_for(lambda: os.path.exists(target))
    else:
        backing = loopdev(32)
        target = backing
    dev = RemapDev(env.dm, backing, SLOT, dev_id=7)
    total = (32 << 20) // BLOCK
    if through == "remap":
        target = dev.path
    stop = threading.Event()

    def foreground():
        i = 0
        while not stop.is_set():
            pread(target, (i * 7919 % total) * BLOCK, BLOCK)
            i += 1
    t = threading.Thread(target=foreground)
    t.start()
    try:
        set_attr("scan_enabled", 1)
        time.sleep(1.5)
        before = dev_int(7, "scanned")
        time.sleep(4)
        busy = dev_int(7, "scanned") - before
        passes = dev_int(7, "scan_passes")
    finally:
        stop.set()
        t.join()
    # Busy: one block at most every 500 ms (a step may be in flight).
    assert busy <= 12, f"{busy} blocks scanned in 4 s of foreground I/O"
    assert passes == 0, "the pass ended under foreground I/O"
    # Idle again: chunks grow back and the pass ends soon.
    assert wait_for(lambda: dev_int(7, "scan_passes") >= 1, timeout=90)
    assert dev_int(7, "scanned") == total


def test_blocks_slow_only_under_load_are_not_moved(env):
    """Blocks 5 and 30 answer in 1.5 s; foreground reads of other blocks
    keep the disk busy during the whole first pass: a read that waited
    behind other I/O says nothing about the medium, so nothing is moved.
    The second pass, on an idle disk, moves both."""
    n = blockdev_sectors(env.backing)
    slow = [5, 30]
    main = env.dm.create(faulty_table(env.backing, n, [], slow, 1500), hint="faulty")
    dev = RemapDev(env.dm, env.dm.path(main), SLOT, dev_id=4, sectors=64 * BS)
    stop = threading.Event()

    def foreground():
        i = 0
        while not stop.is_set():
            pread(dev.path, (40 + i % 24) * BLOCK, BLOCK)
            i += 1
    t = threading.Thread(target=foreground)
    t.start()
    try:
        run_pass(4, timeout=300)
    finally:
        stop.set()
        t.join()
    assert dev_int(4, "scanned") == 64
    assert dev_int(4, "scan_slow") == 0
    assert dev.remaps() == {}
    set_attr("scan_enabled", 1)
    env.mgr.msg("switch_to", SLOT)
    env.mgr.msg("scan_start")
    assert wait_for(lambda: dev_int(4, "scan_passes") >= 2, timeout=120)
    assert dev_int(4, "scan_slow") == len(slow)
    assert {b: st for b, (_, st) in dev.remaps().items()} == {b: "mapped" for b in slow}
    for b in slow:
        assert pread(dev.path, b * BLOCK, BLOCK) == env.data[b * BLOCK:(b + 1) * BLOCK]


def test_metadata_commits_of_a_spare_on_the_same_disk_are_not_load(env, loopdev):
    """The pool's spare is a partition of the disk that holds its main
    devices.  While device A is scanned, device B's blocks are remapped one
    by one (a metadata commit to the spare each): those commits are the
    module's own I/O like its copies, so A's scanner does not back off for
    them (backing off, one block per 500 ms, its 8192 blocks would take an
    hour)."""
    disk = loopdev(130, mbr=dos_table((2048, 65536), (67584, 65536), (133120, 131072)))
    main_a, main_b, spare = disk + "p1", disk + "p2", disk + "p3"
    assert wait_for(lambda: all(os.path.exists(p) for p in (main_a, main_b, spare)))
    slot = SLOT + 2
    env.mgr.format(spare)
    env.mgr.resume(slot, spare, scan=True)
    devs = []
    stop = threading.Event()
    forced = []

    def force_remaps():
        for b in range(8192):
            if stop.is_set():
                return
            devs[1].force(b * BS)
            forced.append(b)
    t = threading.Thread(target=force_remaps)
    try:
        set_attr("scan_enabled", 0, slot)
        set_attr("scan_rate", 1 << 20, slot)
        devs.append(RemapDev(env.dm, main_a, slot, dev_id=21))
        devs.append(RemapDev(env.dm, main_b, slot, dev_id=22))
        t.start()
        assert wait_for(lambda: len(forced) >= 5, timeout=60)
        set_attr("scan_enabled", 1, slot)
        at_start = len(forced)
        done = wait_for(lambda: dev_attr(21, "scan_passes", slot) != "0", timeout=120)
        scanned = int(dev_attr(21, "scanned", slot))
        commits = len(forced) - at_start
        still_forcing = t.is_alive()
        stop.set()
        t.join()
        assert done, f"pass not over in 120 s: scanned {scanned} of 8192 ({commits} remaps)"
        # The remaps went on for the whole pass.
        assert still_forcing
    finally:
        stop.set()
        if t.is_alive():
            t.join()
        for d in devs:
            d.remove()
        if pool_active(slot):
            env.mgr.free(slot)


@pytest.mark.parametrize("pools", ["one", "two"])
def test_scanners_on_one_disk_do_not_take_each_other_for_load(env, loopdev, pools):
    """Two remap devices on two partitions of one disk, in one pool or in
    two pools, both scanning and nothing else: each scanner's reads are
    the module's own, so neither backs off for the other and both passes
    end at full speed.  Backing off (one block per 500 ms), the 8192
    blocks of each would take over an hour."""
    disk = loopdev(66, mbr=dos_table((2048, 65536), (67584, 65536)))
    parts = [disk + "p1", disk + "p2"]
    assert wait_for(lambda: all(os.path.exists(p) for p in parts))
    slots = [SLOT, SLOT] if pools == "one" else [SLOT, SLOT + 2]
    if pools == "two":
        spare2 = loopdev(64)
        env.mgr.format(spare2)
        env.mgr.resume(slots[1], spare2, scan=True)
    devs = []
    try:
        for slot in set(slots) - {SLOT}:
            set_attr("scan_enabled", 0, slot)
            set_attr("scan_rate", 1 << 20, slot)
        for i, (part, slot) in enumerate(zip(parts, slots)):
            devs.append(RemapDev(env.dm, part, slot, dev_id=11 + i))
        for slot in set(slots):
            set_attr("scan_enabled", 1, slot)
        done = wait_for(lambda: all(dev_attr(11 + i, "scan_passes", slot) != "0"
                                    for i, slot in enumerate(slots)), timeout=120)
        scanned = [int(dev_attr(11 + i, "scanned", slot)) for i, slot in enumerate(slots)]
        assert done, f"passes not over in 120 s: scanned {scanned} of {(32 << 20) // BLOCK}"
        assert scanned == [(32 << 20) // BLOCK] * 2
    finally:
        for d in devs:
            d.remove()
        if pools == "two" and pool_active(slots[1]):
            env.mgr.free(slots[1])


def own_slot(major, minor):
    """The slot of the module's own-I/O table that a disk's dev_t hashes
    to first: hash_32(MKDEV(major, minor), 8)."""
    return (((major << 20 | minor) * 0x61C88647) & 0xffffffff) >> 24


def test_another_disks_scanner_does_not_hide_load(env, loopdev):
    """The module counts the I/O it does itself per disk, in a table keyed
    by dev_t.  Disk B's number hashes to the same slot as disk A's, and
    another pool's scanner reads B as fast as it can.  Reads straight to A
    (never through the target) must still make A's scanner back off: B's
    reads are not A's own I/O, however their dev_t hash."""
    a = loopdev(1024)       # sparse: holes read fast, so A's rate is set
    rdev = os.stat(a).st_rdev
    home = own_slot(os.major(rdev), os.minor(rdev))
    index = next(n for n in range(os.minor(rdev) + 1, 1 << 20)
                 if own_slot(os.major(rdev), n) == home
                 and not os.path.exists(f"/sys/block/loop{n}"))
    b = loopdev(64 << 10, index=index)     # at B's rate, a pass takes > 30 s
    slot_b = SLOT + 2
    spare2 = loopdev(64)
    env.mgr.format(spare2)
    env.mgr.resume(slot_b, spare2, scan=True)
    devs = []
    stop = threading.Event()
    t = None
    try:
        set_attr("scan_enabled", 0, slot_b)
        set_attr("scan_rate", 4 << 20, slot_b)
        devs.append(RemapDev(env.dm, a, SLOT, dev_id=7))
        devs.append(RemapDev(env.dm, b, slot_b, dev_id=8))
        set_attr("scan_enabled", 1, slot_b)
        assert wait_for(lambda: int(dev_attr(8, "scanned", slot_b)) > 0)

        # Control: with nothing else on A, A's scanner runs at its rate
        # (4096 blocks/s) next to B's, so a slow count below is A backing off.
        set_attr("scan_rate", 16 << 10)
        set_attr("scan_enabled", 1)
        time.sleep(1)
        before = dev_int(7, "scanned")
        time.sleep(2)
        idle = dev_int(7, "scanned") - before
        assert idle > 100, f"A's scanner read only {idle} blocks in 2 s with A idle"

        def foreground():
            i = 0
            while not stop.wait(0.1):
                pread(a, (i * 7919 % 8192) * BLOCK, BLOCK)
                i += 1
        t = threading.Thread(target=foreground)
        t.start()
        time.sleep(1.5)
        before, before_b = dev_int(7, "scanned"), int(dev_attr(8, "scanned", slot_b))
        time.sleep(4)
        busy = dev_int(7, "scanned") - before
        read_b = int(dev_attr(8, "scanned", slot_b)) - before_b
        passes = [dev_int(7, "scan_passes"), int(dev_attr(8, "scan_passes", slot_b))]
    finally:
        stop.set()
        if t:
            t.join()
        set_attr("scan_enabled", 0)
        for d in devs:
            d.remove()
        if pool_active(slot_b):
            env.mgr.free(slot_b)
    assert passes == [0, 0], "a pass ended: the window did not see both scanners at work"
    assert read_b > 1000, f"B's scanner read only {read_b} blocks in 4 s: it hid nothing"
    # Backing off, A reads a block per 500 ms; not backing off, at its rate,
    # as in the control.  The bound leaves room for a foreground read or two
    # delayed on a loaded guest (an idle step lets the chunks grow again).
    assert busy * 10 < idle * 2, \
        f"{busy} blocks scanned in 4 s of reads straight to A ({idle} in 2 s idle)"


def test_scanner_reads_never_change_data(env):
    before = hashlib.sha256(pread(env.backing, 0, 8 << 20)).hexdigest()
    dev = RemapDev(env.dm, env.backing, SLOT, dev_id=1)
    run_pass(1)
    assert dev_int(1, "scanned") == (8 << 20) // BLOCK
    assert dev.remaps() == {}
    assert dev_int(1, "health") == 100
    dev.remove()
    assert hashlib.sha256(pread(env.backing, 0, 8 << 20)).hexdigest() == before


def test_pass_at_the_highest_rate(env):
    """scan_rate at its maximum, 4 GiB/s: 2^32 bytes a second, which must
    not wrap to 0 in the scanner's delay arithmetic (it once divided by it)."""
    set_attr("scan_rate", 4 << 20)
    assert pool_attr(SLOT, "scan_rate") == str(4 << 20)
    RemapDev(env.dm, env.backing, SLOT, dev_id=3)
    run_pass(3)
    assert dev_int(3, "scanned") == (8 << 20) // BLOCK


def test_a_new_rate_takes_effect_at_once(env, loopdev):
    """A pool of 1 MiB blocks at 1 KiB/s waits 1024 s after each block;
    raising the rate must not wait for the delay in hand."""
    slot = SLOT + 2
    spare = loopdev(64)
    env.mgr.format(spare, "block_size=1048576")
    env.mgr.resume(slot, spare, scan=True)
    try:
        set_attr("scan_enabled", 0, slot)
        set_attr("scan_rate", 1, slot)
        RemapDev(env.dm, env.backing, slot, dev_id=5)
        set_attr("scan_enabled", 1, slot)
        assert wait_for(lambda: int(dev_attr(5, "scanned", slot)) >= 1, timeout=30)
        time.sleep(1)
        assert dev_attr(5, "scanned", slot) == "1", "no delay after a block at 1 KiB/s"
        set_attr("scan_rate", 4 << 20, slot)
        assert wait_for(lambda: dev_attr(5, "scan_passes", slot) != "0", timeout=30), \
            f"the pass did not go on at the new rate: {dev_attr(5, 'scanned', slot)} of 8 blocks"
        assert dev_attr(5, "scanned", slot) == "8"
    finally:
        for name in reversed(list(env.dm.names)):
            if name != env.mgr.name:
                env.dm.remove(name)
        env.mgr.free(slot)


def test_progress_survives_suspend_remove_and_free(env):
    set_attr("scan_rate", 64)                     # KiB/s: a pass takes ~2 min
    dev = RemapDev(env.dm, env.backing, SLOT, dev_id=2)
    set_attr("scan_enabled", 1)
    assert wait_for(lambda: dev_int(2, "scan_pos") >= 8, timeout=30)
    assert pool_attr(SLOT, "scan_state") == "scanning"
    # Suspended: the scanner leaves the device alone, promptly.
    t0 = time.time()
    dmsetup("suspend", dev.name)
    assert time.time() - t0 < 10
    pos = dev_int(2, "scan_pos")
    time.sleep(1.5)
    assert dev_int(2, "scan_pos") == pos
    dmsetup("resume", dev.name)
    assert wait_for(lambda: dev_int(2, "scan_pos") > max(pos, 64), timeout=60)
    # Removed mid-pass, the pool freed and resumed: the pass goes on from
    # where it was.
    t0 = time.time()
    dev.remove()
    assert time.time() - t0 < 10
    env.mgr.msg("switch_to", SLOT)
    env.mgr.msg("free_spare")
    env.mgr.resume(SLOT, env.spare, scan=True)
    set_attr("scan_enabled", 0)
    dev = RemapDev(env.dm, env.backing, SLOT, dev_id=2)
    saved = dev_int(2, "scan_pos")
    assert saved > pos
    assert dev_int(2, "scan_passes") == 0
    # The progress of the pass shows before the scanner's next step.
    assert dev_int(2, "scan_percent") == saved * 100 // ((8 << 20) // BLOCK)
    set_attr("scan_rate", 1 << 20)
    run_pass(2)
    # It finished the pass without starting over.
    assert dev_int(2, "scanned") == (8 << 20) // BLOCK - saved


def stopped_mid_pass(env):
    """dev_id 3 scanned slowly from scan_start to scan_stop; its position."""
    set_attr("scan_rate", 64)
    RemapDev(env.dm, env.backing, SLOT, dev_id=3)
    set_attr("scan_enabled", 1)
    env.mgr.msg("switch_to", SLOT)
    env.mgr.msg("scan_start")
    assert wait_for(lambda: dev_int(3, "scan_pos") > 0, timeout=30)
    env.mgr.msg("scan_stop")
    assert wait_for(lambda: pool_attr(SLOT, "scan_state") == "idle", timeout=15)
    return dev_int(3, "scan_pos")


def test_scan_stop_and_start(env):
    pos = stopped_mid_pass(env)
    time.sleep(1.5)
    assert dev_int(3, "scan_pos") == pos
    env.mgr.msg("scan_start")
    assert wait_for(lambda: dev_int(3, "scan_pos") > pos, timeout=30)
    # Disabled: off, and scan_start is refused.
    set_attr("scan_enabled", 0)
    assert wait_for(lambda: pool_attr(SLOT, "scan_state") == "off", timeout=15)
    with pytest.raises(CmdError):
        env.mgr.msg("scan_start")
    with pytest.raises(CmdError):
        env.mgr.msg("scan_start", "now")
    env.mgr.msg("switch_to", SLOT + 1)
    with pytest.raises(CmdError):
        env.mgr.msg("scan_stop")          # no pool in that slot


def test_scan_stop_holds_across_a_clock_step(env):
    """scan_stop holds passes for scan_interval of elapsed time: the clock
    set forward past it does not end the hold (it did: the deadline was
    wall time).  Set back, the clock does not hold the next pass off by the
    step: the last pass's time comes back to now (it stayed ahead)."""
    pos = stopped_mid_pass(env)
    step = 8 * 24 * 3600                    # past the default interval (7 days)
    run("date", "-s", f"@{int(time.time()) + step}")
    try:
        set_attr("scan_rate", 64)           # a tunable write: a step now
        time.sleep(1.5)
        assert pool_attr(SLOT, "scan_state") == "idle"
        assert dev_int(3, "scan_pos") == pos
    finally:
        run("date", "-s", f"@{int(time.time()) - step}")
    set_attr("scan_rate", 1 << 20)
    env.mgr.msg("scan_start")
    assert wait_for(lambda: dev_int(3, "scan_passes") == 1, timeout=60)
    last = dev_int(3, "scan_last_pass")
    run("date", "-s", f"@{int(time.time()) - step}")
    try:
        set_attr("scan_rate", 1 << 20)
        assert wait_for(lambda: dev_int(3, "scan_last_pass") < last - step // 2, timeout=15)
        assert dev_int(3, "scan_passes") == 1 and dev_int(3, "scan_pos") == 0
    finally:
        run("date", "-s", f"@{int(time.time()) + step}")


@pytest.mark.parametrize("name,bad", [
    ("scan_enabled", ["2", "-1", "yes", "1x"]),
    ("scan_interval", ["0", "-5", "x", "99999999999"]),
    ("scan_rate", ["0", "4194305", "1.5"]),
    ("scan_slow_ms", ["0", "9", "600001", "fast"]),
])
def test_bad_tunable_is_refused(env, name, bad):
    before = {k: pool_attr(SLOT, k) for k in
              ["scan_enabled", "scan_interval", "scan_rate", "scan_slow_ms"]}
    for v in bad:
        with pytest.raises(OSError) as e:
            set_attr(name, v)
        assert e.value.errno == errno.EINVAL, v
    assert {k: pool_attr(SLOT, k) for k in before} == before
    with pytest.raises(OSError):
        set_attr("scan_state", "idle")


def test_defaults_and_list(env):
    assert env.defaults == {"scan_enabled": "1", "scan_interval": str(7 * 24 * 3600),
                            "scan_rate": "32768", "scan_slow_ms": "500",
                            "scan_state": "idle"}
    assert env.mgr.list()[SLOT][-1] == "scanner=off"
    set_attr("scan_enabled", 1)
    assert wait_for(lambda: env.mgr.list()[SLOT][-1] == "scanner=idle", timeout=15)
