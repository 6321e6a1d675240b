# SPDX-License-Identifier: GPL-2.0-only
"""The fault-injection builders really inject faults in this kernel."""
import errno
import time

import pytest

from dmtools import pattern, pread, pwrite


def test_bad_disk_fails_exactly_the_chosen_sectors(loopdev, bad_disk):
    main = loopdev(4)
    name = bad_disk(main, [(64, 8)])
    dev = f"/dev/mapper/{name}"
    assert len(pread(dev, 0, 64 * 512)) == 64 * 512
    with pytest.raises(OSError) as e:
        pread(dev, 64 * 512, 4096)
    assert e.value.errno == errno.EIO
    assert len(pread(dev, 72 * 512, 4096)) == 4096


def test_bad_disk_grows_under_a_live_device(loopdev, bad_disk):
    main = loopdev(4)
    name = bad_disk(main, [])
    dev = f"/dev/mapper/{name}"
    pwrite(dev, 4096, pattern("g", 4096))
    bad_disk.grow(name, main, [(8, 8)])
    with pytest.raises(OSError):
        pread(dev, 4096, 4096)


def test_flakey_drops_writes(loopdev, flakey):
    main = loopdev(4)
    name = flakey(main, 0, 3600, "drop_writes")
    dev = f"/dev/mapper/{name}"
    pwrite(dev, 0, pattern("lost", 4096))
    assert pread(main, 0, 4096) == bytes(4096)


def test_delayed_sectors_are_slow(loopdev, delayed):
    main = loopdev(4)
    name = delayed(main, [(128, 8)], 300)
    dev = f"/dev/mapper/{name}"
    t0 = time.monotonic()
    pread(dev, 0, 4096)
    fast = time.monotonic() - t0
    t0 = time.monotonic()
    pread(dev, 128 * 512, 4096)
    slow = time.monotonic() - t0
    assert slow >= 0.3 and slow > fast
