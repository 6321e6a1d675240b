# SPDX-License-Identifier: GPL-2.0-only
"""The offline metadata tools (remap_check, remap_dump, remap_repair) agree
with the module about pools the module wrote, and the module loads what
remap_repair writes."""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import ROOT
from dmtools import (CmdError, blockdev_sectors, dmsetup, dos_table, linear_table, pattern, pread,
                     pwrite, run, segments_table, wait_for)
from pools import (Manager, PoolEnv, RemapDev, corrupt_block, data_start, labels, pool_active,
                   pool_attr, read_block, tb_seq)

BUILD = os.path.join(ROOT, "build")
BLOCK = 4096
BS = BLOCK // 512
DEV_ID = 4
CHOSEN = [0, 7, 100, 2047, 4095]     # main blocks force-remapped


def tool(name, *args):
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: make userland", pytrace=False)
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def dump(spare):
    p = tool("remap_dump", spare)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def dumped_remaps(d, dev_id):
    """{main block: (spare block, state)} of dev_id, as list_remaps gives it."""
    return {e["main_block"]: (e["index"], e["state"])
            for e in d["entries"] if e["dev_id"] == dev_id and e["state"] != "retired"}


@pytest.fixture
def env(dm, loopdev):
    """A pool in slot 3 with a device (dev_id 4) holding forced remaps and a
    label, then the device removed and the pool freed: the spare at rest."""
    e = PoolEnv(dm, loopdev, 3)
    dev = RemapDev(dm, e.main, e.pool, dev_id=DEV_ID)
    e.data = pattern("offline", len(CHOSEN) * BLOCK)
    for i, b in enumerate(CHOSEN):
        pwrite(dev.path, b * BLOCK, e.data[i * BLOCK:(i + 1) * BLOCK])
        dev.force(b * BS)
    dmsetup("message", dev.name, "0", "set_label", "offline-data", "/dev/disk/by-id/test-main")
    e.remaps = dev.remaps()
    e.labels = labels(e.mgr, e.pool)
    dev.remove()
    e.mgr.free(e.pool)
    # The main device's own copy of those blocks now differs from the spare's.
    for b in CHOSEN:
        pwrite(e.main, b * BLOCK, pattern("main", BLOCK))
    yield e
    e.close()


def test_check_and_dump_agree_with_the_module(env):
    p = tool("remap_check", env.spare)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith(f"{env.spare}: clean: pool ")
    assert f" {len(CHOSEN)} mapped, 0 pending, 0 retired" in p.stdout
    d = dump(env.spare)
    assert d["summary"]["status"] == "clean" and d["problems"] == []
    assert sorted(env.remaps) == CHOSEN
    assert dumped_remaps(d, DEV_ID) == env.remaps
    dev = [r for r in d["devices"] if r["dev_id"] == DEV_ID]
    assert len(dev) == 1 and dev[0]["in_use"]
    assert dev[0]["size_sectors"] == blockdev_sectors(env.main)
    assert (dev[0]["name"], dev[0]["locator"]) == env.labels[DEV_ID]
    assert env.labels[DEV_ID] == ("offline-data", "/dev/disk/by-id/test-main")
    assert d["superblock"]["seq"] >= 2 and d["superblock"]["block_size"] == BLOCK


def test_one_damaged_superblock_copy_reported_and_resumed(env, dm):
    corrupt_block(env.spare, 5)
    p = tool("remap_check", env.spare)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == f"{env.spare}: damaged: superblock copy 5: checksum mismatch"
    assert len(lines) == 2 and lines[1].startswith(f"{env.spare}: damaged: pool ")
    # The module resumes it, keeps every remap and heals the copy.
    env.mgr.resume(env.pool, env.spare)
    dev = RemapDev(dm, env.main, env.pool, dev_id=DEV_ID)
    assert dev.remaps() == env.remaps
    dev.remove()
    env.mgr.free(env.pool)
    p = tool("remap_check", env.spare)
    assert p.returncode == 0, p.stdout + p.stderr


def test_check_refuses_what_the_module_refuses(env):
    d = dump(env.spare)
    table_start, nr_logical = d["superblock"]["table_start"], d["superblock"]["nr_logical"]
    # Both copies of every pair of the device table: no copy left.
    for blk in (table_start, table_start + 1,
                table_start + 2 * nr_logical, table_start + 2 * nr_logical + 1):
        corrupt_block(env.spare, blk)
    p = tool("remap_check", env.spare)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"{env.spare}: fatal: logical 0: no valid copy" in p.stdout
    with pytest.raises(CmdError):
        env.mgr.resume(env.pool, env.spare)
    assert not pool_active(env.pool)


def test_an_unreadable_slot_not_in_use_is_reported(env, dm):
    """A table slot outside the chosen pair that cannot be read may hold an
    interrupted commit's block; the module rewrites it with its first commit
    and refuses the pool if that commit loses a copy.  remap_check reports it
    as damage (before, it called such a pool clean)."""
    sb = dump(env.spare)["superblock"]
    logical = 1                                  # the labels set_label wrote
    blocks = [sb["table_start"] + 2 * logical + pair for pair in (0, 1)]
    seqs = [tb_seq(read_block(env.spare, b)) for b in blocks]
    idle = 0 if seqs[0] < seqs[1] else 1         # the pair not chosen
    blk, slot = blocks[idle], 2 * idle           # its copy 0
    bad = dm.path(dm.create(segments_table(env.spare, blockdev_sectors(env.spare),
                                           [(blk * BS, BS)]), hint="bad"))
    text = (f"logical {logical}: slot {slot} (md block {blk}): read error; "
            "not in use, the first commit must rewrite it")
    p = tool("remap_check", "--json", bad)
    assert p.returncode == 1, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["status"] == "damaged"
    assert doc["problems"] == [{"severity": "damaged", "kind": "slot_unreadable",
                                "error": "read error", "logical": logical, "slot": slot,
                                "md_block": blk, "message": text}]
    p = tool("remap_check", bad)
    assert p.returncode == 1 and p.stdout.splitlines()[0] == f"{bad}: damaged: {text}", p.stdout
    # The twin of the chosen copy unreadable is lost redundancy, as before.
    twin = blocks[1 - idle] + 2 * sb["nr_logical"]
    dm.remove(os.path.basename(bad))
    bad = dm.path(dm.create(segments_table(env.spare, blockdev_sectors(env.spare),
                                           [(twin * BS, BS)]), hint="twin"))
    p = tool("remap_check", "--json", bad)
    assert p.returncode == 1, p.stdout + p.stderr
    assert [q["kind"] for q in json.loads(p.stdout)["problems"]] == ["redundancy_lost"]


def test_unreadable_device_is_exit_3(dm):
    """A device that fails every read cannot be read: exit 3 and one line,
    as for one that cannot be opened, not the report of a damaged pool."""
    name = dm.create("0 65536 error", hint="unreadable")
    for t in ("remap_check", "remap_dump"):
        p = tool(t, dm.path(name))
        assert p.returncode == 3, (t, p.returncode, p.stdout, p.stderr)
        assert p.stderr == f"{t}: {dm.path(name)}: Input/output error\n", p.stderr


def test_repaired_copy_loads_in_the_module(env, dm, loopdev):
    # Lose one copy of every superblock but one, and one table copy.
    for c in range(7):
        corrupt_block(env.spare, c)
    d = dump(env.spare)
    corrupt_block(env.spare, d["superblock"]["table_start"] + 2 * d["superblock"]["nr_logical"])
    assert tool("remap_check", env.spare).returncode == 1
    new = loopdev(64)
    p = tool("remap_repair", env.spare, new)
    assert p.returncode == 0, p.stdout + p.stderr
    assert tool("remap_check", new).returncode == 0
    assert dump(new)["superblock"]["seq"] > d["superblock"]["seq"]
    env.mgr.resume(env.pool, new)
    try:
        assert pool_attr(env.pool, "uuid") == d["superblock"]["uuid"]
        dev = RemapDev(dm, env.main, env.pool, dev_id=DEV_ID)
        assert dev.remaps() == env.remaps
        assert labels(env.mgr, env.pool) == env.labels
        # The remapped data came along: reads through the device see it,
        # not what the main device holds.
        for i, b in enumerate(CHOSEN):
            assert pread(dev.path, b * BLOCK, BLOCK) == env.data[i * BLOCK:(i + 1) * BLOCK]
        dev.remove()
    finally:
        env.mgr.free(env.pool)


def test_a_pool_of_blocks_below_the_devices_sector_size(env, dm, loopdev):
    """A pool of 1024-byte blocks copied onto a device with 4096-byte
    logical blocks (a 4Kn disk): the module refuses it, and so does
    remap_check (fatal); remap_repair will not write a copy onto such a
    device, but repairs from one onto a device the pool fits."""
    small = loopdev(64)
    env.mgr.format(small, "block_size=1024")
    back = run("losetup", "-n", "-O", "BACK-FILE", small).strip()
    copy, empty = back + ".4kn", back + ".4kn-empty"
    run("cp", "--sparse=always", back, copy)
    run("truncate", "-s", str(64 << 20), empty)
    kn = [run("losetup", "-b", "4096", "-f", "--show", f).strip() for f in (copy, empty)]
    try:
        p = tool("remap_check", kn[0])
        assert p.returncode == 2, p.stdout + p.stderr
        assert (f"{kn[0]}: fatal: device has 4096-byte logical blocks, "
                "above the pool's 1024-byte blocks") in p.stdout
        with pytest.raises(CmdError):
            env.mgr.resume(9, kn[0])
        assert not pool_active(9)
        p = tool("remap_repair", small, kn[1])
        assert p.returncode == 3, p.stdout + p.stderr
        assert p.stderr == (f"remap_repair: {kn[1]}: 4096-byte logical blocks, above the "
                            "pool's 1024-byte blocks (the module would refuse it)\n")
        assert tool("remap_check", kn[1]).returncode == 2      # nothing written
        new = loopdev(64)
        p = tool("remap_repair", kn[0], new)
        assert p.returncode == 1, p.stdout + p.stderr
        assert tool("remap_check", new).returncode == 0
        env.mgr.resume(9, new)
        assert pool_attr(9, "block_size") == "1024"
        env.mgr.free(9)
    finally:
        for d in kn:
            run("losetup", "-d", d)
        os.unlink(copy)
        os.unlink(empty)


def test_repair_loses_only_the_spare_block_it_cannot_read(dm, loopdev):
    """A pool of 512-byte blocks whose spare has one bad sector: remap_repair
    reads each block on its own (aligned to the device's sector, not to
    4 KiB), so only the block on that sector is lost (pending) and its
    neighbours' data is copied."""
    backing = loopdev(64)
    n = blockdev_sectors(backing)
    spare = dm.create(f"0 {n} linear {backing} 0", hint="spare")
    mgr = Manager(dm)
    mgr.format(dm.path(spare), "block_size=512")
    mgr.resume(3, dm.path(spare))
    dev = RemapDev(dm, loopdev(8), 3, dev_id=1)
    data = pattern("r512", 8 * 512)
    pwrite(dev.path, 0, data)
    for s in range(8):
        dev.force(s)
    assert dev.remaps() == {s: (s, "mapped") for s in range(8)}
    dev.remove()
    mgr.free(3)
    bad = data_start(backing) + 1                       # spare block 1
    dm.reload(spare, f"0 {bad} linear {backing} 0\n{bad} 1 error\n"
                     f"{bad + 1} {n - bad - 1} linear {backing} {bad + 1}")
    new = loopdev(64)
    p = tool("remap_repair", dm.path(spare), new)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "spare block unreadable, data lost" in p.stdout
    d = dump(new)
    assert dumped_remaps(d, 1) == {s: (s, "pending" if s == 1 else "mapped") for s in range(8)}
    ds = data_start(new)
    for s in set(range(8)) - {1}:
        assert pread(new, (ds + s) * 512, 512) == data[s * 512:(s + 1) * 512]


def test_a_spare_under_a_dm_device_is_warned_about(env, dm):
    """The check looks in sysfs (an O_EXCL probe would make a mount or a
    resume_spare at that instant fail): a spare held by a dm table is in
    use too.  One nothing holds gets no warning."""
    p = tool("remap_dump", env.spare)
    assert p.returncode in (0, 1) and p.stderr == "", p.stderr
    name = dm.create(linear_table(env.spare, 8), hint="holder")
    p = tool("remap_dump", env.spare)
    assert p.stderr == (f"remap_dump: {env.spare}: warning: in use (under another block "
                        "device): its metadata may change while it is read\n"), p.stderr
    dm.remove(name)


def test_active_spare_warned_and_not_repaired(env, loopdev):
    env.mgr.resume(env.pool, env.spare)
    try:
        p = tool("remap_check", env.spare)
        assert p.returncode in (0, 1), p.stdout + p.stderr
        assert p.stderr == (f"remap_check: {env.spare}: warning: in use (the spare of an "
                            "active pool): its metadata may change while it is read\n")
        new = loopdev(64)
        p = tool("remap_repair", env.spare, new)
        assert p.returncode == 3
        assert p.stderr == f"remap_repair: {env.spare}: cannot open: Device or resource busy\n"
        assert tool("remap_check", new).returncode == 2     # nothing written
    finally:
        env.mgr.free(env.pool)


def backing_file(loop):
    with open(f"/sys/block/{os.path.basename(loop)}/loop/backing_file") as f:
        return f.read().strip()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def refused_as_overlapping(src, dst):
    p = tool("remap_repair", "--force", src, dst)
    assert p.returncode == 3, (src, dst, p.stdout, p.stderr)
    assert p.stderr == (f"remap_repair: {dst}: overlaps the source; "
                        "repair writes a new copy elsewhere\n"), p.stderr


def test_repair_refuses_a_loop_device_over_its_source(env):
    """The destination is the source also through a loop device over the
    source's file or over the source device (either way round): refused,
    nothing written, even with --force (which before overwrote the pool it
    was reading)."""
    src_file = backing_file(env.spare)
    before = digest(src_file)
    over = run("losetup", "-f", "--show", env.spare).strip()
    try:
        for src, dst in ((src_file, env.spare), (env.spare, src_file),
                         (env.spare, over), (over, env.spare)):
            refused_as_overlapping(src, dst)
    finally:
        run("losetup", "-d", over)
    assert digest(src_file) == before


def test_repair_leaves_files_under_a_loop_device_in_use_alone(env, dm, loopdev):
    """O_EXCL guards a block device only.  An image file with a loop device
    over it that is in use (a pool's spare, a dm table's device) is refused
    as source or destination, and nothing is written.  Once the loop device
    is idle the same repair goes through."""
    src_file = backing_file(env.spare)
    env.mgr.resume(env.pool, env.spare)
    try:
        new = loopdev(64)
        p = tool("remap_repair", src_file, new)
        assert p.returncode == 3, p.stdout + p.stderr
        assert p.stderr.endswith(f"remap_repair: {src_file}: cannot open: {env.spare} over it "
                                 "is in use\n"), p.stderr
        assert tool("remap_check", new).returncode == 2     # nothing written
        # Another loop device over the same file: the same.
        sib = run("losetup", "-f", "--show", src_file).strip()
        try:
            p = tool("remap_repair", sib, new)
            assert p.returncode == 3, p.stdout + p.stderr
            assert p.stderr.endswith(f"remap_repair: {sib}: cannot open: {env.spare} over the "
                                     "same file or device is in use\n"), p.stderr
        finally:
            run("losetup", "-d", sib)
        assert tool("remap_check", new).returncode == 2
    finally:
        env.mgr.free(env.pool)

    dst = loopdev(64)
    dst_file = backing_file(dst)
    before = digest(dst_file)
    holder = dm.create(linear_table(dst, 8), hint="holder")
    p = tool("remap_repair", src_file, dst_file)
    assert p.returncode == 3, p.stdout + p.stderr
    assert p.stderr == f"remap_repair: {dst_file}: cannot open: {dst} over it is in use\n", p.stderr
    assert digest(dst_file) == before
    dm.remove(holder)
    p = tool("remap_repair", src_file, dst_file)
    assert p.returncode == 0, p.stdout + p.stderr
    assert tool("remap_check", dst_file).returncode == 0
    assert dumped_remaps(dump(dst_file), DEV_ID) == dumped_remaps(dump(src_file), DEV_ID)


def test_repair_refuses_a_destination_below_a_stacked_source(env, dm, loopdev):
    """Block devices stacked on one another hold each other open, so most
    such pairs are refused as busy; the file or a loop device under a stack
    is not.  A source read through a dm device over the spare, or from a
    partition of a loop device: the file below, or another loop device over
    that file, overlaps it and is refused.  The disk's other partition, or a
    dm device over that, is disjoint from the source and is written."""
    src_file = backing_file(env.spare)
    sectors = blockdev_sectors(env.spare)
    whole = dm.path(dm.create(linear_table(env.spare, sectors), hint="over"))
    before = digest(src_file)
    refused_as_overlapping(whole, src_file)
    assert digest(src_file) == before

    disk = loopdev(2 * sectors // 2048 + 2,
                   mbr=dos_table((2048, sectors), (2048 + sectors, sectors)))
    p1, p2 = disk + "p1", disk + "p2"
    assert wait_for(lambda: os.path.exists(p1) and os.path.exists(p2))
    run("dd", f"if={env.spare}", f"of={p1}", "bs=1M", "oflag=direct", "status=none")
    disk_file = backing_file(disk)
    before = digest(disk_file)
    other = run("losetup", "-f", "--show", disk_file).strip()
    try:
        for dst in (disk_file, other):
            refused_as_overlapping(p1, dst)
    finally:
        run("losetup", "-d", other)
    assert digest(disk_file) == before

    over_p2 = dm.path(dm.create(linear_table(p2, sectors), hint="p2"))
    for dst in (over_p2, p2):
        if dst == p2:
            dm.remove(os.path.basename(over_p2))
        p = tool("remap_repair", "--force", p1, dst)
        assert p.returncode == 0, (dst, p.stdout, p.stderr)
        assert tool("remap_check", dst).returncode == 0
        assert dumped_remaps(dump(dst), DEV_ID) == dumped_remaps(dump(p1), DEV_ID)


def test_a_failed_repair_removes_the_image_it_created(env, tmp_path):
    """A destination image file that remap_repair created is removed again
    when writing it fails (here: its file system is full); one it did not
    create is left alone."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], check=True)
    try:
        new = mnt / "new.img"
        p = tool("remap_repair", env.spare, new)
        assert p.returncode == 3, p.stdout + p.stderr
        assert p.stderr.endswith("write failed: No space left on device\n"), p.stderr
        assert not new.exists()
        new.write_bytes(b"")
        p = tool("remap_repair", env.spare, new)
        assert p.returncode == 3 and "too small" in p.stderr, p.stdout + p.stderr
        assert new.exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
