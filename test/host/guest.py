# SPDX-License-Identifier: GPL-2.0-only
"""Guest side of the multi-boot tests (test/host/): one phase per boot.

    python3 test/host/guest.py <phase> [args]

Results go to $VM_OUT as JSON files the host test reads.  The spare is the
first virtio disk (/dev/vda), a disk image on the host.
"""
import json
import os
import sys

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


def msg(*args):
    return dmsetup("message", MGR, "0", *args).strip()


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
    dmsetup("create", "d1", "--table", f"0 1024 remap 1 {main_dev()} {SLOT}")
    save("format.json", pool_state())


def phase_check():
    msg("switch_to", SLOT)
    msg("resume_spare", SPARE)
    save("check.json", pool_state())
    msg("free_spare")


def phase_attach_loop():
    """Attach devices one after another; each attach returns only once its
    identity record is durable, and is then acknowledged in acked.txt.
    Runs until the host kills QEMU."""
    msg("format_spare", SPARE)
    msg("switch_to", SLOT)
    msg("resume_spare", SPARE)
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


PHASES = {"format": phase_format, "check": phase_check, "attach-loop": phase_attach_loop}

if __name__ == "__main__":
    setup()
    PHASES[sys.argv[1]]()
