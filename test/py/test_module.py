# SPDX-License-Identifier: GPL-2.0-only
"""Module load/unload and the bare life cycle of both targets."""
import errno
import os
import re

import pytest

from conftest import ROOT, load_module, module_loaded, module_refcnt, unload_module
from dmtools import CmdError, dmsetup, pattern, pread, pwrite, run
from pools import Manager, free_pool


def targets():
    return {line.split()[0]: line.split()[1] for line in dmsetup("targets").splitlines()}


def test_module_registers_both_targets():
    t = targets()
    assert "remap-mgr" in t and "remap" in t


def test_module_reports_its_version():
    """The version DKMS builds under (dkms.conf), also in modinfo."""
    with open(os.path.join(ROOT, "dkms.conf")) as f:
        want = re.search(r'^PACKAGE_VERSION="([^"]+)"$', f.read(), re.M).group(1)
    with open("/sys/module/dm_remap/version") as f:
        assert f.read().strip() == want


def test_unload_and_reload_twice():
    for _ in range(2):
        unload_module()
        assert not module_loaded()
        t = targets()
        assert "remap-mgr" not in t and "remap" not in t
        load_module()
        assert module_loaded()
        assert "remap-mgr" in targets()


def test_rmmod_refused_while_a_target_is_in_use(dm):
    name = dm.create("0 1 remap-mgr", hint="mgr")
    assert module_refcnt() > 0
    with pytest.raises(CmdError):
        run("rmmod", "dm_remap")
    assert module_loaded()
    dm.remove(name)
    assert module_refcnt() == 0


def test_mgr_create_status_remove(dm):
    name = dm.create("0 1 remap-mgr", hint="mgr")
    assert dmsetup("table", name).split()[2] == "remap-mgr"
    dmsetup("status", name)
    dm.remove(name)
    assert name not in dmsetup("ls")


def test_mgr_maps_no_data(dm):
    name = dm.create("0 8 remap-mgr", hint="mgr")
    with pytest.raises(OSError) as e:
        pread(f"/dev/mapper/{name}", 0, 4096)
    assert e.value.errno == errno.EIO


@pytest.mark.parametrize("table, why", [
    ("0 1 remap-mgr extra", "takes no arguments"),
])
def test_mgr_bad_table_rejected(dm, kmsg, table, why):
    with pytest.raises(CmdError):
        dm.create(table, hint="mgr")
    # dm-ioctl rejects the table; the reason goes to the kernel log.
    assert any(f"remap-mgr: remap-mgr {why}" in line for line in kmsg.read())


@pytest.fixture
def pool0(dm, loopdev):
    """An active pool in slot 0 for the remap devices of these tests."""
    mgr = Manager(dm)
    spare = loopdev(32)
    mgr.format(spare)
    mgr.resume(0, spare)
    yield 0
    free_pool(mgr, dm, 0)


def test_remap_create_io_remove(dm, loopdev, pool0):
    main = loopdev(8)
    sectors = 8 << 11
    name = dm.create(f"0 {sectors} remap 1 {main} 0", hint="remap")
    dev = f"/dev/mapper/{name}"
    data = pattern("create-io", 64 << 10)
    pwrite(dev, 1 << 20, data)
    assert pread(dev, 1 << 20, len(data)) == data
    assert pread(main, 1 << 20, len(data)) == data
    fields = dmsetup("table", name).split()
    st = os.stat(main)
    assert fields[2:] == ["remap", "1", f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}", "0"]


@pytest.mark.parametrize("args", [
    "",                       # no arguments
    "1",                      # too few
    "1 {main}",               # no pool id
    "x {main} 0",             # bad dev_id
    "1 {main} y",             # bad pool id
    "1 /dev/nonexistent 0",   # missing device
    "1 {main} 1",             # no pool in that slot
    "1 {main} 64",            # pool id out of range
    "4294967296 {main} 0",    # dev_id out of range
])
def test_remap_bad_table_rejected(dm, loopdev, pool0, args):
    main = loopdev(1)
    with pytest.raises(CmdError):
        dm.create(f"0 2048 remap {args.format(main=main)}".rstrip(), hint="remap")
