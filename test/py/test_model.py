# SPDX-License-Identifier: GPL-2.0-only
"""Random sequences of operations checked against a model of the devices.

Two remap devices share a pool.  Each sits on a main device whose bad
blocks (dm-error segments) change as the run goes.  A random sequence of
operations runs on them:
  * reads, writes, BLKZEROOUT and BLKDISCARD at random offsets and lengths;
  * forced remaps;
  * new sets of bad blocks on the main devices, and of bad spare blocks;
  * reloads, suspends with writes held across them, removals and
    re-creations of a device;
  * freeing and resuming the whole pool.
A model in Python knows, for every sector, what a read must return, and
for every block whether it is on the main device, remapped (`mapped`) or
lost (`pending`), following the rules of admin-guide.md "When the main
device fails" and "A spare block that fails".  After each operation, the
devices' remap lists and counters must match the model.  Now and then
every readable block is read back, through the device and straight from
the main device or the spare.

The seed is random and printed when the test fails.  RM_MODEL_SEED sets it
and RM_MODEL_OPS the number of operations (default 250; 150 with the
scanner).
"""
import contextlib
import errno
import fcntl
import os
import random
import struct
import threading
import time
import traceback

import pytest

from dmtools import CmdError, dmsetup, pattern, pread, pwrite, segments_table, wait_for
from pools import SYSFS_POOLS, Manager, RemapDev, data_start, free_pool, pool_attr

BLOCK = 4096
BS = BLOCK // 512
SLOT = 6
NBLOCKS = 2048                    # 8 MiB main devices
BLKDISCARD = 0x1277
BLKZEROOUT = 0x127f

pytestmark = pytest.mark.allow_kmsg(r"I/O error|Buffer I/O error")


def task_state(thread):
    """The scheduler state letter (R, S, D...) of a thread of this process."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class DevModel:
    """What one remap device must show."""

    def __init__(self, dev_id, backing, rng, bad_spare):
        self.dev_id, self.backing, self.rng = dev_id, backing, rng
        self.bad_spare = bad_spare                  # the pool's, shared
        self.spare_of = {}                          # as last listed
        self.data = bytearray(NBLOCKS * BLOCK)     # the backing starts zeroed
        self.unknown = bytearray(NBLOCKS * BS)     # 1: any content is right
        self.mapped, self.pending, self.bad = set(), set(), set()
        self.bad_name = None
        self.dev = None

    def on_bad_spare(self, b):
        return b in self.mapped and self.spare_of.get(b) in self.bad_spare

    def unreadable(self, b):
        """A read of block b fails, and makes it pending: its data is lost
        (pending already, on a bad main block, or on a bad spare block)."""
        return (b in self.pending or (b in self.bad and b not in self.mapped) or
                self.on_bad_spare(b))

    def fragile(self, b):
        """Block b takes only whole-block writes (a partial write fails)."""
        return self.unreadable(b)

    def set_data(self, off, data):
        self.data[off:off + len(data)] = data
        self.unknown[off // 512:(off + len(data)) // 512] = bytes(len(data) // 512)

    def set_unknown(self, off, length):
        self.unknown[off // 512:(off + length) // 512] = b"\1" * (length // 512)

    def matches(self, off, got):
        """Sectors of got (read at off) that differ from the model."""
        want = self.data[off:off + len(got)]
        if got == want:
            return []
        return [off // 512 + i for i in range(len(got) // 512)
                if not self.unknown[off // 512 + i] and
                got[i * 512:(i + 1) * 512] != want[i * 512:(i + 1) * 512]]


class Run:
    def __init__(self, dm, loopdev, rng, scan=False):
        self.dm, self.rng, self.scan = dm, rng, scan
        self.log = []
        self.lock = threading.Lock()    # the dm factory is not thread-safe
        self.mgr = Manager(dm)
        # The spare is a dm device, so that spare blocks can fail.
        self.spare_backing = loopdev(64)
        self.spare_sectors = 64 << 11
        self.bad_spare = set()
        self.spare_name = dm.create(self.spare_table(), hint="sparedev")
        self.spare = dm.path(self.spare_name)
        self.mgr.format(self.spare)
        self.ds = data_start(self.spare_backing)
        self.resume_pool()
        self.devs = []
        for dev_id in (1, 2):
            m = DevModel(dev_id, loopdev(NBLOCKS * BLOCK >> 20),
                         random.Random(rng.randrange(1 << 32)), self.bad_spare)
            m.bad_name = dm.create(self.bad_table(m), hint="bad")
            self.devs.append(m)
            self.attach(m)

    # ---- helpers ----------------------------------------------------------

    def resume_pool(self):
        """Resume the pool; with the scanner, make it pass over the devices
        every second and take no read for slow (this emulated machine's
        reads are slow now and then; only unreadable blocks are modelled)."""
        self.mgr.resume(SLOT, self.spare, scan=self.scan)
        if self.scan:
            for name, value in (("scan_slow_ms", 600000), ("scan_interval", 1)):
                with open(os.path.join(SYSFS_POOLS, str(SLOT), name), "w") as f:
                    f.write(str(value))

    @contextlib.contextmanager
    def reporting(self):
        """Any other error (an EIO the model did not expect, a dmsetup
        that failed) is reported with the seed and the last operations."""
        try:
            yield
        except Exception as e:
            self.fail(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")

    def fail(self, msg):
        pytest.fail(f"{msg}\n{self.log[0]} (RM_MODEL_SEED replays it); last operations:\n  "
                    + "\n  ".join(self.log[-25:]), pytrace=False)

    def bad_table(self, m):
        return segments_table(m.backing, NBLOCKS * BS, [(b * BS, BS) for b in m.bad])

    def spare_table(self):
        ds = getattr(self, "ds", 0)
        return segments_table(self.spare_backing, self.spare_sectors,
                              [(ds + s * BS, BS) for s in self.bad_spare])

    def table(self, m):
        return f"0 {NBLOCKS * BS} remap {m.dev_id} {self.dm.path(m.bad_name)} {SLOT}"

    def attach(self, m):
        with self.lock:
            m.dev = RemapDev(self.dm, self.dm.path(m.bad_name), SLOT, dev_id=m.dev_id)

    def detach(self, m):
        with self.lock:
            m.dev.remove()

    def expect_ok(self, what, fn, *args):
        try:
            return fn(*args)
        except (OSError, CmdError) as e:
            self.fail(f"{what} failed: {e}")

    def expect_eio(self, what, fn, *args):
        try:
            fn(*args)
        except OSError as e:
            if e.errno != errno.EIO:
                self.fail(f"{what}: errno {e.errno}, expected EIO")
            return
        self.fail(f"{what} succeeded; expected EIO")

    def pick_range(self, m, max_blocks=16):
        """A random sector range; widened to whole blocks where it touches
        a block that takes only whole-block writes."""
        rng = m.rng
        b = rng.randrange(NBLOCKS)
        if rng.random() < 0.5:
            start = b * BLOCK + rng.randrange(BS) * 512
            length = rng.randrange(1, 3 * BS) * 512
        else:
            start = b * BLOCK
            length = rng.randrange(1, max_blocks + 1) * BLOCK
        length = min(length, NBLOCKS * BLOCK - start)
        first, last = start // BLOCK, (start + length - 1) // BLOCK
        if m.fragile(first):
            length += start - first * BLOCK
            start = first * BLOCK
        if m.fragile(last):
            length = (last + 1) * BLOCK - start
        return start, length

    def blocks(self, start, length):
        return range(start // BLOCK, (start + length - 1) // BLOCK + 1)

    def write_effect(self, m, start, length):
        """A write of [start, start+length) went through: blocks that
        failed on the main device are remapped, pending ones healed."""
        for b in self.blocks(start, length):
            if b in m.pending:
                m.pending.discard(b)
                m.mapped.add(b)
            elif b in m.bad and b not in m.mapped:
                m.mapped.add(b)
            # A block on a bad spare block moves to a new one: still mapped.

    def read_effect(self, m, bad):
        """A read over the unreadable blocks bad failed: they are pending."""
        for b in bad:
            m.mapped.discard(b)
            m.pending.add(b)

    # ---- operations ---------------------------------------------------------

    def op_write(self, m):
        start, length = self.pick_range(m)
        data = pattern(f"w{len(self.log)}", length)
        self.log.append(f"dev {m.dev_id}: write {start}+{length}")
        if any(m.fragile(b) and (b * BLOCK < start or (b + 1) * BLOCK > start + length)
               for b in self.blocks(start, length)):
            raise AssertionError("pick_range left a partial write to a fragile block")
        self.expect_ok("write", pwrite, m.dev.path, start, data)
        self.write_effect(m, start, length)
        m.set_data(start, data)

    def op_partial_write_to_pending(self, m):
        """A partial write into a pending block fails and changes nothing."""
        if not m.pending:
            return
        b = m.rng.choice(sorted(m.pending))
        off = b * BLOCK + m.rng.randrange(BS - 1) * 512
        self.log.append(f"dev {m.dev_id}: partial write into pending {b} at {off}")
        self.expect_eio("partial write into a pending block", pwrite, m.dev.path, off,
                        pattern("p", 512))

    def op_zeroout(self, m):
        start, length = self.pick_range(m)
        self.log.append(f"dev {m.dev_id}: zeroout {start}+{length}")
        fd = os.open(m.dev.path, os.O_WRONLY)
        try:
            self.expect_ok("BLKZEROOUT", fcntl.ioctl, fd, BLKZEROOUT,
                           struct.pack("=QQ", start, length))
        finally:
            os.close(fd)
        self.write_effect(m, start, length)
        m.set_data(start, bytes(length))

    def op_discard(self, m):
        """A discard is a hint: whatever it leaves is right, on any block
        (it may also be refused); it changes no block's state."""
        start, length = self.pick_range(m)
        self.log.append(f"dev {m.dev_id}: discard {start}+{length}")
        fd = os.open(m.dev.path, os.O_WRONLY)
        try:
            fcntl.ioctl(fd, BLKDISCARD, struct.pack("=QQ", start, length))
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EIO):
                self.fail(f"discard: errno {e.errno}")
        finally:
            os.close(fd)
        m.set_unknown(start, length)

    def op_read(self, m):
        start, length = self.pick_range(m, max_blocks=64)
        self.log.append(f"dev {m.dev_id}: read {start}+{length}")
        bad = [b for b in self.blocks(start, length) if m.unreadable(b)]
        if bad:
            self.expect_eio(f"read over unreadable blocks {bad}", pread, m.dev.path,
                            start, length)
            self.read_effect(m, bad)
            return
        got = self.expect_ok("read", pread, m.dev.path, start, length)
        wrong = m.matches(start, got)
        if wrong:
            self.fail(f"dev {m.dev_id}: read {start}+{length}: sectors {wrong[:8]} differ")

    def op_force(self, m):
        b = m.rng.randrange(NBLOCKS)
        self.log.append(f"dev {m.dev_id}: force_remap block {b}")
        try:
            m.dev.force(b * BS + m.rng.randrange(BS))
        except CmdError as e:
            if b in m.mapped or b in m.pending:
                if "File exists" not in e.err and "EEXIST" not in e.err:
                    self.fail(f"force_remap of remapped block {b}: {e.err}")
            elif self.scan and b in m.bad and "File exists" in e.err:
                m.pending.add(b)        # the scanner found it first
            elif b in m.bad:
                if "Input/output error" not in e.err:
                    self.fail(f"force_remap of unreadable block {b}: {e.err}")
            else:
                self.fail(f"force_remap of block {b} refused: {e.err}")
            return
        if b in m.mapped or b in m.pending or b in m.bad:
            self.fail(f"force_remap of block {b} accepted (mapped/pending/bad)")
        m.mapped.add(b)

    def op_new_bad_set(self, m):
        """The main device's bad blocks change: some recover, some fail.
        Its first, middle and last blocks stay good (the wholesale-failure
        probe reads them)."""
        rng = m.rng
        # With the scanner, blocks do not recover: one that failed its read
        # could be recorded pending after the reload made it good again.
        keep = {b for b in m.bad if self.scan or rng.random() < 0.6}
        spots = [b for b in range(1, NBLOCKS - 1) if b != NBLOCKS // 2]
        if rng.random() < 0.5:
            new = set(rng.sample(spots, rng.randrange(1, 6)))
        else:   # a run of neighbours, as a scratch leaves
            s = rng.choice(spots[:-8])
            new = {b for b in range(s, s + rng.randrange(2, 8)) if b in spots}
        m.bad = keep | new
        self.log.append(f"dev {m.dev_id}: bad blocks now {sorted(m.bad)}")
        self.dm.reload(m.bad_name, self.bad_table(m))

    def op_spare_faults(self, _m):
        """Some spare blocks fail reads and writes from now on, others
        recover: blocks that live on them, and blocks moved to the spare
        next.  Single blocks, never two side by side, so that a move finds
        a good spare block within its four tries; the spare's first, middle
        and last blocks (the wholesale-failure probe) are metadata or far
        beyond the blocks in use."""
        rng = self.rng
        used = sorted(s for m in self.devs for s in m.spare_of.values())
        top = used[-1] + 1 if used else 0
        keep = {s for s in self.bad_spare if rng.random() < 0.5}
        pick = rng.sample(used, min(len(used), rng.randrange(1, 5)))
        pick += [top + rng.randrange(24) for _ in range(rng.randrange(0, 3))]
        new = set(keep)
        for s in pick:
            if s - 1 not in new and s + 1 not in new:
                new.add(s)
        self.bad_spare.clear()
        self.bad_spare.update(new)
        self.log.append(f"bad spare blocks now {sorted(self.bad_spare)}")
        self.dm.reload(self.spare_name, self.spare_table())

    def op_reload(self, m):
        self.log.append(f"dev {m.dev_id}: reload")
        self.dm.reload(m.dev.name, self.table(m))

    def op_suspend_with_write(self, m):
        """A write sent while the device is suspended waits, then lands."""
        start, length = self.pick_range(m)
        data = pattern(f"s{len(self.log)}", length)
        self.log.append(f"dev {m.dev_id}: suspended write {start}+{length}")
        dmsetup("suspend", m.dev.name)
        err = []

        def writer():
            try:
                pwrite(m.dev.path, start, data)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=writer, daemon=True)
        try:
            t.start()
            # Held: the writer sleeps in the kernel (D) until the resume.
            held = wait_for(lambda: not t.is_alive() or task_state(t) == "D", timeout=30)
            held = held and t.is_alive()
        finally:
            dmsetup("resume", m.dev.name)
        t.join(60)
        if t.is_alive():
            self.fail("a write held by a suspend did not complete after resume")
        if err:
            self.fail(f"held write failed: {err[0]}")
        if not held:
            self.fail("a write to a suspended device was not held")
        self.write_effect(m, start, length)
        m.set_data(start, data)

    def op_idle(self, _m):
        """No I/O for a while: the scanner reads whole chunks."""
        self.log.append("idle")
        time.sleep(1.5)

    def op_recreate(self, m):
        self.log.append(f"dev {m.dev_id}: remove and create again")
        self.detach(m)
        self.attach(m)

    def op_free_resume(self, _m):
        self.log.append("free and resume the pool")
        for m in self.devs:
            self.detach(m)
        self.mgr.free(SLOT)
        self.resume_pool()
        for m in self.devs:
            self.attach(m)

    # ---- checks -------------------------------------------------------------

    def check_lists(self, devs=None):
        """The remap lists and counters of devs (default: all) against the
        model; with all of them, no spare block is given twice."""
        spares = {}
        for m in devs or self.devs:
            for _ in range(50):        # until no scanner finding comes between
                got = self.adopt(m, m.dev.remaps())
                st = m.dev.status()
                if not self.scan or self.adopt(m, m.dev.remaps()) == got:
                    break       # no block found by the scanner in between
            want = {b: "mapped" for b in m.mapped}
            want.update({b: "pending" for b in m.pending})
            have = {b: st for b, (_, st) in got.items()}
            if have != want:
                extra = sorted(set(have.items()) - set(want.items()))
                missing = sorted(set(want.items()) - set(have.items()))
                self.fail(f"dev {m.dev_id}: remaps differ: unexpected {extra[:10]}, "
                          f"missing {missing[:10]}")
            if (st["remaps"], st["pending"]) != (len(m.mapped), len(m.pending)):
                self.fail(f"dev {m.dev_id}: status {st}, model {len(m.mapped)} "
                          f"mapped, {len(m.pending)} pending")
            # Data moved to the spare since the last look is never left on
            # a spare block that fails (one found bad is retired and another
            # one used).  A block recorded pending has no data written.
            for b, (s, state) in got.items():
                if state == "mapped" and m.spare_of.get(b) != s and s in self.bad_spare:
                    self.fail(f"dev {m.dev_id}: block {b} ({state}) moved to bad "
                              f"spare block {s}")
            m.spare_of = {b: s for b, (s, _) in got.items()}
            for b, (s, _) in got.items():
                if s in spares:
                    self.fail(f"spare block {s} given to {spares[s]} and "
                              f"to dev {m.dev_id} block {b}")
                spares[s] = (m.dev_id, b)

    def adopt(self, m, got):
        """With the scanner running, an unreadable block of the main device
        may have become pending by itself: take that into the model."""
        if self.scan:
            for b, (_, state) in got.items():
                if state == "pending" and b in m.bad and b not in m.mapped:
                    m.pending.add(b)
        return got

    def scanner_sweep(self):
        """Two more passes of the scanner, with the devices idle: every
        block that does not read on the main device must then be pending."""
        self.log.append("scanner sweep")
        base = os.path.join(SYSFS_POOLS, str(SLOT), "devices")

        def passes(m):
            with open(os.path.join(base, str(m.dev_id), "scan_passes")) as f:
                return int(f.read())

        before = {m.dev_id: passes(m) for m in self.devs}
        self.mgr.msg("switch_to", SLOT)
        self.mgr.msg("scan_start")
        if not wait_for(lambda: all(passes(m) >= before[m.dev_id] + 2 for m in self.devs),
                        timeout=120, step=0.5):
            self.fail("the scanner did not make two passes in 120 s")
        self.check_lists()
        for m in self.devs:
            missed = sorted(b for b in m.bad if b not in m.mapped and b not in m.pending)
            if missed:
                self.fail(f"dev {m.dev_id}: unreadable blocks {missed[:10]} not pending "
                          f"after two passes of the scanner")

    def check_all_data(self):
        """Every readable block, through the device, and where it lives."""
        ds = self.ds
        for m in self.devs:
            got = bytearray(NBLOCKS * BLOCK)
            b = 0
            while b < NBLOCKS:      # runs of readable blocks, one read each
                if m.unreadable(b):
                    b += 1
                    continue
                e = b
                while e < NBLOCKS and not m.unreadable(e):
                    e += 1
                got[b * BLOCK:e * BLOCK] = pread(m.dev.path, b * BLOCK, (e - b) * BLOCK)
                b = e
            on_main = pread(m.backing, 0, NBLOCKS * BLOCK)
            where = m.dev.remaps()
            for b in range(NBLOCKS):
                if m.unreadable(b):
                    continue
                off = b * BLOCK
                if m.matches(off, got[off:off + BLOCK]):
                    self.fail(f"dev {m.dev_id}: block {b} reads wrong")
                if b in m.mapped:
                    direct = pread(self.spare, (ds + where[b][0] * BS) * 512, BLOCK)
                    side = "spare"
                else:
                    direct = on_main[off:off + BLOCK]
                    side = "main device"
                if m.matches(off, direct):
                    self.fail(f"dev {m.dev_id}: block {b} is not right on the {side}")

    def close(self, failing=False):
        """Remove the devices and free the pool; if the test is failing
        already, a failure here is logged but does not hide that one."""
        locked = self.lock.acquire(timeout=60)   # a stuck thread may hold it
        try:
            free_pool(self.mgr, self.dm, SLOT, keep=(self.spare_name,))
            self.dm.remove(self.spare_name)
        except Exception as e:
            if not failing:
                raise
            print(f"clean-up after the failure: {e}")
        finally:
            if locked:
                self.lock.release()


OPS = [
    ("op_write", 30), ("op_read", 22), ("op_force", 10), ("op_zeroout", 5),
    ("op_discard", 4), ("op_new_bad_set", 8), ("op_partial_write_to_pending", 3),
    ("op_reload", 4), ("op_suspend_with_write", 4), ("op_recreate", 4),
    ("op_free_resume", 2), ("check_all_data", 4), ("op_spare_faults", 3),
]
POOL_WIDE = ("op_free_resume", "check_all_data", "op_spare_faults")


def settings(nops=250):
    seed = int(os.environ.get("RM_MODEL_SEED", random.randrange(1 << 32)))
    return seed, int(os.environ.get("RM_MODEL_OPS", nops))


def run_ops(r, m, nops, ops, stop=None):
    """nops random operations from ops, on m (None: a device picked at
    random each time), each followed by a check of the remap lists."""
    rng = m.rng if m else r.rng
    names = [n for n, _ in ops]
    weights = [w for _, w in ops]
    for _ in range(nops):
        if stop is not None and stop.is_set():
            return
        name = rng.choices(names, weights)[0]
        dev = m or rng.choice(r.devs)
        with r.reporting():
            if name == "check_all_data":
                r.log.append("check all data")
                r.check_all_data()
            else:
                getattr(r, name)(dev)
            # Only this device's list, but all of them after pool-wide operations.
            r.check_lists(None if name in POOL_WIDE else [dev])


def finish(r, seed, nops, t0):
    """A last free/resume, then everything is checked."""
    with r.reporting():
        r.op_free_resume(None)
        r.check_lists()
        r.check_all_data()
    kinds = {k: sum(1 for line in r.log if k in line)
             for k in ("write", "read", "force", "bad spare")}
    print(f"seed {seed}: {nops} operations in {time.monotonic() - t0:.0f} s; "
          f"{sum(len(m.mapped) for m in r.devs)} mapped, "
          f"{sum(len(m.pending) for m in r.devs)} pending, "
          f"{pool_attr(SLOT, 'blocks_retired')} spare blocks retired; {kinds}")


@contextlib.contextmanager
def model_run(dm, loopdev, what, scan=False, nops=250):
    """A Run, its seed and number of operations; its devices go away at the
    end, without hiding the test's own failure."""
    seed, nops = settings(nops)
    r = Run(dm, loopdev, random.Random(seed), scan=scan)
    r.log.append(f"seed {seed}{what}")
    ok = False
    try:
        yield r, seed, nops
        ok = True
    finally:
        r.close(failing=not ok)


def test_random_operations_match_the_model(dm, loopdev):
    with model_run(dm, loopdev, "") as (r, seed, nops):
        t0 = time.monotonic()
        run_ops(r, None, nops, OPS)
        finish(r, seed, nops, t0)


def test_random_operations_with_the_scanner_running(dm, loopdev):
    """The same, with the pool's scanner passing over the devices every
    second (blocks go bad and stay bad): an unreadable block may turn
    pending by itself at any time, and after two last passes every one
    must be."""
    with model_run(dm, loopdev, " (scanner)", scan=True, nops=150) as (r, seed, nops):
        t0 = time.monotonic()
        run_ops(r, None, nops, OPS + [("op_idle", 6)])
        with r.reporting():
            r.scanner_sweep()
        finish(r, seed, nops, t0)


def test_random_operations_on_both_devices_at_once(dm, loopdev):
    """The same, with each device driven by a thread of its own: repairs,
    forced remaps and commits of the two devices overlap in the pool."""
    with model_run(dm, loopdev, " (two threads)") as (r, seed, nops):
        ops = [(n, w) for n, w in OPS if n not in POOL_WIDE]
        stop, failed = threading.Event(), []

        def drive(m):
            try:
                run_ops(r, m, nops // 2, ops, stop)
            except BaseException as e:      # pytest.fail raises a BaseException
                failed.append(e)
                stop.set()

        t0 = time.monotonic()
        threads = [threading.Thread(target=drive, args=(m,), daemon=True) for m in r.devs]
        for t in threads:
            t.start()
        deadline = t0 + 600
        for t in threads:
            t.join(max(0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            stop.set()
            for t in threads:
                t.join(60)      # the operation in hand, then they stop
            r.fail("the operations did not finish in 10 minutes")
        if failed:
            raise failed[0]
        finish(r, seed, nops, t0)
