# SPDX-License-Identifier: GPL-2.0-only
"""Power loss at any instant, replayed from a log of the spare's writes.

The spare of the pool is a dm-log-writes device: every write that reaches
it is logged once it is durable (a write when a flush after it completes,
a FUA write when it completes), in that order.  Each prefix of the log is
therefore a state the spare can be found in after a power cut.  A burst of
forced remaps and of writes that fail on the main device (each moved to
the spare) runs under random write load, with a mark in the log after each
remap was acknowledged.  The log is then replayed onto the pool as it was
formatted, and after every metadata write, and with every metadata write
torn in half, the pool must:

  * load (remap_dump: clean or damaged, never fatal);
  * hold every remap acknowledged before the last mark replayed;
  * hold no remap whose spare block lacks a whole version of its data
    (never a half-written remap).

At every fourth mark the module itself resumes a copy of the replayed
spare and lists the same remaps.

A second test logs both devices: a synchronous write is durable on its
device (main, or the spare for a remapped block) when it returns.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import threading

from conftest import ROOT
from dmtools import blockdev_sectors, dmsetup, pattern, pwrite, run
from pools import Manager, RemapDev, data_start

BLOCK, BS, SECTOR = 4096, 8, 512
DUMP = os.path.join(ROOT, "build", "remap_dump")
LOG_MAGIC, LOG_VERSION = 0x6a736677736872, 1
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
USED = range(1, 200)            # blocks the burst remaps and the load writes
ERR = list(range(200, 216))     # blocks whose writes fail on the main device
OPS = 24


def parse_log(path):
    """dm-log-writes' log: [(flags, byte offset, data bytes or mark name)]."""
    with open(path, "rb") as f:
        magic, version, nr, secsize = struct.unpack("<QQQI", f.read(28))
        assert magic == LOG_MAGIC and version == LOG_VERSION, "not a dm-log-writes log"
        pos, out = secsize, []
        for _ in range(nr):
            f.seek(pos)
            hdr = f.read(secsize)
            sector, nr_sectors, flags, data_len = struct.unpack_from("<QQQQ", hdr)
            pos += secsize
            if flags & MARK:
                out.append((flags, 0, hdr[32:32 + data_len].decode()))
                continue
            size = nr_sectors * secsize
            if flags & DISCARD:
                data = bytes(size)          # replayed as zeros: the worst case
            else:
                f.seek(pos)
                data = f.read(size)
                pos += size
            out.append((flags, sector * secsize, data))
        return out


def block_seed(data):
    """The pattern seed ("b<block>v<version>") a whole block was written
    with, or None if it is not one whole version of a block."""
    seed = data[:32].split(b":")[0].decode(errors="replace")
    return seed if data == pattern(seed, BLOCK) else None


class Replay:
    def __init__(self, path, versions):
        self.path, self.versions = path, versions
        self.runs = 0

    def check(self, what, required):
        """Load the replayed spare offline; returns {main block: spare sector}."""
        self.runs += 1
        p = subprocess.run([DUMP, self.path], capture_output=True, text=True)
        assert p.stdout, f"{what}: remap_dump: {p.stderr}"
        d = json.loads(p.stdout)
        assert d["summary"]["status"] in ("clean", "damaged"), \
            f"{what}: the pool would not load: {d['problems']}"
        remaps = {e["main_block"]: e["spare_sector"] for e in d["entries"] if e["dev_id"] == 1}
        assert all(e["state"] == "mapped" for e in d["entries"]), f"{what}: {d['entries']}"
        missing = required - set(remaps)
        assert not missing, f"{what}: acknowledged remaps lost: {sorted(missing)}"
        with open(self.path, "rb") as f:
            for b, sector in remaps.items():
                f.seek(sector * SECTOR)
                seed = block_seed(f.read(BLOCK))
                assert seed is not None and seed.startswith(f"b{b}v") and \
                    int(seed.split("v")[1]) in self.versions[b], \
                    f"{what}: block {b} remapped to sector {sector}, which holds {seed!r}"
        return remaps


def module_lists(dm, mgr, image, main, tmp_path, slot):
    """The module's view of a replayed spare: resume a copy, attach the
    device, list its remaps."""
    copy = tmp_path / "copy.img"
    shutil.copy(image, copy)
    loop = run("losetup", "-f", "--show", str(copy)).strip()
    try:
        mgr.resume(slot, loop)
        try:
            dev = RemapDev(dm, main, slot, dev_id=1)
            got = set(dev.remaps())
            dev.remove()
        finally:
            mgr.free(slot)
    finally:
        run("losetup", "-d", loop)
        copy.unlink()
    return got


def test_power_loss_at_any_point_of_a_burst_of_remaps(dm, loopdev, bad_disk, tmp_path):
    run("modprobe", "dm-log-writes")
    main, spare, log = loopdev(16), loopdev(16), loopdev(128)
    versions = {b: {0} for b in USED}
    versions.update({b: {1} for b in ERR})    # written once, by the burst
    pwrite(main, 0, b"".join(pattern(f"b{b}v0", BLOCK) for b in range(USED.stop)))
    mgr = Manager(dm)
    mgr.format(spare)
    with open(spare, "rb") as f:
        base = f.read()
    ds = data_start(spare)
    n = blockdev_sectors(spare)
    lw = dm.create(f"0 {n} log-writes {spare} {log}", hint="lw")
    mgr.resume(5, dm.path(lw))
    bad = bad_disk(main, [(ERR[0] * BS, len(ERR) * BS)])
    dev = RemapDev(dm, dm.path(bad), 5, dev_id=1)

    stop = threading.Event()
    errors = []

    def load():
        rnd = random.Random(7)
        v = 1
        try:
            while not stop.is_set():
                b = rnd.choice(USED)
                v += 1
                versions[b].add(v)
                pwrite(dev.path, b * BLOCK, pattern(f"b{b}v{v}", BLOCK), sync=False)
        except OSError as e:
            errors.append(e)

    acked, marks = set(), {}
    writer = threading.Thread(target=load)
    writer.start()
    try:
        rnd = random.Random(11)
        todo = rnd.sample(list(USED), OPS)
        for i in range(OPS):
            if i % 3 == 2:
                b = ERR[i // 3]
                pwrite(dev.path, b * BLOCK, pattern(f"b{b}v1", BLOCK))   # fails on main
            else:
                b = todo[i]
                dev.force(b * BS)
            acked.add(b)
            marks[f"m{i}"] = frozenset(acked)
            dmsetup("message", lw, "0", "mark", f"m{i}")
    finally:
        stop.set()
        writer.join()
    assert not errors, errors
    assert set(dev.remaps()) == acked
    dev.remove()
    mgr.free(5)
    dm.remove(lw)
    dm.remove(bad)

    entries = parse_log(log)
    assert sum(1 for e in entries if e[0] & MARK and e[2] in marks) == OPS
    work = tmp_path / "replay.img"
    work.write_bytes(base)
    replay = Replay(str(work), versions)
    required, seen = frozenset(), 0
    fd = os.open(work, os.O_WRONLY)
    try:
        replay.check("as formatted", required)
        for i, (flags, off, data) in enumerate(entries):
            if flags & MARK:
                if data in marks:
                    required, seen = marks[data], seen + 1
                    if seen % 4 == 0:
                        want = replay.check(f"mark {data}", required)
                        assert module_lists(dm, mgr, work, main, tmp_path, 6) == set(want), data
                continue
            if not data:
                continue                    # a flush without data
            meta = off < ds * SECTOR
            if meta and len(data) > SECTOR:
                half = len(data) // 2 // SECTOR * SECTOR
                os.pwrite(fd, data[:half], off)
                replay.check(f"entry {i} torn after {half} bytes", required)
            os.pwrite(fd, data, off)
            if meta:
                replay.check(f"entry {i} (offset {off})", required)
    finally:
        os.close(fd)
    final = replay.check("the whole log", required)
    assert required == frozenset(acked) and set(final) == acked
    assert replay.runs > 2 * OPS


def test_a_synchronous_write_is_durable_when_it_returns(dm, loopdev):
    """An O_SYNC write (FUA, or a flush after it where the devices have no
    FUA) must be durable when it returns, on whichever device holds its
    block.  Both devices are under dm-log-writes; after each write returns
    a mark goes into both logs, and the write must be in its device's log
    before that mark: for blocks on the main device and for remapped
    blocks on the spare."""
    run("modprobe", "dm-log-writes")
    main, spare = loopdev(16), loopdev(16)
    logs = {"main": loopdev(32), "spare": loopdev(32)}
    mgr = Manager(dm)
    mgr.format(spare)
    lw = {"main": dm.create(f"0 {blockdev_sectors(main)} log-writes {main} {logs['main']}",
                            hint="lwmain"),
          "spare": dm.create(f"0 {blockdev_sectors(spare)} log-writes {spare} {logs['spare']}",
                             hint="lwspare")}
    mgr.resume(5, dm.path(lw["spare"]))
    dev = RemapDev(dm, dm.path(lw["main"]), 5, dev_id=1)
    for b in (3, 7):
        dev.force(b * BS)
    ds = data_start(spare)
    where = {b: ("main", b * BLOCK) for b in (2, 8)}
    where.update({b: ("spare", (ds + spare_b * BS) * SECTOR)
                  for b, (spare_b, _) in dev.remaps().items()})
    for b in sorted(where):
        pwrite(dev.path, b * BLOCK, pattern(f"b{b}v1", BLOCK), sync=True)
        for name in lw.values():
            dmsetup("message", name, "0", "mark", f"w{b}")
    dev.remove()
    mgr.free(5)
    for name in lw.values():
        dm.remove(name)
    for side in ("main", "spare"):
        entries = parse_log(logs[side])
        marks = {e[2]: i for i, e in enumerate(entries) if e[0] & MARK}
        for b, (s, off) in where.items():
            if s != side:
                continue
            written = [i for i, (flags, o, data) in enumerate(entries)
                       if not flags & MARK and o <= off < o + len(data) and
                       data[off - o:off - o + BLOCK] == pattern(f"b{b}v1", BLOCK)]
            assert written, f"block {b}: its write never reached the {side} device's log"
            assert written[0] < marks[f"w{b}"], \
                f"block {b}: written to the {side} device, but durable only after the write returned"

