# SPDX-License-Identifier: GPL-2.0-only
"""Small helpers around dmsetup, losetup and block I/O used by the VM tests."""
import os
import re
import subprocess
import time

SECTOR = 512


class CmdError(Exception):
    def __init__(self, argv, rc, out, err):
        super().__init__(f"{' '.join(argv)} exited {rc}: {err.strip() or out.strip()}")
        self.argv, self.rc, self.out, self.err = argv, rc, out, err


def run(*argv, check=True, input=None, timeout=120):
    """Run a command, return its stdout; raise CmdError on failure if check."""
    argv = [str(a) for a in argv]
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise CmdError(argv, p.returncode, p.stdout, p.stderr)
    return p.stdout if check else p


def dmsetup(*args, **kw):
    return run("dmsetup", *args, **kw)


def dm_names():
    out = dmsetup("ls")
    if "No devices found" in out:
        return set()
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def loop_devices():
    out = run("losetup", "-a", "-n", "-O", "NAME")
    return {line.strip() for line in out.splitlines() if line.strip()}


def blockdev_sectors(path):
    return int(run("blockdev", "--getsz", path).strip())


def linear_table(dev, sectors, offset=0):
    return f"0 {sectors} linear {dev} {offset}"


def segments_table(dev, sectors, bad, target="error", target_args=""):
    """A table over dev where the (start, length) ranges in bad use `target`
    (error by default; e.g. "delay" with args) and the rest is linear."""
    lines, pos = [], 0
    for start, length in sorted(bad):
        if start < pos or start + length > sectors:
            raise ValueError(f"bad range {start}+{length} overlaps or is out of device")
        if start > pos:
            lines.append(f"{pos} {start - pos} linear {dev} {pos}")
        args = target_args.format(dev=dev, start=start) if target_args else ""
        lines.append(f"{start} {length} {target} {args}".rstrip())
        pos = start + length
    if pos < sectors:
        lines.append(f"{pos} {sectors - pos} linear {dev} {pos}")
    return "\n".join(lines)


def dos_table(*parts):
    """A DOS partition table of Linux partitions (start, sectors)."""
    table = bytearray(512)
    for i, (start, sectors) in enumerate(parts):
        table[446 + 16 * i + 4] = 0x83
        table[446 + 16 * i + 8:446 + 16 * i + 16] = \
            start.to_bytes(4, "little") + sectors.to_bytes(4, "little")
    table[510:512] = b"\x55\xaa"
    return bytes(table)


def pread(path, offset, length, direct=True):
    """Read length bytes at offset; raises OSError (e.g. EIO) like a user would see."""
    flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags)
    try:
        if direct:
            import mmap
            buf = mmap.mmap(-1, length)
            n = os.preadv(fd, [buf], offset)
            return bytes(buf[:n])
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def pwrite(path, offset, data, direct=True, sync=True):
    flags = os.O_WRONLY | (os.O_DIRECT if direct else 0) | (os.O_SYNC if sync else 0)
    fd = os.open(path, flags)
    try:
        if direct:
            import mmap
            buf = mmap.mmap(-1, len(data))
            buf[:] = data
            return os.pwritev(fd, [buf], offset)
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def pattern(seed, length):
    """Deterministic, position-dependent data: every 512-byte sector is unique."""
    out = bytearray()
    for s in range(0, length, SECTOR):
        head = f"{seed}:{s // SECTOR}:".encode()
        out += (head * (SECTOR // len(head) + 1))[:SECTOR]
    return bytes(out[:length])


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def parse_kv(text):
    return dict(re.findall(r"(\w+)=(\S+)", text))


# fio options that verify what a job wrote.  fio checks the sequence number
# in each block's header (so an older, valid block where a newer one was
# written fails) only when not --time_based, and only against its own
# job's writes: so a job loops until --runtime, and jobs get parts of the
# device of their own (--offset_increment).
FIO_VERIFY = ["--loops=1000000", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"]
