# SPDX-License-Identifier: GPL-2.0-only
"""Guest side of the multi-boot tests (test/host/): one phase per boot.

    python3 test/host/guest.py <phase> [args]

Results go to $VM_OUT as JSON files the host test reads.  The spare is the
first virtio disk (/dev/vda), a disk image on the host.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "py"))

from dmtools import dmsetup, run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("VM_OUT", "/tmp/out")
SPARE = "/dev/vda"
MGR = "remap-mgr"
SLOT = "2"


def setup():
    for m in ("dm-mod", "dm-bufio", "libcrc32c", "loop"):
        run("modprobe", m)
    run("insmod", os.path.join(ROOT, "dm-remap.ko"))
    dmsetup("create", MGR, "--table", "0 1 remap-mgr")


def msg(*args, timeout=120):
    return dmsetup("message", MGR, "0", *args, timeout=timeout).strip()


def scan_off():
    """The scanner's own commits would blur what these tests count."""
    with open(f"/sys/module/dm_remap/pools/{SLOT}/scan_enabled", "w") as f:
        f.write("0")


def pool_state():
    base = f"/sys/module/dm_remap/pools/{SLOT}"
    st = {}
    for a in ("uuid", "metadata_seq", "blocks_total", "state"):
        with open(os.path.join(base, a)) as f:
            st[a] = f.read().strip()
    msg("switch_to", SLOT)
    st["devices"] = sorted(int(line.split()[0]) for line in msg("list_devices").splitlines())
    return st


def save(name, obj):
    path = os.path.join(OUT, name)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)


def main_dev():
    img = "/tmp/main.img"
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    return run("losetup", "-f", "--show", img).strip()


def phase_format():
    """Format and resume a pool, attach one device, then stop without
    freeing anything (the host powers the guest off)."""
    msg("format_spare", SPARE)
    msg("switch_to", SLOT)
    msg("resume_spare", SPARE)
    scan_off()
    dmsetup("create", "d1", "--table", f"0 1024 remap 1 {main_dev()} {SLOT}")
    save("format.json", pool_state())


def phase_check():
    msg("switch_to", SLOT)
    msg("resume_spare", SPARE)
    scan_off()
    save("check.json", pool_state())
    msg("free_spare")


def phase_attach_loop():
    """Attach devices one after another; each attach returns only once its
    identity record is durable, and is then acknowledged in acked.txt.
    Runs until the host kills QEMU."""
    msg("format_spare", SPARE)
    msg("switch_to", SLOT)
    msg("resume_spare", SPARE)
    scan_off()
    save("format.json", pool_state())
    main = main_dev()
    fd = os.open(os.path.join(OUT, "acked.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for i in range(1, 63):
        name = f"d{i}"
        dmsetup("create", name, "--table", f"0 64 remap {i} {main} {SLOT}")
        os.write(fd, f"{i}\n".encode())
        os.fsync(fd)
        dmsetup("remove", name)
    os.close(fd)


def phase_large():
    """A pool of more than 2^27 blocks (512-byte blocks on the large sparse
    first disk): formats, resumes, and takes a forced remap."""
    t0 = time.monotonic()
    msg("format_spare", SPARE, "block_size=512", timeout=1200)
    t1 = time.monotonic()
    msg("switch_to", SLOT)
    msg("resume_spare", SPARE, timeout=1200)
    t2 = time.monotonic()
    scan_off()
    dmsetup("create", "d1", "--table", f"0 1024 remap 1 {main_dev()} {SLOT}")
    dmsetup("message", "d1", "0", "force_remap", "100")
    st = pool_state()
    st["remaps"] = dmsetup("message", "d1", "0", "list_remaps").strip()
    st["seconds"] = [round(t1 - t0), round(t2 - t1)]
    dmsetup("remove", "d1")
    msg("switch_to", SLOT)
    msg("free_spare")
    save("large.json", st)


PHASES = {"format": phase_format, "check": phase_check, "attach-loop": phase_attach_loop,
          "large": phase_large}

MAIN = "/dev/vdb"
BLOCK = 4096
NBLOCKS = 64


def block_data(b, v):
    from dmtools import pattern
    return pattern(f"{b}-{v}", BLOCK)


def bad_main(bad):
    """/dev/mapper/badmain: /dev/vdb with error segments at the given blocks."""
    sectors = int(run("blockdev", "--getsz", MAIN))
    lines, pos = [], 0
    for b in sorted(bad):
        if b * 8 > pos:
            lines.append(f"{pos} {b * 8 - pos} linear {MAIN} {pos}")
        lines.append(f"{b * 8} 8 error")
        pos = b * 8 + 8
    lines.append(f"{pos} {sectors - pos} linear {MAIN} {pos}")
    dmsetup("create", "badmain", "--table", "\n".join(lines))
    return "/dev/mapper/badmain", sectors


ERROR_BLOCKS = [b for b in range(NBLOCKS) if b % 3 == 1]


SPARE_DM = "rspare"


def spare_dm():
    """/dev/mapper/rspare: a linear device over the spare disk, whose table
    fail_spare_writes() changes."""
    n = run("blockdev", "--getsz", SPARE).strip()
    dmsetup("create", SPARE_DM, "--table", f"0 {n} linear {SPARE} 0")
    return f"/dev/mapper/{SPARE_DM}"


def fail_spare_writes(nblocks):
    """Spare blocks [0, nblocks) of the pool on rspare fail writes from now
    on and still read: they become a read-only loop view of the disk
    (direct I/O, so that it reads what the pool wrote)."""
    from pools import data_start
    n = int(run("blockdev", "--getsz", SPARE))
    ds = data_start(SPARE)
    end = ds + nblocks * 8
    view = run("losetup", "-r", "--direct-io=on", "-o", str(ds * 512), "--sizelimit",
               str(nblocks * BLOCK), "-f", "--show", SPARE).strip()
    dmsetup("reload", SPARE_DM, "--table", "\n".join([
        f"0 {ds} linear {SPARE} 0", f"{ds} {end - ds} linear {view} 0",
        f"{end} {n - end} linear {SPARE} {end}"]))
    dmsetup("resume", SPARE_DM)


def burst(main, sectors, force, spare=SPARE, fail_spare=False):
    """Writes to blocks 0..63 of a remap device over main (each acknowledged
    after an O_SYNC write) while, with force, blocks are force-remapped one
    after another (each acknowledged once the message returned).  With
    fail_spare, once all are remapped their spare blocks fail writes
    ("fail" acknowledged), so that each write relocates its block.  Runs
    until the host kills QEMU."""
    import threading
    from dmtools import pwrite
    msg("format_spare", spare)
    msg("switch_to", SLOT)
    msg("resume_spare", spare)
    scan_off()
    dmsetup("create", "burst", "--table", f"0 {sectors} remap 1 {main} {SLOT}")
    dev = "/dev/mapper/burst"
    log = os.open(os.path.join(OUT, "acked.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    lock = threading.Lock()

    def ack(line):
        with lock:
            os.write(log, (line + "\n").encode())
            os.fsync(log)

    for b in range(NBLOCKS):
        pwrite(dev, b * BLOCK, block_data(b, 0))
        ack(f"w {b} 0")

    def writer(first):
        v = 1
        while True:
            for b in range(first, NBLOCKS, 2):
                pwrite(dev, b * BLOCK, block_data(b, v))
                ack(f"w {b} {v}")
            v += 1

    for first in (0, 1):
        threading.Thread(target=writer, args=(first,), daemon=True).start()
    if force:
        for b in range(NBLOCKS):
            dmsetup("message", "burst", "0", "force_remap", str(b * 8))
            ack(f"r {b}")
        if fail_spare:
            fail_spare_writes(NBLOCKS)
            ack("fail")
        else:
            ack("done")         # the burst of remaps is over: too late a kill
    else:
        for b in ERROR_BLOCKS:
            ack(f"r {b}")       # remapped by the first acknowledged write
    threading.Event().wait()


def verify(main, sectors, spare=SPARE):
    """After the kill: every acknowledged remap is there and every block
    holds its last acknowledged write or a later one."""
    from dmtools import pread
    msg("switch_to", SLOT)
    msg("resume_spare", spare)
    scan_off()
    dmsetup("create", "burst", "--table", f"0 {sectors} remap 1 {main} {SLOT}")
    remaps = sorted(int(line.split()[0]) for line in
                    dmsetup("message", "burst", "0", "list_remaps").splitlines())
    versions = {}
    for b in range(NBLOCKS):
        try:
            data = pread("/dev/mapper/burst", b * BLOCK, BLOCK)
        except OSError:
            versions[b] = -2
            continue
        vs = set()
        for s in range(0, BLOCK, 512):
            seed = data[s:s + 512].split(b":")[0].decode(errors="replace")
            bb, _, v = seed.partition("-")
            vs.add(int(v) if bb == str(b) and v.isdigit() else -1)
        versions[b] = min(vs)
    with open(f"/sys/module/dm_remap/pools/{SLOT}/blocks_retired") as f:
        retired = int(f.read())
    save("verify.json", {"remaps": remaps, "versions": versions, "retired": retired})
    dmsetup("remove", "burst")
    msg("free_spare")


def phase_remap_burst():
    burst(MAIN, int(run("blockdev", "--getsz", MAIN)), force=True)


def phase_verify_burst():
    verify(MAIN, int(run("blockdev", "--getsz", MAIN)))


def phase_error_burst():
    burst(*bad_main(ERROR_BLOCKS), force=False)


def phase_verify_error_burst():
    verify(*bad_main(ERROR_BLOCKS))


def phase_relocate_burst():
    burst(MAIN, int(run("blockdev", "--getsz", MAIN)), force=True, spare=spare_dm(),
          fail_spare=True)


def phase_verify_relocate_burst():
    verify(MAIN, int(run("blockdev", "--getsz", MAIN)), spare=spare_dm())


PHASES.update({"relocate-burst": phase_relocate_burst,
               "verify-relocate-burst": phase_verify_relocate_burst})
PHASES.update({"remap-burst": phase_remap_burst, "verify-remap-burst": phase_verify_burst,
               "error-burst": phase_error_burst,
               "verify-error-burst": phase_verify_error_burst})


if __name__ == "__main__":
    setup()
    PHASES[sys.argv[1]]()
