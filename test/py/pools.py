# SPDX-License-Identifier: GPL-2.0-only
"""Helpers for spare pools: the manager device, messages, on-disk layout."""
import contextlib
import os
import struct

from dmtools import CmdError, blockdev_sectors, dmsetup, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MD_BLOCK = 4096
SB_COPIES = 8
SYSFS_POOLS = "/sys/module/dm_remap/pools"


class Manager:
    """A remap-mgr device and its messages."""

    def __init__(self, dm, name=None):
        self.dm = dm
        self.name = dm.create("0 1 remap-mgr", name=name, hint="mgr")

    def msg(self, *args):
        """Send a message; returns what the target answered (may be empty)."""
        return dmsetup("message", self.name, "0", *args).strip()

    def format(self, dev, *opts):
        return self.msg("format_spare", dev, *opts)

    def resume(self, slot, dev, scan=False):
        """Resume a pool; its scanner is switched off unless scan is set
        (tests that do not test it must not see its reads and commits)."""
        self.msg("switch_to", slot)
        out = self.msg("resume_spare", dev)
        if not scan:
            with open(os.path.join(SYSFS_POOLS, str(slot), "scan_enabled"), "w") as f:
                f.write("0")
        return out

    def free(self, slot):
        self.msg("switch_to", slot)
        return self.msg("free_spare")

    def list(self):
        """{slot: fields} from the list message."""
        out = {}
        for line in self.msg("list").splitlines():
            f = line.split()
            out[int(f[0])] = f[1:]
        return out

    def status(self):
        return dmsetup("status", self.name).split()[3:]


def pool_attr(slot, name):
    with open(os.path.join(SYSFS_POOLS, str(slot), name)) as f:
        return f.read().strip()


def pool_active(slot):
    return os.path.isdir(os.path.join(SYSFS_POOLS, str(slot)))


def free_pool(mgr, dm, slot, keep=()):
    """Remove the test's dm devices other than the manager (and those in
    keep), then free the pool in slot if it is active: the pool is busy
    while a device is attached, so a test that failed half-way still
    releases everything in this order."""
    for name in reversed(list(dm.names)):
        if name != mgr.name and name not in keep:
            dm.remove(name)
    if pool_active(slot):
        try:
            mgr.free(slot)
        except CmdError:
            # A pool whose metadata failed is released with EIO.
            if pool_active(slot):
                raise


def refused(fn, *args):
    """Run a message that must be refused; returns the CmdError."""
    try:
        fn(*args)
    except CmdError as e:
        return e
    raise AssertionError(f"{fn.__name__}{args} was accepted")


def read_block(dev, blocknr):
    with open(dev, "rb") as f:
        f.seek(blocknr * MD_BLOCK)
        return f.read(MD_BLOCK)


def write_block(dev, blocknr, data):
    fd = os.open(dev, os.O_WRONLY | os.O_SYNC)
    try:
        os.pwrite(fd, data, blocknr * MD_BLOCK)
    finally:
        os.close(fd)


def sb_seq(block):
    """Sequence number of a superblock copy (no validation)."""
    return struct.unpack_from("<Q", block, 32)[0]


def tb_seq(block):
    """Sequence number of a table block (no validation)."""
    return struct.unpack_from("<Q", block, 24)[0]


def corrupt_block(dev, blocknr, offset=100):
    """Flip one byte of a metadata block."""
    blk = bytearray(read_block(dev, blocknr))
    blk[offset] ^= 0xff
    write_block(dev, blocknr, bytes(blk))


def table_geometry(dev):
    """(table_start, nr_logical) from superblock copy 0."""
    blk = read_block(dev, 0)
    return struct.unpack_from("<Q", blk, 72)[0], struct.unpack_from("<Q", blk, 80)[0]


def device_records(mgr, slot):
    """{dev_id: {key: value}} from list_devices (numbers as int)."""
    mgr.msg("switch_to", slot)
    out = {}
    for line in mgr.msg("list_devices").splitlines():
        f = line.split()
        rec = dict(x.split("=", 1) for x in f[1:])
        out[int(f[0])] = {k: int(v) if v.isdigit() else v
                          for k, v in rec.items()}
    return out


def devices(mgr, slot):
    """{dev_id: {"sectors": n, "blocks": n}} from list_devices."""
    return {i: {"sectors": r["sectors"], "blocks": r["blocks"]}
            for i, r in device_records(mgr, slot).items()}


def labels(mgr, slot):
    """{dev_id: (name, locator)}; ("-", "-") when a device has none."""
    return {i: (r["name"], r["locator"])
            for i, r in device_records(mgr, slot).items()}


def data_start(spare):
    """First data sector of the pool on spare (superblock copy 0)."""
    return struct.unpack_from("<Q", read_block(spare, 0), 88)[0]


class RemapDev:
    """A remap device in a pool, with its messages and status."""

    def __init__(self, dm, main, pool, dev_id=1, sectors=None, opts=""):
        self.dm, self.main, self.pool, self.dev_id = dm, main, pool, dev_id
        self.sectors = sectors or blockdev_sectors(main)
        self.name = dm.create(f"0 {self.sectors} remap {dev_id} {main} {pool} {opts}".rstrip(),
                              hint="remap")
        self.path = dm.path(self.name)

    def msg(self, *args):
        return dmsetup("message", self.name, "0", *args).strip()

    def force(self, sector):
        return self.msg("force_remap", sector)

    def remaps(self):
        """{main block: (spare block, state)}"""
        out = {}
        for line in self.msg("list_remaps").splitlines():
            b, s, st = line.split()
            out[int(b)] = (int(s), st)
        return out

    def status(self):
        f = dmsetup("status", self.name).split()[3:]
        keys = ["pool_id", "dev_id", "remaps", "pending", "read_errors", "write_errors",
                "remapped_ios", "state"]
        st = dict(zip(keys, f))
        for k in keys[:-1]:
            st[k] = int(st[k])
        return st

    def remove(self):
        self.dm.remove(self.name)


class PoolEnv:
    """A manager, a pool in `slot` on a 64 MiB spare, and a 16 MiB main
    device (`main`, also called `backing` when the tests put a bad-sector
    table over it).  close() removes the test's other dm devices and frees
    the pool."""

    def __init__(self, dm, loopdev, slot):
        self.dm, self.pool = dm, slot
        self.mgr = Manager(dm)
        self.spare, self.main = loopdev(64), loopdev(16)
        self.backing = self.main
        self.mgr.format(self.spare)
        self.mgr.resume(slot, self.spare)

    def close(self):
        free_pool(self.mgr, self.dm, self.pool)


def mkpool(spare, main, dev_id, seed, n, tmp_path):
    """A pool on spare holding n remaps of dev_id over main, written by
    build/mkpool (forcing them one commit at a time would take too long
    here): {main block: (spare block, state)}."""
    listfile = tmp_path / "remaps"
    run(os.path.join(ROOT, "build", "mkpool"), "-d", str(dev_id), "-s", str(seed),
        "-l", str(listfile), spare, str(blockdev_sectors(main)), str(n))
    remaps = {}
    for line in listfile.read_text().splitlines():
        b, s, st = line.split()
        remaps[int(b)] = (int(s), st)
    assert len(remaps) == n
    return remaps


@contextlib.contextmanager
def small_pool(dm, loopdev, slot, scan=False):
    """(manager, spare, data blocks) of a pool in slot on a spare that holds
    just a few more blocks than the minimum: 36 metadata blocks (8
    superblocks, 7 logicals x 4 slots) + 20 data blocks; freed, with the
    test's devices, at the end."""
    mgr = Manager(dm)
    backing = loopdev(8)
    small = run("losetup", "--sizelimit", str((36 + 20) * 4096), "-f", "--show",
                run("losetup", "-n", "-O", "BACK-FILE", backing).strip()).strip()
    try:
        mgr.format(small)
        mgr.resume(slot, small, scan=scan)
        yield mgr, small, int(pool_attr(slot, "blocks_total"))
        free_pool(mgr, dm, slot)
    finally:
        run("losetup", "-d", small)
