# SPDX-License-Identifier: GPL-2.0-only
"""Fixtures shared by the dm-remap VM test suite.

The suite runs inside the guest kernel (make check) or, with VM=0, on a host
that can load modules.  Every test gets:
  * a kernel-log guard that fails it on BUG/WARNING/Call Trace/oops or a new
    taint, unless the test declares the pattern with @pytest.mark.allow_kmsg;
  * leak checks: no dm device, loop device or dm_remap module reference that
    the test created may survive it.
Factories: `loopdev(size_mb)`, `dm.create(table)`, `bad_disk`, `flakey`,
`delayed`.
"""
import errno
import fcntl
import os
import platform
import re
import time
import uuid

import pytest

from dmtools import (CmdError, blockdev_sectors, dm_names, dmsetup,
                     linear_table, loop_devices, run, segments_table, wait_for)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KO = os.environ.get("RM_KO", os.path.join(ROOT, "dm-remap.ko"))
SCRATCH = os.environ.get("RM_SCRATCH", "/tmp/dm-remap-scratch")
DEP_MODULES = ["dm-mod", "dm-bufio", "libcrc32c", "loop", "dm-flakey", "dm-delay"]

KMSG_BAD = re.compile(r"BUG:|WARNING:|Call Trace|general protection|Oops|"
                      r"kernel BUG|UBSAN|KASAN|list_(add|del) corruption|"
                      r"refcount_t:|INFO: task .* blocked|soft lockup|"
                      r"hard LOCKUP|Unable to handle")
# O (out-of-tree, 4096) and E (unsigned, 8192) come with any module of ours.
TAINT_ALLOWED = 4096 | 8192


def module_loaded():
    return os.path.isdir("/sys/module/dm_remap")


def load_module():
    if not module_loaded():
        run("insmod", KO)


def unload_module():
    if module_loaded():
        run("rmmod", "dm_remap")


def module_refcnt():
    with open("/sys/module/dm_remap/refcnt") as f:
        return int(f.read())


def tainted():
    with open("/proc/sys/kernel/tainted") as f:
        return int(f.read())


def pytest_report_header(config):
    where = "guest VM" if os.environ.get("IN_VM") else "host"
    return [f"dm-remap tests in {where}: kernel {platform.release()}, module {KO}"]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_kmsg(regex): kernel log lines this test expects")


@pytest.fixture(scope="session", autouse=True)
def environment():
    if os.geteuid() != 0:
        pytest.exit("the dm-remap tests need root", returncode=2)
    for m in DEP_MODULES:
        run("modprobe", m)
    os.makedirs(SCRATCH, exist_ok=True)
    load_module()
    yield
    # Leave the module loaded only if it was loaded by someone else before.


class Kmsg:
    """Reads the kernel log records that arrive after construction."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def read(self):
        lines = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError:      # EPIPE: records were overwritten; go on
                continue
            if not rec:
                break
            text = rec.decode(errors="replace")
            msg = text.split(";", 1)[1] if ";" in text else text
            lines.append(msg.split("\n", 1)[0])
        return lines

    def close(self):
        os.close(self.fd)


@pytest.fixture
def kmsg():
    """The kernel log of this test (the guard below also checks it)."""
    k = Kmsg()
    yield k
    k.close()


@pytest.fixture(autouse=True)
def kernel_log_guard(request):
    k = Kmsg()
    taint_before = tainted()
    yield
    lines = k.read()
    k.close()
    allowed = [re.compile(m.args[0]) for m in request.node.iter_markers("allow_kmsg")]
    bad = [ln for ln in lines if KMSG_BAD.search(ln) and not any(a.search(ln) for a in allowed)]
    new_taint = tainted() & ~taint_before & ~TAINT_ALLOWED
    if bad:
        pytest.fail("kernel log shows a problem:\n  " + "\n  ".join(lines[-80:]), pytrace=False)
    if new_taint:
        pytest.fail(f"kernel became tainted: {new_taint:#x} (tainted={tainted():#x})", pytrace=False)


@pytest.fixture(autouse=True)
def leak_guard():
    dm_before, loop_before, pools_before = dm_names(), loop_devices(), active_pools()
    yield
    dm_leak = dm_names() - dm_before
    loop_leak = loop_devices() - loop_before
    msgs = []
    if dm_leak:
        msgs.append(f"dm devices left behind: {sorted(dm_leak)}")
    if loop_leak:
        msgs.append(f"loop devices left behind: {sorted(loop_leak)}")
    pools = active_pools() - pools_before
    if pools:
        msgs.append(f"pools left active: {sorted(pools)}")
    if module_loaded() and not dm_before and module_refcnt() != 0:
        msgs.append(f"dm_remap module refcount is {module_refcnt()} with no devices")
    if msgs:
        pytest.fail("; ".join(msgs), pytrace=False)


class LoopFactory:
    def __init__(self, tag):
        self.tag = tag
        self.devs = []
        self.added = []

    LOOP_CTL_ADD, LOOP_CTL_REMOVE = 0x4C80, 0x4C81

    def __call__(self, size_mb, mbr=None, index=None):
        """A loop device on a fresh tmpfs file of size_mb MiB (zero-filled);
        with mbr, that sector first and the kernel's partitions of it; with
        index, /dev/loop<index>, which must not exist yet (it is added, and
        removed again at cleanup)."""
        path = os.path.join(SCRATCH, f"{self.tag}-{len(self.devs)}.img")
        with open(path, "wb") as f:
            f.truncate(size_mb << 20)
            if mbr:
                f.write(mbr)
        args = ["-P"] if mbr else []
        if index is None:
            dev = run("losetup", "-f", "--show", *args, path).strip()
        else:
            self._control(self.LOOP_CTL_ADD, index)
            self.added.append(index)
            dev = f"/dev/loop{index}"
            assert wait_for(lambda: os.path.exists(dev)), f"no {dev}"
            run("losetup", *args, dev, path)
        self.devs.append((dev, path))
        return dev

    def read_only_view(self, dev, offset, size):
        """A read-only loop device on bytes [offset, offset + size) of the
        file behind dev (one of ours): reads see that file's data (one page
        cache), writes fail."""
        path = next(p for d, p in self.devs if d == dev)
        view = run("losetup", "-r", "-o", str(offset), "--sizelimit", str(size),
                   "-f", "--show", path).strip()
        self.devs.append((view, path))
        return view

    @staticmethod
    def _control(request, index):
        fd = os.open("/dev/loop-control", os.O_RDWR)
        try:
            fcntl.ioctl(fd, request, index)
        finally:
            os.close(fd)

    def cleanup(self):
        errors = []
        for dev, path in reversed(self.devs):
            try:
                run("losetup", "-d", dev)
            except CmdError as e:
                errors.append(str(e))
            if os.path.exists(path):
                os.unlink(path)
        for index in self.added:
            # A udev probe may still hold it open just after the detach.
            for tries in range(50):
                try:
                    self._control(self.LOOP_CTL_REMOVE, index)
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or tries == 49:
                        errors.append(f"loop{index}: LOOP_CTL_REMOVE: {e}")
                        break
                    time.sleep(0.1)
        return errors


@pytest.fixture
def loopdev(request):
    f = LoopFactory(uuid.uuid4().hex[:8])
    yield f
    errors = f.cleanup()
    if errors:
        pytest.fail("loop cleanup failed: " + "; ".join(errors), pytrace=False)


class DmFactory:
    """Creates dm devices with unique names and removes them all afterwards."""

    def __init__(self, tag):
        self.tag = tag
        self.names = []
        self.made = 0
        self.pools_before = active_pools()

    def name(self, hint="dev"):
        """A name never given before (not the count of live devices: after
        a removal that could name a device still there)."""
        self.made += 1
        return f"rmt-{self.tag}-{hint}-{self.made}"

    def create(self, table, name=None, hint="dev"):
        name = name or self.name(hint)
        dmsetup("create", name, "--table", table)
        self.names.append(name)
        return name

    @staticmethod
    def path(name):
        return f"/dev/mapper/{name}"

    def reload(self, name, table):
        """Swap the table of a live device (suspend, load, resume)."""
        dmsetup("suspend", name)
        try:
            dmsetup("load", name, "--table", table)
        finally:
            dmsetup("resume", name)

    def remove(self, name):
        dmsetup("remove", "--retry", name)
        self.names.remove(name)

    def forget(self, name):
        """The test removed the device itself."""
        self.names.remove(name)

    def _remove(self, names, errors):
        for name in names:
            try:
                dmsetup("resume", name, check=False)
                dmsetup("remove", "--retry", name)
            except CmdError as e:
                errors.append(str(e))
            self.names.remove(name)

    def cleanup(self):
        """Removes the test's devices; a pool the test left active (it
        failed half-way) is freed after its remap devices are gone and
        before the devices below it, and reported, so that the tests after
        it do not inherit a busy slot and a module reference."""
        errors = []
        left = active_pools() - self.pools_before
        if left:
            self._remove([n for n in reversed(self.names) if is_remap_device(n)], errors)
            for slot in sorted(left):
                errors.append(f"pool {slot} left active: {free_slot(slot)}")
        self._remove(list(reversed(self.names)), errors)
        return errors


def active_pools():
    try:
        return {int(s) for s in os.listdir("/sys/module/dm_remap/pools")}
    except FileNotFoundError:
        return set()


def is_remap_device(name):
    t = dmsetup("table", name, check=False).stdout.split()
    return len(t) > 2 and t[2] == "remap"


def free_slot(slot):
    """free_spare of slot through a manager device of its own."""
    mgr = f"rmt-cleanup-mgr-{slot}"
    try:
        dmsetup("create", mgr, "--table", "0 1 remap-mgr")
        try:
            dmsetup("message", mgr, "0", "switch_to", str(slot))
            dmsetup("message", mgr, "0", "free_spare", check=False)
        finally:
            dmsetup("remove", "--retry", mgr)
    except CmdError as e:
        return f"cannot free it: {e}"
    return "freed" if slot not in active_pools() else "still active"


@pytest.fixture
def dm(request):
    f = DmFactory(uuid.uuid4().hex[:6])
    yield f
    errors = f.cleanup()
    if errors:
        pytest.fail("dm cleanup failed: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def bad_disk(dm):
    """bad_disk(backing, [(start, len), ...]) -> dm name of a device that is
    `backing` with error segments at those sectors.  bad_disk.grow(name,
    backing, ranges) reloads it with a new bad set while it is live."""

    def make(backing, bad):
        return dm.create(segments_table(backing, blockdev_sectors(backing), bad), hint="bad")

    def grow(name, backing, bad):
        dm.reload(name, segments_table(backing, blockdev_sectors(backing), bad))

    make.grow = grow
    return make


@pytest.fixture
def flakey(dm):
    """flakey(backing, up_s, down_s, *features) -> dm name of a dm-flakey device."""

    def make(backing, up, down, *features):
        n = blockdev_sectors(backing)
        feat = f" {len(features)} {' '.join(features)}" if features else ""
        return dm.create(f"0 {n} flakey {backing} 0 {up} {down}{feat}", hint="flakey")

    return make


@pytest.fixture
def delayed(dm):
    """delayed(backing, [(start, len)], ms) -> dm name of a device whose given
    sectors are served through dm-delay with `ms` of latency."""

    def make(backing, ranges, ms):
        n = blockdev_sectors(backing)
        table = segments_table(backing, n, ranges, target="delay",
                               target_args="{dev} {start} " + str(ms))
        return dm.create(table, hint="slow")

    return make


__all__ = ["load_module", "unload_module", "module_loaded", "module_refcnt",
           "linear_table", "wait_for"]
