# SPDX-License-Identifier: GPL-2.0-only
"""remap-mgr: format, resume, free, list; every refusal; metadata redundancy."""
import errno
import hashlib
import os
import struct
import subprocess

import pytest

from conftest import module_loaded, module_refcnt
from dmtools import (CmdError, blockdev_sectors, dmsetup, linear_table, pattern, pread, pwrite,
                     run, segments_table, wait_for)
from pools import (SB_COPIES, Manager, RemapDev, corrupt_block, device_records, free_pool, mkpool,
                   pool_active, pool_attr, read_block, refused, sb_seq, table_geometry, tb_seq,
                   write_block)


@pytest.fixture
def mgr(dm):
    return Manager(dm)


@pytest.fixture
def spare(loopdev):
    return loopdev(64)


@pytest.fixture
def pool(mgr, dm, spare):
    """A formatted pool resumed in slot 5; freed at the end if still active
    (after the test's other dm devices, which may be attached to it)."""
    mgr.format(spare)
    mgr.resume(5, spare)
    yield 5
    free_pool(mgr, dm, 5)


def read_all(dev):
    """The whole device, read past the page cache."""
    with open(dev, "rb", buffering=0) as f:
        fd = f.fileno()
        size = os.lseek(fd, 0, os.SEEK_END)
    return pread(dev, 0, size)


def kmsg_has(kmsg, text):
    return any(text in line for line in kmsg.read())


def test_format_resume_list_status_free(mgr, spare):
    mgr.format(spare)
    mgr.resume(2, spare)
    listing = mgr.list()
    assert list(listing) == [2]
    name, devno, used_total, state, scanner = listing[2]
    assert f"/dev/{name}" == spare and state == "ok"
    assert used_total.startswith("0/")
    total = int(used_total.split("/")[1])
    st = mgr.status()
    assert st[0] == "1" and st[1] == "2" and st[2] == devno
    assert pool_attr(2, "blocks_total") == str(total)
    assert pool_attr(2, "blocks_free") == str(total)
    assert pool_attr(2, "block_size") == "4096"
    assert pool_attr(2, "state") == "ok"
    assert pool_attr(2, "dev") == devno
    assert os.path.realpath("/sys/module/dm_remap/pools/2/spare").endswith("/" + name)
    # 64 MiB minus the metadata: most of the device is spare blocks.
    assert 15000 < total < 16384
    mgr.free(2)
    assert mgr.list() == {}
    assert not pool_active(2)
    assert mgr.status() == ["0"]


def test_block_size_option(mgr, spare):
    mgr.format(spare, "block_size=65536")
    mgr.resume(0, spare)
    assert pool_attr(0, "block_size") == "65536"
    assert int(pool_attr(0, "blocks_total")) < 1024
    mgr.free(0)


def test_block_size_below_the_spares_sector_size_is_refused(mgr, spare, kmsg):
    """Every spare block is one I/O: a spare of 4096-byte sectors cannot
    take 512-byte blocks, at format or (the same disk seen with bigger
    sectors) at resume."""
    run("losetup", "--sector-size", "4096", spare)
    refused(mgr.format, spare, "block_size=512")
    assert kmsg_has(kmsg, "block_size 512 is below its logical block size 4096")
    refused(mgr.resume, 0, spare)                 # nothing was written
    assert kmsg_has(kmsg, "holds no valid dm-remap superblock")
    run("losetup", "--sector-size", "512", spare)
    mgr.format(spare, "block_size=512")
    run("losetup", "--sector-size", "4096", spare)
    refused(mgr.resume, 0, spare)
    assert kmsg_has(kmsg, "512-byte blocks, below its logical block size 4096")
    assert not pool_active(0)
    run("losetup", "--sector-size", "512", spare)
    mgr.resume(0, spare)
    assert pool_attr(0, "block_size") == "512"
    mgr.free(0)


def test_pool_survives_free_and_resume(mgr, spare):
    mgr.format(spare)
    mgr.resume(1, spare)
    uuid, seq = pool_attr(1, "uuid"), int(pool_attr(1, "metadata_seq"))
    mgr.free(1)
    mgr.resume(7, spare)
    assert pool_attr(7, "uuid") == uuid
    assert int(pool_attr(7, "metadata_seq")) > seq
    mgr.free(7)


def test_pools_outlive_the_manager_device(dm, spare):
    m1 = Manager(dm)
    m1.format(spare)
    m1.resume(4, spare)
    dm.remove(m1.name)
    assert pool_active(4)
    m2 = Manager(dm)
    assert list(m2.list()) == [4]
    m2.free(4)


def test_rmmod_refused_while_a_pool_is_active(dm, spare):
    m = Manager(dm)
    m.format(spare)
    m.resume(0, spare)
    dm.remove(m.name)
    assert module_refcnt() > 0
    with pytest.raises(CmdError):
        run("rmmod", "dm_remap")
    assert module_loaded()
    Manager(dm).free(0)


def test_spare_held_exclusively(pool, spare):
    with pytest.raises(OSError) as e:
        os.open(spare, os.O_RDWR | os.O_EXCL)
    assert e.value.errno == errno.EBUSY


# ---- refusals: each is an error and changes nothing -----------------------

def test_format_refuses_valid_pool_without_force(mgr, spare, kmsg):
    mgr.format(spare)
    before = read_block(spare, 0)
    e = refused(mgr.format, spare)
    assert "File exists" in e.err
    assert kmsg_has(kmsg, "holds a valid pool")
    assert read_block(spare, 0) == before
    mgr.format(spare, "force")
    assert read_block(spare, 0) != before


def test_format_over_an_unreadable_superblock_block_needs_force(mgr, dm, spare, kmsg):
    """A disk used before may have a pending sector where a superblock copy
    goes.  format_spare cannot tell what that copy held, so it asks for
    'force' (and writes nothing); with it, it formats, writing the sector (a
    disk reallocates it), and the pool resumes.  Superblock block 3 of the
    spare fails reads; where dm-flakey has error_reads (not on 6.1, whose
    flakey fails writes too), it takes writes, and the forced format is
    tried as well."""
    n = blockdev_sectors(spare)
    old = pattern("used before", 64 << 10)
    pwrite(spare, 0, old)
    try:
        bad = dm.create(segments_table(spare, n, [(3 * 8, 8)], target="flakey",
                                       target_args="{dev} {start} 0 1 1 error_reads"),
                        hint="sbbad")
        takes_writes = True
    except CmdError:
        bad = dm.create(segments_table(spare, n, [(3 * 8, 8)]), hint="sbbad")
        takes_writes = False
    with pytest.raises(OSError):
        pread(dm.path(bad), 3 * 4096, 4096)
    e = refused(mgr.format, dm.path(bad))
    assert "File exists" in e.err
    assert kmsg_has(kmsg, "1 of 8 superblock blocks unreadable: need 'force'")
    assert pread(spare, 0, 64 << 10) == old, "written"
    if not takes_writes:
        return
    pwrite(dm.path(bad), 3 * 4096, old[3 * 4096:4 * 4096])
    assert pread(spare, 3 * 4096, 4096) == old[3 * 4096:4 * 4096]
    mgr.format(dm.path(bad), "force")
    assert pread(spare, 0, 64 << 10) != old
    mgr.resume(5, dm.path(bad))
    try:
        assert pool_active(5)
        # The copy in the unreadable block was written with the others.
        assert pread(spare, 3 * 4096, 4096)[:512] != old[3 * 4096:3 * 4096 + 512]
        assert sb_seq(pread(spare, 3 * 4096, 4096)) == sb_seq(pread(spare, 0, 4096)) >= 1
    finally:
        free_pool(mgr, dm, 5, keep=[bad])


def test_format_refuses_active_spare_even_with_force(pool, mgr, spare, kmsg):
    before = read_block(spare, 0)
    e = refused(mgr.format, spare, "force")
    assert "busy" in e.err
    assert kmsg_has(kmsg, "spare of active pool 5")
    assert read_block(spare, 0) == before


def test_format_refuses_an_active_spare_by_another_path_even_with_force(pool, mgr, loopdev,
                                                                        spare, kmsg):
    """A loop device over the active spare is not held by the pool: without
    the uuid check, format_spare LOOP force wiped the live pool under it.
    A copy of an active pool is refused the same way (it cannot be told
    from another path to it); once the pool is freed the copy formats."""
    over = run("losetup", "-f", "--show", "--direct-io=on", spare).strip()
    try:
        before = read_all(spare)
        e = refused(mgr.format, over, "force")
        assert "busy" in e.err
        assert kmsg_has(kmsg, "which is active in slot 5 (the same disk by another path")
        assert read_all(spare) == before
    finally:
        run("losetup", "-d", over)
    clone = loopdev(64)
    run("dd", f"if={spare}", f"of={clone}", "bs=1M", "iflag=direct", "oflag=direct",
        "status=none")
    refused(mgr.format, clone, "force")
    assert read_block(clone, 0) == read_block(spare, 0)
    mgr.free(5)
    mgr.format(clone, "force")
    assert read_block(clone, 0) != read_block(spare, 0)


def test_format_refuses_device_in_use(mgr, dm, spare, kmsg):
    holder = dm.create(f"0 1024 linear {spare} 0", hint="holder")
    refused(mgr.format, spare)
    assert kmsg_has(kmsg, "exclusively")
    dm.remove(holder)


def test_format_refuses_too_small_device(mgr, loopdev, kmsg):
    tiny = loopdev(1)
    small = run("losetup", "--sizelimit", str(64 * 1024), "-f", "--show",
                run("losetup", "-n", "-O", "BACK-FILE", tiny).strip()).strip()
    try:
        pwrite(small, 0, pattern("small", 64 * 1024))
        e = refused(mgr.format, small)
        assert "No space" in e.err
        assert kmsg_has(kmsg, "too small")
        assert pread(small, 0, 64 * 1024) == pattern("small", 64 * 1024), "written"
    finally:
        run("losetup", "-d", small)


@pytest.mark.parametrize("args", [
    ["format_spare"],
    ["format_spare", "{spare}", "force", "force"],
    ["format_spare", "{spare}", "block_size=1000"],
    ["format_spare", "{spare}", "block_size=4096x"],
    ["format_spare", "{spare}", "block_size=2097152"],
    ["format_spare", "{spare}", "bogus"],
    ["format_spare", "{spare}", "force", "block_size=4096", "extra"],
    ["format_spare", "/dev/does-not-exist"],
    ["switch_to"],
    ["switch_to", "64"],
    ["switch_to", "-1"],
    ["switch_to", "x"],
    ["switch_to", "1", "2"],
    ["resume_spare"],
    ["resume_spare", "{spare}", "extra"],
    ["resume_spare", "/dev/does-not-exist"],
    ["free_spare", "extra"],
    ["list", "extra"],
    ["no_such_message"],
])
def test_bad_messages_rejected(mgr, spare, args):
    before = read_block(spare, 0)
    with pytest.raises(CmdError):
        mgr.msg(*[a.format(spare=spare) for a in args])
    assert read_block(spare, 0) == before
    assert mgr.list() == {}


def test_a_reload_keeps_the_selected_slot(pool, mgr, dm):
    """The slot switch_to selects belongs to the manager device: a reload of
    its table keeps it (it went back to 0, and free_spare then went to a
    slot nobody chose).  Two managers keep their own."""
    other = Manager(dm)
    other.msg("switch_to", 7)
    mgr.msg("switch_to", pool)
    dm.reload(mgr.name, "0 1 remap-mgr")
    dm.reload(other.name, "0 1 remap-mgr")
    with pytest.raises(CmdError):
        other.msg("free_spare")                 # slot 7: no pool there
    assert pool_active(pool)
    mgr.msg("free_spare")
    assert not pool_active(pool)


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def asleep_in_ioctl(pid):
    """Asleep in the kernel (D: killable or not) inside an ioctl (syscall
    16 on x86-64): dmsetup's message, not its start-up, whose reads of the
    program under load show D too."""
    if proc_state(pid) != "D":
        return False
    with open(f"/proc/{pid}/syscall") as f:
        return f.read().split()[0] == "16"


def test_operations_behind_a_stuck_one_can_be_killed(mgr, dm, loopdev):
    """resume_spare of a spare that does not answer (a suspended dm device)
    waits for its reads and holds the manager operations' lock.  Another
    operation waiting behind it can be killed (it could not: it hung in D
    state until the spare answered); the stuck one finishes when it does."""
    spare = dm.create(linear_table(loopdev(64), 64 << 11), hint="spare")
    mgr.format(dm.path(spare))
    other = Manager(dm)
    other.msg("switch_to", 4)
    mgr.msg("switch_to", 3)
    dmsetup("suspend", spare)
    stuck = waiter = None
    try:
        stuck = subprocess.Popen(["dmsetup", "message", mgr.name, "0", "resume_spare",
                                  dm.path(spare)])
        assert wait_for(lambda: asleep_in_ioctl(stuck.pid), 15)
        waiter = subprocess.Popen(["dmsetup", "message", other.name, "0", "free_spare"])
        # Waiting for the lock.
        assert wait_for(lambda: asleep_in_ioctl(waiter.pid), 15)
        waiter.kill()
        assert waiter.wait(timeout=10) != 0
    finally:
        dmsetup("resume", spare)
        if stuck:
            assert stuck.wait(timeout=60) == 0
        if waiter and waiter.poll() is None:
            waiter.wait(timeout=60)
    assert pool_active(3)
    mgr.free(3)


def test_resume_refuses_unformatted_device(mgr, spare, kmsg):
    refused(mgr.resume, 0, spare)
    assert kmsg_has(kmsg, "no valid dm-remap superblock")
    assert not pool_active(0)


def test_resume_refuses_busy_slot(pool, mgr, loopdev, kmsg):
    other = loopdev(64)
    mgr.format(other)
    refused(mgr.resume, pool, other)
    assert kmsg_has(kmsg, "slot 5 is busy")
    assert pool_attr(pool, "spare_device") != os.path.basename(other)


def test_resume_refuses_spare_active_elsewhere(pool, mgr, spare, kmsg):
    refused(mgr.resume, 6, spare)
    assert kmsg_has(kmsg, "spare of active pool 5")
    assert not pool_active(6)


def test_resume_refuses_a_copy_of_an_active_pool_and_writes_nothing(pool, mgr, loopdev, spare,
                                                                    kmsg):
    """A clone of an active pool's spare (dd, a snapshot, another path to
    the disk) carries the same pool uuid: refused, and left as it was."""
    clone = loopdev(64)
    run("dd", f"if={spare}", f"of={clone}", "bs=1M", "iflag=direct", "oflag=direct",
        "status=none")
    before = hashlib.sha256(read_all(clone)).hexdigest()
    refused(mgr.resume, 6, clone)
    assert kmsg_has(kmsg, "is already active in slot 5")
    assert not pool_active(6)
    assert hashlib.sha256(read_all(clone)).hexdigest() == before, \
        "the refused resume wrote to the clone"
    # A torn copy (a table block lost in both copies): still a copy of an
    # active pool first, not a damaged pool.
    table_start, nr_logical = table_geometry(clone)
    corrupt_block(clone, table_start + 2 * 1 + 0)
    corrupt_block(clone, table_start + 2 * nr_logical + 2 * 1 + 0)
    kmsg.read()
    refused(mgr.resume, 6, clone)
    log = kmsg.read()
    assert any("is already active in slot 5" in ln for ln in log), log
    assert not any("no valid copy" in ln for ln in log), log
    assert not pool_active(6)


def test_free_refuses_empty_slot(mgr):
    e = refused(mgr.free, 9)
    assert "No such file" in e.err


def test_free_refuses_while_a_device_is_attached(pool, mgr, dm, loopdev, kmsg):
    main = loopdev(8)
    data = dm.create(f"0 16384 remap 1 {main} {pool}", hint="data")
    assert pool_attr(pool, "attached_devices") == "1"
    e = refused(mgr.free, pool)
    assert "busy" in e.err
    assert kmsg_has(kmsg, "attached")
    assert pool_active(pool)
    dm.remove(data)
    assert pool_attr(pool, "attached_devices") == "0"


def test_remap_refuses_inactive_pool(dm, loopdev):
    main = loopdev(8)
    with pytest.raises(CmdError):
        dm.create(f"0 16384 remap 1 {main} 12", hint="data")


# ---- redundancy: damaged copies ------------------------------------------

@pytest.mark.parametrize("damaged", [(0,), (7,), (0, 1), (2, 5, 6), (0, 2, 4, 6),
                                     (1, 2, 3, 4, 5, 6, 7), (0, 1, 2, 3, 4, 5, 6)])
def test_resume_with_damaged_superblock_copies(mgr, spare, damaged):
    mgr.format(spare)
    mgr.resume(0, spare)
    uuid = pool_attr(0, "uuid")
    mgr.free(0)
    for i in damaged:
        corrupt_block(spare, i)
    mgr.resume(0, spare)
    assert pool_attr(0, "uuid") == uuid
    # The first commit after resume rewrote every copy.
    seqs = {sb_seq(read_block(spare, i)) for i in range(SB_COPIES)}
    assert seqs == {int(pool_attr(0, "metadata_seq"))}
    mgr.free(0)


def test_resume_refuses_when_every_superblock_copy_is_damaged(mgr, spare, kmsg):
    mgr.format(spare)
    for i in range(SB_COPIES):
        corrupt_block(spare, i)
    refused(mgr.resume, 0, spare)
    assert kmsg_has(kmsg, "no valid dm-remap superblock")
    assert not pool_active(0)


@pytest.mark.parametrize("stale", [(0,), (3,), (7,), (0, 1, 2, 3, 4, 5, 6)])
def test_resume_prefers_the_highest_valid_sequence(mgr, dm, loopdev, spare, stale):
    """Superblock copies of an older commit (valid, a lower seq) in some
    places, the newest in the others (in the last case only copy 7): the
    pool loads the newest, whose commit added a device record that the
    older copies do not know."""
    mgr.format(spare)
    mgr.resume(0, spare)
    mgr.free(0)
    old = [read_block(spare, i) for i in range(SB_COPIES)]   # each names its place
    mgr.resume(0, spare)
    RemapDev(dm, loopdev(8), 0, dev_id=5).remove()      # a record, committed
    new_seq = int(pool_attr(0, "metadata_seq"))
    mgr.free(0)
    assert sb_seq(old[0]) < new_seq
    for i in stale:
        write_block(spare, i, old[i])
    mgr.resume(0, spare)
    assert int(pool_attr(0, "metadata_seq")) > new_seq
    assert 5 in device_records(mgr, 0)
    mgr.free(0)


def test_any_single_metadata_block_damaged_loses_nothing(mgr, dm, loopdev, tmp_path):
    """A pool holding 600 remaps (three table blocks of entries, written by
    mkpool) and a device record.  Each metadata block that holds anything
    (the superblock copies, both copies of every table block) is damaged in
    turn, and the pool must resume with every remap; then the metadata is
    put back as it was for the next block."""
    spare, main = loopdev(8), loopdev(64)     # a small spare: few table blocks
    expected = mkpool(spare, main, 4, 3, 600, tmp_path)
    table_start, nr_logical = table_geometry(spare)
    end = table_start + 4 * nr_logical
    meta = [read_block(spare, b) for b in range(end)]
    written = [b for b in range(end) if any(meta[b])]
    assert len(written) == SB_COPIES + 2 * nr_logical     # pair 0 of every table block
    for b in written:
        corrupt_block(spare, b)
        mgr.resume(7, spare)                    # heals the damaged block
        dev = RemapDev(dm, main, 7, dev_id=4)
        assert dev.remaps() == expected, f"metadata block {b} damaged"
        dev.remove()
        mgr.free(7)
        for c in range(end):
            write_block(spare, c, meta[c])


def test_resume_rewrites_a_lost_copy_region(mgr, loopdev):
    """Every table block's copy 0 damaged (its whole copy region, say):
    resume_spare rewrites all of them in its first commit, one of more
    table blocks than the commit buffers kept between commits, and the
    pool is whole again."""
    spare = loopdev(256)
    mgr.format(spare)
    table_start, nr_logical = table_geometry(spare)
    assert nr_logical > 128
    for l in range(nr_logical):
        corrupt_block(spare, table_start + 2 * l)      # copy 0, pair 0
    mgr.resume(0, spare)
    seq = int(pool_attr(0, "metadata_seq"))
    mgr.free(0)
    # Table block l's copy c of pair p is md block
    # table_start + c * 2 * nr_logical + 2 * l + p (rm_slot_blocknr()).
    def slot(l, copy, pair):
        return table_start + copy * 2 * nr_logical + 2 * l + pair

    # Both copies of every table block in pair 1, the pair the commit wrote.
    for l in range(nr_logical):
        for c in (0, 1):
            assert tb_seq(read_block(spare, slot(l, c, 1))) == seq, (l, c)
    # What is left of pair 0 lost now, and copy 1 of every 7th in pair 1:
    # its copy 0, rewritten, holds.
    for l in range(nr_logical):
        corrupt_block(spare, slot(l, 1, 0))
        if l % 7 == 0:
            corrupt_block(spare, slot(l, 1, 1))
    mgr.resume(0, spare)
    assert int(pool_attr(0, "metadata_seq")) > seq
    mgr.free(0)


def test_resume_refuses_lost_table_block(mgr, spare, kmsg):
    mgr.format(spare)
    table_start, nr_logical = table_geometry(spare)
    # Both copies of the committed pair of logical 1 (format writes pair 0).
    corrupt_block(spare, table_start + 2 * 1 + 0)
    corrupt_block(spare, table_start + 2 * nr_logical + 2 * 1 + 0)
    refused(mgr.resume, 0, spare)
    assert kmsg_has(kmsg, "table block 1 has no valid copy")


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def table_block_at(blk, blocknr, seq):
    """The valid table block blk moved to md block blocknr with seq (header
    fields at 4 csum, 16 blocknr, 24 seq): what a commit of seq writes there."""
    b = bytearray(blk)
    struct.pack_into("<I", b, 4, 0)
    struct.pack_into("<Q", b, 16, blocknr)
    struct.pack_into("<Q", b, 24, seq)
    struct.pack_into("<I", b, 4, crc32c(bytes(b)))
    return bytes(b)


def stale_slot_pool(mgr, spare):
    """A pool whose logical 1 has, in slot 0 of its inactive pair, a block
    of an interrupted commit with the seq the next commit takes.
    Returns (its md block, the md block of its twin, the superblock seq)."""
    mgr.format(spare)
    mgr.resume(0, spare)
    mgr.free(0)
    table_start, nr_logical = table_geometry(spare)
    seq = sb_seq(pread(spare, 0, 4096))
    stale = table_start + 2 * 1 + 1             # logical 1, pair 1, copy 0
    committed = pread(spare, (stale - 1) * 4096, 4096)
    write_block(spare, stale, table_block_at(committed, stale, seq + 1))
    return stale, stale + 2 * nr_logical, seq


def test_resume_rewrites_a_table_slot_it_cannot_read(mgr, dm, spare, kmsg):
    """A slot that cannot be read at load may hold a block of an interrupted
    commit whose seq the load did not see, so the first commit takes that
    seq.  That commit rewrites the logical over the slot; before, it did
    not, the stale block stayed with the superblock's seq and the next
    resume chose it: digest mismatch, pool lost."""
    stale, twin, seq = stale_slot_pool(mgr, spare)
    # dm-delay sends the slot's reads to an error device, its writes to spare.
    err = dm.path(dm.create("0 8 error", hint="err"))
    n = blockdev_sectors(spare)
    flaky = dm.create(segments_table(spare, n, [(stale * 8, 8)], target="delay",
                                     target_args=err + " 0 0 {dev} {start} 0"), hint="flaky")
    mgr.resume(0, dm.path(flaky))
    first = int(pool_attr(0, "metadata_seq"))
    mgr.free(0)
    log = kmsg.read()
    free_pool(mgr, dm, 0)
    try:
        mgr.resume(0, spare)
    finally:
        log += kmsg.read()
    again = int(pool_attr(0, "metadata_seq"))
    mgr.free(0)
    assert again > first == seq + 1
    assert any("table block 1 has an unreadable slot: rewriting it" in ln for ln in log), log
    assert not any("digest mismatch" in ln for ln in log), log
    # The first commit wrote logical 1, both copies, over the stale pair.
    assert [tb_seq(pread(spare, b * 4096, 4096)) for b in (stale, twin)] == [first, first]


def test_resume_refuses_when_an_unreadable_table_slot_cannot_be_rewritten(mgr, dm, spare,
                                                                          kmsg):
    """The slot fails writes too: the first commit cannot overwrite what it
    may hold, so it must not write a superblock that could make that block
    current.  The resume is refused, nothing is committed, and once the
    slot reads again the pool loads and heals it."""
    stale, twin, seq = stale_slot_pool(mgr, spare)
    n = blockdev_sectors(spare)
    bad = dm.create(segments_table(spare, n, [(stale * 8, 8)]), hint="bad")
    try:
        refused(mgr.resume, 0, dm.path(bad))
    finally:
        if pool_active(0):
            mgr.free(0)
    dm.remove(bad)
    assert kmsg_has(kmsg, "a table block unreadable at load could not be rewritten")
    assert sb_seq(pread(spare, 0, 4096)) == seq
    mgr.resume(0, spare)
    again = int(pool_attr(0, "metadata_seq"))
    mgr.free(0)
    assert again == seq + 2
    assert tb_seq(pread(spare, stale * 4096, 4096)) == seq + 2


def test_sequence_numbers_from_2_63_are_refused(mgr, spare, kmsg):
    """Commits count up by one from 1, so a pool whose highest seq is 2^63
    or more was not written by them: it is refused at load and nothing is
    written (before, one near 2^64 loaded and its commits wrapped to the
    invalid seq 0, failing the pool).  Below 2^63 it loads and commits."""
    from conftest import ROOT
    mkpool = os.path.join(ROOT, "build", "mkpool")
    last = 1 << 63
    for seq in (last, (1 << 64) - 2):
        run(mkpool, "-q", str(seq), spare, "8192", "0")
        before = read_all(spare)
        refused(mgr.resume, 0, spare)
        assert kmsg_has(kmsg, "sequence number 2^63 or above")
        assert read_all(spare) == before
    seq = last - (1 << 32)
    run(mkpool, "-q", str(seq), spare, "8192", "0")
    mgr.resume(0, spare)
    mgr.free(0)
    mgr.resume(0, spare)
    assert int(pool_attr(0, "metadata_seq")) > seq
    mgr.free(0)


def test_seq_2_63_is_never_written(mgr, spare, kmsg):
    """A pool at 2^63 - 2 resumes (its first commit writes 2^63 - 1) and
    is freed.  Its next resume would have to write 2^63, which makes a pool
    that no longer loads: it is refused with EOVERFLOW, nothing written, and
    the pool still loads as far as the offline tools are concerned."""
    from conftest import ROOT
    mkpool = os.path.join(ROOT, "build", "mkpool")
    last = 1 << 63
    run(mkpool, "-q", str(last - 2), spare, "8192", "0")
    mgr.resume(0, spare)
    assert int(pool_attr(0, "metadata_seq")) == last - 1
    mgr.free(0)
    before = read_all(spare)
    e = refused(mgr.resume, 0, spare)
    assert "Value too large" in str(e), e
    assert kmsg_has(kmsg, "metadata sequence numbers exhausted (2^63)")
    assert read_all(spare) == before
    assert not pool_active(0)
    check = subprocess.run([os.path.join(ROOT, "build", "remap_check"), spare],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
