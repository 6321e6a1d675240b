#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""I/O benchmark of the remap target, run inside the guest by test/bench.sh.

One boot, three devices over identical null_blk disks (MAIN_GB GiB, 4 KiB blocks,
no memory backing):  remap, linear A and linear B (first over nullb0, nullb1
and nullb2).  The pool's spare is of the same kind for its data blocks: a
linear concatenation of a brd ramdisk holding the metadata area (it must
keep what mkpool writes) and nullb3 from the first data sector on, so that
remapped I/O does not pay brd's memory copies that the main device does
not.  What it does pay is one device-mapper layer more (the spare's own
linear table); the "spare path" phase measures that layer (dm-linear over
the spare vs dm-linear over null_blk) so the summary can say what a target
that cost nothing would reach.  For each number of remaps (pools written by
build/mkpool) and each of 4 KiB random read / random write, ROUNDS
rounds; a round runs the three devices one after the other in one fio
invocation (stonewall), in an order that rotates through all 6 permutations.
Between rounds (REPLACE=1, the default) the three devices are removed and
created again in another order and with another assignment of the three
disks (replace_devices()), so that no device keeps a memory placement that favours
it for the whole boot.
Reported per round: IOPS of each device.  The host computes remap/linear A
(the result) and linear B/linear A (the A/A control).

Before measuring at each remap count the pool is validated against the
module: resume_spare must accept what mkpool wrote, the remap device must
report exactly N remaps, list_remaps must equal mkpool's list line for line,
and a short run must send the expected share of I/Os to the spare.

Writes $VM_OUT/io.json.  Environment: ROUNDS (10), RUNTIME (3 s), RAMP (0.25 s),
IODEPTH (32), ENGINE (first that works of
"io_uring libaio"), REMAPS ("0 10000 100000"), MKPOOL (path of the binary), KO,
SCAN (1: also the scanner phase: random reads of the remap device with the
pool's scanner off and on at its default rate, interleaved rounds),
SPARE_PATH (also the spare path phase: 1 on disks under 64 GiB, where the
spare carries a share of the I/O worth measuring, else 0), REPLACE (1:
re-create the measured devices between rounds), MAIN_GB (1024: size of each
null_blk disk, so of the main device; without memory backing a size costs
nothing.  100,000 bad 4 KiB blocks are 0.04% of a 1 TiB disk, as on a real
worn disk; on a 4 GiB one they would be 10% of it, and the spare's own dm
layer, an artefact of this set-up, would carry 10% of the I/O).

CLOCK (set by bench.sh): "icount shift=N" when QEMU's guest clock counts
instructions (vm-run --icount) rather than following the host's; recorded
in io.json, so that the summary keeps the two kinds of boot apart.
KNOWN (set by bench.sh): "linear" when KO is the known-answer build
(test/bench/known-linear.patch); recorded in io.json.

PHASE=profile (a boot of its own, with one vCPU): the profile phase instead
(profile_phase(); PROFILE_ROUNDS (3), PROFILE_RUNTIME (5 s)); writes
$VM_OUT/profile.json.

PHASE=cachesim (a boot of its own, one vCPU, on the instruction clock, under
the QEMU plugin of test/bench/cachesim.c): each device alone between the
plugin's markers (cachesim_main(); CS_ROUNDS (2), CS_SHORT (0.1 s), CS_LONG
(0.4 s)); writes $VM_OUT/cachesim.json.
"""
import itertools
import json
import mmap
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("VM_OUT", "/tmp/out")
KO = os.environ.get("KO", os.path.join(ROOT, "dm-remap.ko"))
MKPOOL = os.environ.get("MKPOOL", os.path.join(ROOT, "build/mkpool"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
RUNTIME = float(os.environ.get("RUNTIME", "3"))
RAMP = float(os.environ.get("RAMP", "0.25"))
IODEPTH = int(os.environ.get("IODEPTH", "32"))
REMAPS = [int(x) for x in os.environ.get("REMAPS", "0 10000 100000").split()]
# Extra engines and the remap counts they run at: "libaio:0" measures libaio
# at 0 remaps too (the main engine runs at every count of REMAPS).
EXTRA = [(e.split(":")[0], [int(n) for n in e.split(":")[1].split(",")])
         for e in os.environ.get("EXTRA", "libaio:0").split()]

PROFILE_ROUNDS = int(os.environ.get("PROFILE_ROUNDS", "3"))
PROFILE_RUNTIME = float(os.environ.get("PROFILE_RUNTIME", "5"))
PERF_HZ = 4000
GB = int(os.environ.get("MAIN_GB", "1024"))  # null_blk size
MAIN_SECTORS = GB << 21         # GiB in 512-byte sectors
MAIN_BLOCKS = MAIN_SECTORS // 8
SPARE_KIB = 512 * 1024          # spare size; brd holds only its metadata area
SPARE_SECTORS = SPARE_KIB * 2
SPARE = "bench-spare"
DEV_ID = 42
SEED = 1
MGR, REMAP, LIN_A, LIN_B = "bench-mgr", "bench-remap", "bench-lin-a", "bench-lin-b"
LIN_S = "bench-lin-s"
CONFIGS = {"remap": REMAP, "lin_a": LIN_A, "lin_b": LIN_B}
DISKS = ["/dev/nullb0", "/dev/nullb1", "/dev/nullb2"]   # nullb3: the spare's data
REPLACE = os.environ.get("REPLACE", "1") == "1"
PLACED = dict(zip(CONFIGS, DISKS))     # where each measured device is now
DEVICES = dict(CONFIGS, lin_s=LIN_S)
KMSG_BAD = re.compile(r"BUG:|WARNING:|Call Trace|general protection|Oops|"
                      r"kernel BUG|UBSAN|KASAN|soft lockup|hard LOCKUP|"
                      r"INFO: task .* blocked|Unable to handle")


T0 = time.time()


def log(*a):
    print(f"io-bench [{time.time() - T0:5.0f}s]:", *a, flush=True)


def run(*cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def dm_msg(name, *args):
    return run("dmsetup", "message", name, "0", *args)


def remap_status():
    f = run("dmsetup", "status", REMAP).split()[3:]
    keys = ["pool_id", "dev_id", "remaps", "pending", "read_errors", "write_errors",
            "remapped_ios", "state"]
    st = dict(zip(keys, f))
    for k in keys[:-1]:
        st[k] = int(st[k])
    return st


def setup():
    for m in ["dm-mod", "dm-bufio", "libcrc32c"]:
        run("modprobe", m)
    if os.path.isdir("/sys/module/null_blk") or os.path.isdir("/sys/module/brd"):
        raise RuntimeError("null_blk or brd already loaded: cannot set their parameters")
    run("modprobe", "null_blk", "nr_devices=4", f"gb={GB}", "bs=4096", "queue_mode=2",
        "irqmode=0", "memory_backed=0")
    run("modprobe", "brd", "rd_nr=1", f"rd_size={SPARE_KIB}")
    if not os.path.isdir("/sys/module/dm_remap"):
        run("insmod", KO)
    for d in ["/dev/nullb0", "/dev/nullb1", "/dev/nullb2", "/dev/nullb3", "/dev/ram0"]:
        if not os.path.exists(d):
            raise RuntimeError(f"{d} is missing")
    run("dmsetup", "create", MGR, "--table", "0 1 remap-mgr")
    for cfg in ("lin_a", "lin_b"):
        run("dmsetup", "create", CONFIGS[cfg], "--table", table(cfg, PLACED[cfg]))


def works(eng):
    p = subprocess.run(["fio", "--name=probe", "--filename=/dev/nullb1", "--direct=1",
                        "--rw=randread", "--bs=4k", f"--ioengine={eng}", "--iodepth=4",
                        "--runtime=200ms", "--time_based", "--output-format=json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return p.returncode == 0 and json.loads(p.stdout)["jobs"][0]["error"] == 0
    except (ValueError, KeyError, IndexError):
        return False


def pick_engine():
    for eng in os.environ.get("ENGINE", "io_uring libaio").split():
        if works(eng):
            return eng
    raise RuntimeError("neither io_uring nor libaio works with fio here")


def fio_args(engine, rw, runtime, ramp):
    """fio and the options every measured job shares."""
    args = ["fio", "--output-format=json", f"--ioengine={engine}", "--direct=1",
            "--bs=4k", f"--rw={rw}", f"--iodepth={IODEPTH}", "--numjobs=1",
            "--time_based", f"--runtime={int(runtime * 1000)}ms", "--norandommap",
            "--randrepeat=1", "--invalidate=0"]
    if ramp:
        args.append(f"--ramp_time={int(ramp * 1000)}ms")
    return args


def job_side(job, rw):
    """A fio job's read or write results; a job that failed raises."""
    if job["error"]:
        raise RuntimeError(f"fio job {job['jobname']} failed: error {job['error']}")
    return job["read" if rw == "randread" else "write"]


class KernelLog:
    """What the kernel logs and taints from now on: problems() lists bad
    lines and new taint bits (other than out-of-tree/unsigned module)."""

    def __init__(self):
        self.start = len(run("dmesg").splitlines())
        self.taint0 = self.taint()

    @staticmethod
    def taint():
        with open("/proc/sys/kernel/tainted") as f:
            return int(f.read())

    def problems(self):
        bad = [ln for ln in run("dmesg").splitlines()[self.start:] if KMSG_BAD.search(ln)]
        return bad, self.taint() & ~self.taint0 & ~(4096 | 8192)


def fio(engine, rw, order, runtime=RUNTIME, ramp=RAMP):
    """One fio run of the devices in order, one after the other; {cfg: iops}."""
    args = fio_args(engine, rw, runtime, ramp)
    for cfg in order:
        args += [f"--name={cfg}", f"--filename=/dev/mapper/{DEVICES[cfg]}", "--stonewall"]
    # (fio takes "0.3" as a time of 0 or of 30 s depending on the option:
    # always give a unit.)  Under emulation the last job of a fio run is ~25% slower than the
    # others (measured: 4 identical jobs on one device give 42k 43k 42k
    # 31k IOPS, and so does every single-job run): a short trailing job
    # that is not reported keeps every measured job in the same situation.
    args += ["--name=_tail", f"--filename=/dev/mapper/{LIN_A}", "--runtime=300ms",
             "--ramp_time=0", "--stonewall"]
    res = json.loads(run(*args))
    out = {}
    for job in res["jobs"]:
        if job["jobname"] == "_tail":
            continue
        side = job_side(job, rw)
        out[job["jobname"]] = {"iops": side["iops"], "ios": side["total_ios"]}
    return out


def module_functions():
    """The names of dm_remap's functions (perf reports them as kernel ones)."""
    with open("/proc/kallsyms") as f:
        return {ln.split()[2] for ln in f if ln.rstrip().endswith("[dm_remap]")}


def perf_fio(engine, rw, cfg, runtime, mine):
    """One fio run of one device under perf record (cpu-clock, all CPUs):
    its I/Os, the samples outside the idle task, those in dm_remap's
    functions (the names in mine), and these by function."""
    data = "/tmp/bench-perf.data"
    p = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(PERF_HZ), "-a",
                        "-o", data, "--"] + fio_args(engine, rw, runtime, RAMP)
                       + [f"--name={cfg}", f"--filename=/dev/mapper/{DEVICES[cfg]}"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode:
        raise RuntimeError(f"perf record / fio failed ({p.returncode}): {p.stderr.strip()}")
    ios = job_side(json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0], rw)["total_ios"]
    rep = run("perf", "report", "-i", data, "--no-children", "--sort", "comm,dso,sym",
              "--stdio", "-q", "-n", "--percent-limit", "0", "-t", ",")
    os.unlink(data)
    busy, mod, funcs = 0, 0, {}
    for line in rep.splitlines():
        f = [x.strip() for x in line.split(",", 4)]
        if len(f) < 5 or not f[1].isdigit():
            continue
        n = int(f[1])
        if f[2] == "swapper":
            continue
        busy += n
        name = f[4].split("] ", 1)[-1]
        if f[4].startswith("[k]") and name in mine:
            mod += n
            funcs[name] = funcs.get(name, 0) + n
    return {"ios": ios, "busy": busy, "module": mod, "functions": funcs}


def profile_phase(engine):
    """Where an I/O's CPU time goes, with one vCPU (so that perf samples the
    busy one): for each remap count, fio runs of dm-linear A and of the
    remap device in alternating order under perf.  The IOPS ratio cannot
    resolve 1% under emulation; the share of the remap runs' samples spent
    in dm_remap's own functions can (a lower bound of what the target
    costs: not the dm core work it causes, nor the spare's own layer)."""
    out = {"engine": engine, "hz": PERF_HZ, "runtime_s": PROFILE_RUNTIME, "counts": {}}
    mine = module_functions()
    for n in REMAPS:
        v = load_pool(n)
        if not v["ok"]:
            return {"ok": False, "problems": v["problems"]}
        runs = []
        for rnd in range(PROFILE_ROUNDS):
            for rw in ["randread", "randwrite"]:
                order = ["lin_a", "remap"] if (rnd + (rw == "randwrite")) % 2 == 0 else \
                    ["remap", "lin_a"]
                r = {"round": rnd, "rw": rw}
                for cfg in order:
                    r[cfg] = perf_fio(engine, rw, cfg, PROFILE_RUNTIME, mine)
                runs.append(r)
                m = r["remap"]
                log(f"profile {n:>6} remaps round {rnd + 1}/{PROFILE_ROUNDS} {rw:<9} "
                    f"dm_remap {100 * m['module'] / max(m['busy'], 1):.2f}% of the busy samples")
        out["counts"][str(n)] = runs
    out["ok"] = True
    return out


def table(cfg, disk):
    """The table line of a measured device over disk."""
    if cfg == "remap":
        return f"0 {MAIN_SECTORS} remap {DEV_ID} {disk} 0"
    return f"0 {MAIN_SECTORS} linear {disk} 0"


def replace_devices(k):
    """Remove the three measured devices and create them again, in the k-th
    of the 6 orders, with the (6 - k)-th of the 6 assignments of the three
    disks to the three devices (so that a device's disk does not follow its
    place in the round's fio order): the memory each one gets (its dm
    device, its disk's queue) moves between rounds, so what one placement
    happens to favour under emulation falls on every device alike instead
    of on one for the whole boot.  k = 0 is where setup() and load_pool()
    put them.  The remap device re-attaches to the same pool (same size:
    nothing to commit)."""
    order = list(itertools.permutations(CONFIGS))[k % 6]
    disks = list(itertools.permutations(DISKS))[-k % 6]
    for cfg in CONFIGS:
        run("dmsetup", "remove", CONFIGS[cfg])
    PLACED.update(zip(CONFIGS, disks))
    for cfg in order:
        run("dmsetup", "create", CONFIGS[cfg], "--table", table(cfg, PLACED[cfg]))


def detach_pool():
    if os.path.exists(f"/dev/mapper/{REMAP}"):
        run("dmsetup", "remove", REMAP)
    dm_msg(MGR, "switch_to", "0")
    if os.path.isdir("/sys/module/dm_remap/pools/0"):
        dm_msg(MGR, "free_spare")


def scan_set(name, value):
    with open(f"/sys/module/dm_remap/pools/0/{name}", "w") as f:
        f.write(str(value))


def scan_get(name, dev=None):
    sub = f"devices/{dev}/" if dev is not None else ""
    with open(f"/sys/module/dm_remap/pools/0/{sub}{name}") as f:
        return f.read().strip()


def scanner_phase(engine):
    """Random-read IOPS of the remap device with the scanner off and on (at
    its default rate, a pass in progress), interleaved rounds."""
    v = load_pool(0)
    if not v["ok"]:
        return {"ok": False, "problems": v["problems"]}
    rate = scan_get("scan_rate")
    runs = []
    for rnd in range(ROUNDS):
        iops, scanned = {}, 0
        for cfg in (["off", "on"] if rnd % 2 == 0 else ["on", "off"]):
            if cfg == "on":
                scan_set("scan_enabled", 1)
                dm_msg(MGR, "switch_to", "0")
                dm_msg(MGR, "scan_start")
                time.sleep(0.5)
                before = int(scan_get("scanned", DEV_ID))
            iops[cfg] = fio(engine, "randread", ["remap"])["remap"]["iops"]
            if cfg == "on":
                scanned = int(scan_get("scanned", DEV_ID)) - before
                scan_set("scan_enabled", 0)
        runs.append({"round": rnd, "off": iops["off"], "on": iops["on"],
                     "scanned_blocks_during_on": scanned})
        log(f"scanner round {rnd + 1:>2}/{ROUNDS}: off={iops['off']:6.0f} on={iops['on']:6.0f} "
            f"on/off={iops['on'] / iops['off']:.3f} (scanner read {scanned} blocks meanwhile)")
    return {"ok": True, "rate_kib_s": int(rate), "engine": engine, "runs": runs}


def spare_path_phase(engine):
    """dm-linear over the spare's data area (through the spare's own linear
    table, as remapped I/O goes) against dm-linear over a null_blk disk.
    The pool must be freed: the spare is then free to be mapped."""
    ds = int(run("dmsetup", "table", SPARE).splitlines()[1].split()[0])
    run("dmsetup", "create", LIN_S, "--table",
        f"0 {SPARE_SECTORS - ds} linear /dev/mapper/{SPARE} {ds}")
    runs = []
    for rnd in range(ROUNDS):
        for rw in ["randread", "randwrite"]:
            order = ["lin_a", "lin_s"] if (rnd + (rw == "randwrite")) % 2 == 0 else \
                ["lin_s", "lin_a"]
            i = fio(engine, rw, order)
            runs.append({"round": rnd, "rw": rw, "lin_a": i["lin_a"]["iops"],
                         "lin_s": i["lin_s"]["iops"]})
            log(f"spare path round {rnd + 1:>2}/{ROUNDS} {rw:<9} lin_a={i['lin_a']['iops']:6.0f} "
                f"lin_s={i['lin_s']['iops']:6.0f} "
                f"ratio={i['lin_s']['iops'] / i['lin_a']['iops']:.3f}")
    run("dmsetup", "remove", LIN_S)
    return {"ok": True, "engine": engine, "runs": runs}


def make_spare(image):
    """(Re)build the spare: brd up to the pool's first data sector, then
    nullb3; copy the metadata area of the pool image onto it."""
    with open(image, "rb") as f:
        f.seek(88)                      # superblock copy 0: data_start
        ds = int.from_bytes(f.read(8), "little")
    table = (f"0 {ds} linear /dev/ram0 0\n"
             f"{ds} {SPARE_SECTORS - ds} linear /dev/nullb3 {ds}")
    if os.path.exists(f"/dev/mapper/{SPARE}"):
        run("dmsetup", "remove", SPARE)
    run("dmsetup", "create", SPARE, "--table", table)
    # ds is a multiple of the pool's block size (4 KiB), null_blk's sector.
    run("dd", f"if={image}", f"of=/dev/mapper/{SPARE}", "bs=4096", f"count={ds // 8}",
        "oflag=direct", "status=none")


def load_pool(n):
    """Write a pool with n remaps, resume it, attach the remap device, validate."""
    detach_pool()
    listfile = f"/tmp/mkpool-{n}.list"
    image = f"/tmp/mkpool-{n}.img"
    t0 = time.time()
    gen = run(MKPOOL, "-d", str(DEV_ID), "-s", str(SEED), "-l", listfile,
              "-S", str(SPARE_SECTORS * 512), image, str(MAIN_SECTORS), str(n))
    t_gen = time.time() - t0
    make_spare(image)
    os.unlink(image)
    t0 = time.time()
    dm_msg(MGR, "switch_to", "0")
    dm_msg(MGR, "resume_spare", f"/dev/mapper/{SPARE}")
    # The target alone: the scanner is measured on its own (scanner_phase).
    scan_set("scan_enabled", 0)
    t_resume = time.time() - t0
    t0 = time.time()
    run("dmsetup", "create", REMAP, "--table", table("remap", PLACED["remap"]))
    t_attach = time.time() - t0
    v = {"remaps": n, "mkpool": gen.strip(), "mkpool_s": round(t_gen, 2),
         "resume_s": round(t_resume, 2), "attach_s": round(t_attach, 2)}
    st = remap_status()
    v["status"] = st
    pools = dm_msg(MGR, "list").split()
    v["pool_list"] = " ".join(pools)
    devices = dm_msg(MGR, "list_devices").strip()
    v["list_devices"] = devices
    listed = dm_msg(REMAP, "list_remaps")
    with open(listfile) as f:
        expected = f.read()
    problems = []
    if st["remaps"] != n or st["pending"] != 0 or st["state"] != "ok":
        problems.append(f"status says {st['remaps']} remaps, {st['pending']} pending, "
                        f"state {st['state']}; expected {n}, 0, ok")
    if listed != expected:
        got = listed.splitlines()
        want = expected.splitlines()
        diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                    min(len(got), len(want)))
        problems.append(f"list_remaps differs from mkpool's list: {len(got)} vs {len(want)} "
                        f"lines, first difference at line {diff}")
    if devices != f"{DEV_ID} sectors={MAIN_SECTORS} blocks={n} name=- locator=-":
        problems.append(f"list_devices says '{devices}'")
    if len(pools) < 4 or pools[3].split("/")[0] != str(n):
        problems.append(f"list says '{' '.join(pools)}'")
    bad = direct_reads(listfile)
    if bad:
        problems.append(f"direct reads: {bad}")
    v["list_remaps_lines"] = len(listed.splitlines())
    v["ok"] = not problems
    v["problems"] = problems
    log(f"{n} remaps: mkpool {t_gen:.1f}s, resume_spare {t_resume:.1f}s, attach {t_attach:.1f}s; "
        f"status remaps={st['remaps']}, list_remaps {v['list_remaps_lines']} lines: "
        + ("OK" if v["ok"] else "; ".join(problems)))
    return v


def direct_reads(listfile, k=64):
    """Read k remapped blocks of the pool (mkpool's list) and k blocks that
    are not remapped, one O_DIRECT read each, after a clear_stats: the
    remap device must count exactly k remapped I/Os.  (The share check
    below is statistical, and on big disks expects only a few dozen.)
    Returns a problem or None."""
    with open(listfile) as f:
        mapped = [int(ln.split()[0]) for ln in f if ln.strip()]
    if not mapped:
        return None
    chosen = mapped[:: max(1, len(mapped) // k)][:k]
    taken = set(mapped)
    plain = [b + 1 for b in chosen if b + 1 not in taken and b + 1 < MAIN_BLOCKS]
    buf = mmap.mmap(-1, 4096)           # page-aligned, as O_DIRECT needs
    dm_msg(REMAP, "clear_stats")
    fd = os.open(f"/dev/mapper/{REMAP}", os.O_RDONLY | os.O_DIRECT)
    try:
        for b in chosen + plain:
            if os.preadv(fd, [buf], b * 4096) != 4096:
                return f"short read of block {b}"
    finally:
        os.close(fd)
    got = remap_status()["remapped_ios"]
    if got != len(chosen):
        return (f"{len(chosen)} reads of remapped blocks and {len(plain)} of others "
                f"counted {got} remapped I/Os, not {len(chosen)}")
    return None


def remapped_share(engine, n):
    """Share of the remap device's I/Os that went to the spare, per direction."""
    out = {}
    for rw in ["randread", "randwrite"]:
        dm_msg(REMAP, "clear_stats")
        r = fio(engine, rw, ["remap"], runtime=1.5, ramp=0)
        st = remap_status()
        ios = r["remap"]["ios"]
        p = n / MAIN_BLOCKS
        share = st["remapped_ios"] / ios if ios else 0.0
        # Binomial z-score of the observed share (0 when nothing is remapped).
        z = (share - p) / (p * (1 - p) / ios) ** 0.5 if 0 < p < 1 and ios else \
            (0.0 if share == p else float("inf"))
        out[rw] = {"ios": ios, "remapped_ios": st["remapped_ios"], "share": share,
                   "expected": p, "z": z, "ok": abs(z) < 5}
    return out


def profile_main():
    """The profile boot (PHASE=profile): writes $VM_OUT/profile.json."""
    setup()
    result = profile_phase(pick_engine())
    result["kernel"] = os.uname().release
    result["cpus"] = os.cpu_count()
    result["main_gb"] = GB
    detach_pool()
    with open(os.path.join(OUT, "profile.json"), "w") as f:
        json.dump(result, f, indent=1)
    log("profile done" if result["ok"] else "profile FAILED")
    return 0 if result["ok"] else 1


class Marker:
    """Runs the instruction test/bench/cachesim.c's plugin snapshots its
    counters at (nopl 0x4b52414d(%rax)); counts how often it ran."""

    def __init__(self):
        import ctypes
        self.buf = mmap.mmap(-1, mmap.PAGESIZE,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self.buf.write(bytes([0x0f, 0x1f, 0x80, 0x4d, 0x41, 0x52, 0x4b, 0xc3]))   # ...; ret
        self.fn = ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(self.buf)))
        self.seq = 0

    def __call__(self):
        self.fn()
        self.seq += 1
        return self.seq - 1


def name_module_code(path):
    """Tell the plugin's second model (skip=FILE) which code to leave out:
    dm_remap's, from its load address and size in /proc/modules."""
    with open("/proc/modules") as f:
        for ln in f:
            w = ln.split()
            if w[0] == "dm_remap":
                start, size = int(w[5], 16), int(w[1])
                break
        else:
            raise RuntimeError("dm_remap is not loaded")
    if not start:
        raise RuntimeError("/proc/modules hides addresses (kptr_restrict)")
    with open(path, "w") as f:
        f.write(f"{start:x} {start + size:x}\n")
        f.flush()
        os.fsync(f.fileno())
    return start, size


def fio_alone(engine, rw, cfg, runtime):
    """One fio run of one device, no ramp, no trailing job; its I/Os."""
    res = json.loads(run(*fio_args(engine, rw, runtime, 0), f"--name={cfg}",
                         f"--filename=/dev/mapper/{DEVICES[cfg]}"))
    return job_side(res["jobs"][0], rw)["total_ios"]


WARM_S = 0.02


def settle(engine):
    """After a pool load or re-created devices: let the kernel's deferred
    work (RCU callbacks, the pool's commits) run, then warm each device."""
    time.sleep(1)       # (guest time: on the instruction clock idle time is skipped)
    for cfg in CONFIGS:
        fio_alone(engine, "randread", cfg, WARM_S)


def cachesim_main():
    """The cache-model boot (PHASE=cachesim, under test/bench/cachesim.c):
    each device alone, for CS_SHORT and CS_LONG seconds of guest time, each
    run between two markers; the host takes the difference of the two runs
    (fio's start and end cancel out) per I/O.  Writes $VM_OUT/cachesim.json
    after every round."""
    short = float(os.environ.get("CS_SHORT", "0.1"))
    long_ = float(os.environ.get("CS_LONG", "0.4"))
    rounds = int(os.environ.get("CS_ROUNDS", "2"))
    klog = KernelLog()
    setup()
    engine = pick_engine()
    start, size = name_module_code(os.path.join(OUT, "skip.txt"))
    mark = Marker()
    mark()              # the plugin reads skip.txt
    perms = list(itertools.permutations(CONFIGS))
    result = {"kernel": os.uname().release, "engine": engine, "iodepth": IODEPTH,
              "clock": os.environ.get("CLOCK", "host"), "rounds": rounds,
              "runtimes_s": [short, long_], "main_gb": GB, "validation": [], "runs": [],
              "skipped_code": [f"{start:#x}", size]}

    def save():
        with open(os.path.join(OUT, "cachesim.json"), "w") as f:
            json.dump(result, f, indent=1)
    ok = True
    for n in REMAPS:
        v = load_pool(n)
        result["validation"].append(v)
        ok = ok and v["ok"]
        for rnd in range(rounds):
            if REPLACE and rnd:
                replace_devices(rnd)
            settle(engine)
            for rw in ["randread", "randwrite"]:
                for cfg in perms[(rnd + (rw == "randwrite") * 3) % len(perms)]:
                    # Unmeasured: the caches warm up on this device first.
                    fio_alone(engine, rw, cfg, WARM_S)
                    m = mark()
                    for t in (short, long_):
                        ios = fio_alone(engine, rw, cfg, t)
                        result["runs"].append({"remaps": n, "round": rnd, "rw": rw, "cfg": cfg,
                                               "runtime_s": t, "ios": ios, "marks": [m, mark()]})
                        m = result["runs"][-1]["marks"][1]
                log(f"cache model {n:>6} remaps round {rnd + 1}/{rounds} {rw}: done")
            save()
        if REPLACE and rounds > 1:
            replace_devices(0)
    detach_pool()
    bad, taint = klog.problems()
    result["kmsg_bad"], result["new_taint"] = bad, taint
    if bad or taint:
        log("kernel log problems:", *bad, f"taint {taint:#x}")
        ok = False
    result["ok"] = ok
    save()
    log("cache model done" if ok else "cache model FAILED")
    return 0 if ok else 1


def cachesim_pcs_main():
    """PHASE=cachesim-pcs, by hand (Documentation/benchmarks.md): under the
    plugin with pcs=on, the three devices one after the other, each for
    CS_LONG seconds between two markers, at each count of REMAPS; writes
    $VM_OUT/pcs.json and a copy of /proc/kallsyms, for
    test/bench/cachesim_pcs.py."""
    long_ = float(os.environ.get("CS_LONG", "0.4"))
    klog = KernelLog()
    setup()
    engine = pick_engine()
    mark = Marker()
    runs = []
    ok = True
    mark()
    for n in REMAPS:
        ok = load_pool(n)["ok"] and ok
        settle(engine)
        for rw in ["randread", "randwrite"]:
            for cfg in ("lin_a", "remap", "lin_b"):
                fio_alone(engine, rw, cfg, WARM_S)
                m0 = mark()
                ios = fio_alone(engine, rw, cfg, long_)
                runs.append({"remaps": n, "rw": rw, "cfg": cfg, "ios": ios, "marks": [m0, mark()]})
            log(f"cache model by instruction {n:>6} remaps {rw}: done")
    detach_pool()
    with open(os.path.join(OUT, "pcs.json"), "w") as f:
        json.dump({"runs": runs, "kernel": os.uname().release}, f, indent=1)
    with open("/proc/kallsyms") as f, open(os.path.join(OUT, "kallsyms"), "w") as g:
        g.write(f.read())
    bad, taint = klog.problems()
    if bad or taint:
        log("kernel log problems:", *bad, f"taint {taint:#x}")
    ok = ok and not bad and not taint
    log("done" if ok else "FAILED (pool checks or kernel log: see above)")
    return 0 if ok else 1


def main():
    os.makedirs(OUT, exist_ok=True)
    if os.environ.get("PHASE") == "cachesim-pcs":
        return cachesim_pcs_main()
    if os.environ.get("PHASE") == "profile":
        return profile_main()
    if os.environ.get("PHASE") == "cachesim":
        return cachesim_main()
    klog = KernelLog()
    setup()
    engine = pick_engine()
    plan = {n: [engine] for n in REMAPS}
    for eng, counts in EXTRA:
        if eng == engine:
            continue
        if not works(eng):
            log(f"fio engine {eng} does not work here: skipped")
            continue
        for n in counts:
            if n in plan:
                plan[n].append(eng)
    log(f"kernel {os.uname().release}, {os.environ.get('CLOCK', 'host')} clock, "
        f"fio engine {engine}, iodepth {IODEPTH}, "
        f"{ROUNDS} rounds x {RUNTIME}s (+{RAMP}s ramp), plan {plan}")
    result = {
        "kernel": os.uname().release, "engine": engine, "iodepth": IODEPTH,
        "runtime_s": RUNTIME, "ramp_s": RAMP, "rounds": ROUNDS, "bs": 4096,
        "clock": os.environ.get("CLOCK", "host"),
        "known": os.environ.get("KNOWN"),
        "main_sectors": MAIN_SECTORS, "dev_id": DEV_ID,
        "spare": f"{SPARE_KIB} KiB: metadata area on brd, data blocks on nullb3",
        "null_blk": f"nr_devices=4 gb={GB} bs=4096 queue_mode=2 irqmode=0 memory_backed=0",
        "plan": {str(n): e for n, e in plan.items()}, "replace": REPLACE,
        "validation": [], "share": {}, "runs": [],
    }
    perms = list(itertools.permutations(CONFIGS))
    failed = False
    t_start = time.time()
    for n in REMAPS:
        v = load_pool(n)
        result["validation"].append(v)
        if not v["ok"]:
            failed = True
            continue
        result["share"][str(n)] = sh = remapped_share(engine, n)
        log(f"{n} remaps: share of I/O sent to the spare: "
            + ", ".join(f"{rw} {s['share']:.4f} (expected {s['expected']:.4f}, z={s['z']:+.1f})"
                        for rw, s in sh.items()))
        if not all(s["ok"] for s in sh.values()):
            log(f"{n} remaps: the share of remapped I/O is not what the pool implies")
            failed = True
        for eng in plan[n]:
            for rnd in range(ROUNDS):
                if REPLACE and rnd:
                    replace_devices(rnd)
                for rw in ["randread", "randwrite"]:
                    order = list(perms[(rnd + (rw == "randwrite") * 3) % len(perms)])
                    i = fio(eng, rw, order)
                    result["runs"].append({"engine": eng, "remaps": n, "round": rnd,
                                           "rw": rw, "order": order,
                                           "iops": {c: i[c]["iops"] for c in CONFIGS},
                                           "disks": dict(PLACED)})
                    log(f"{eng:<8} {n:>6} remaps round {rnd + 1:>2}/{ROUNDS} {rw:<9} "
                        + " ".join(f"{c}={i[c]['iops']:6.0f}" for c in order)
                        + f"  remap/lin_a={i['remap']['iops'] / i['lin_a']['iops']:.3f}"
                        + f"  A/A={i['lin_b']['iops'] / i['lin_a']['iops']:.3f}")
            if REPLACE and ROUNDS > 1:
                replace_devices(0)      # back where setup() and load_pool() put them
            with open(os.path.join(OUT, "io.json"), "w") as f:
                json.dump(result, f, indent=1)
    if os.environ.get("SCAN", "1") == "1":
        result["scanner"] = sc = scanner_phase(engine)
        if not sc["ok"]:
            failed = True
    result["measure_s"] = round(time.time() - t_start, 1)

    # The module's own metadata (after its commits) must load in user space too.
    detach_pool()
    p = subprocess.run([MKPOOL, "-V", f"/dev/mapper/{SPARE}"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    result["verify_after_module"] = {"rc": p.returncode, "out": p.stdout.strip()}
    if os.environ.get("SPARE_PATH", "1" if GB < 64 else "0") == "1":
        result["spare_path"] = spare_path_phase(engine)
    log(f"pool as left by the module, checked by mkpool -V: rc={p.returncode} {p.stdout.strip()}")
    if p.returncode:
        failed = True
    for d in [LIN_A, LIN_B, SPARE, MGR]:
        run("dmsetup", "remove", d, check=False)

    bad, taint = klog.problems()
    result["kmsg_bad"] = bad
    result["new_taint"] = taint
    with open("/proc/meminfo") as f:
        result["meminfo"] = {k: v.strip() for k, v in
                             (ln.split(":", 1) for ln in f if ln.split(":")[0] in
                              ("MemTotal", "MemFree", "MemAvailable"))}
    if bad or taint:
        log("kernel log problems:", *bad, f"taint {taint:#x}")
        failed = True
    result["ok"] = not failed
    with open(os.path.join(OUT, "io.json"), "w") as f:
        json.dump(result, f, indent=1)
    log("done" if not failed else "FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:     # report, and fail the run
        log(f"error: {e}")
        sys.exit(1)
