#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""I/O benchmark of the remap target, run inside the guest by test/bench.sh.

One boot, three devices over identical null_blk disks (4 GiB, 4 KiB blocks,
no memory backing):  remap (over nullb0), linear A (nullb1) and linear B
(nullb2).  The pool's spare is a fourth null_blk device of the same kind,
made through configfs with memory backing (it must keep the pool's
metadata): remapped I/O goes through the same driver and no extra layer.  For each number of remaps (pools written by
test/bench/mkpool) and each of 4 KiB random read / random write, ROUNDS
rounds; a round runs the three devices one after the other in one fio
invocation (stonewall), in an order that rotates through all 6 permutations.
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
pool's scanner off and on at its default rate, interleaved rounds).
"""
import itertools
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("VM_OUT", "/tmp/out")
KO = os.environ.get("KO", os.path.join(ROOT, "dm-remap.ko"))
MKPOOL = os.environ.get("MKPOOL", os.path.join(ROOT, "build/bench/mkpool"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
RUNTIME = float(os.environ.get("RUNTIME", "3"))
RAMP = float(os.environ.get("RAMP", "0.25"))
IODEPTH = int(os.environ.get("IODEPTH", "32"))
REMAPS = [int(x) for x in os.environ.get("REMAPS", "0 10000 100000").split()]
# Extra engines and the remap counts they run at: "libaio:0" measures libaio
# at 0 remaps too (the main engine runs at every count of REMAPS).
EXTRA = [(e.split(":")[0], [int(n) for n in e.split(":")[1].split(",")])
         for e in os.environ.get("EXTRA", "libaio:0").split()]

GB = 4                          # null_blk size
MAIN_SECTORS = GB << 21         # 4 GiB in 512-byte sectors
MAIN_BLOCKS = MAIN_SECTORS // 8
SPARE_MB = 512                  # memory-backed null_blk: pages on first write
NULLB_CFG = "/sys/kernel/config/nullb"
SPARE = None                    # /dev/nullbN, set by setup()
DEV_ID = 42
SEED = 1
MGR, REMAP, LIN_A, LIN_B = "bench-mgr", "bench-remap", "bench-lin-a", "bench-lin-b"
CONFIGS = {"remap": REMAP, "lin_a": LIN_A, "lin_b": LIN_B}
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
    global SPARE
    if os.path.isdir("/sys/module/null_blk"):
        raise RuntimeError("null_blk already loaded: cannot set its parameters")
    run("modprobe", "null_blk", "nr_devices=3", f"gb={GB}", "bs=4096", "queue_mode=2",
        "irqmode=0", "memory_backed=0")
    SPARE = make_spare()
    if not os.path.isdir("/sys/module/dm_remap"):
        run("insmod", KO)
    for d in ["/dev/nullb0", "/dev/nullb1", "/dev/nullb2", SPARE]:
        if not os.path.exists(d):
            raise RuntimeError(f"{d} is missing")
    run("dmsetup", "create", MGR, "--table", "0 1 remap-mgr")
    run("dmsetup", "create", LIN_A, "--table", f"0 {MAIN_SECTORS} linear /dev/nullb1 0")
    run("dmsetup", "create", LIN_B, "--table", f"0 {MAIN_SECTORS} linear /dev/nullb2 0")


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


def fio(engine, rw, order, runtime=RUNTIME, ramp=RAMP):
    """One fio run of the devices in order, one after the other; {cfg: iops}."""
    args = ["fio", "--output-format=json", f"--ioengine={engine}", "--direct=1",
            "--bs=4k", f"--rw={rw}", f"--iodepth={IODEPTH}", "--numjobs=1",
            "--time_based", f"--runtime={int(runtime * 1000)}ms", "--norandommap",
            "--randrepeat=1", "--invalidate=0"]
    if ramp:
        args.append(f"--ramp_time={int(ramp * 1000)}ms")
    for cfg in order:
        args += [f"--name={cfg}", f"--filename=/dev/mapper/{CONFIGS[cfg]}", "--stonewall"]
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
        if job["error"]:
            raise RuntimeError(f"fio job {job['jobname']} failed: error {job['error']}")
        side = job["read"] if rw == "randread" else job["write"]
        out[job["jobname"]] = {"iops": side["iops"], "ios": side["total_ios"]}
    return out


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


def make_spare():
    """The spare: a null_blk like the others but memory-backed (configfs)."""
    if not os.path.isdir(NULLB_CFG):
        run("modprobe", "configfs")
        if not os.path.ismount("/sys/kernel/config"):
            run("mount", "-t", "configfs", "configfs", "/sys/kernel/config")
    d = os.path.join(NULLB_CFG, "spare")
    os.mkdir(d)
    for k, v in [("size", SPARE_MB), ("blocksize", 4096), ("queue_mode", 2),
                 ("irqmode", 0), ("memory_backed", 1), ("power", 1)]:
        with open(os.path.join(d, k), "w") as f:
            f.write(str(v))
    with open(os.path.join(d, "index")) as f:
        return f"/dev/nullb{int(f.read())}"


def remove_spare():
    d = os.path.join(NULLB_CFG, "spare")
    with open(os.path.join(d, "power"), "w") as f:
        f.write("0")
    os.rmdir(d)


def load_pool(n):
    """Write a pool with n remaps, resume it, attach the remap device, validate."""
    detach_pool()
    listfile = f"/tmp/mkpool-{n}.list"
    t0 = time.time()
    gen = run(MKPOOL, "-d", str(DEV_ID), "-s", str(SEED), "-l", listfile,
              SPARE, str(MAIN_SECTORS), str(n))
    t_gen = time.time() - t0
    t0 = time.time()
    dm_msg(MGR, "switch_to", "0")
    dm_msg(MGR, "resume_spare", SPARE)
    # The target alone: the scanner is measured on its own (scanner_phase).
    scan_set("scan_enabled", 0)
    t_resume = time.time() - t0
    t0 = time.time()
    run("dmsetup", "create", REMAP, "--table",
        f"0 {MAIN_SECTORS} remap {DEV_ID} /dev/nullb0 0")
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
    v["list_remaps_lines"] = len(listed.splitlines())
    v["ok"] = not problems
    v["problems"] = problems
    log(f"{n} remaps: mkpool {t_gen:.1f}s, resume_spare {t_resume:.1f}s, attach {t_attach:.1f}s; "
        f"status remaps={st['remaps']}, list_remaps {v['list_remaps_lines']} lines: "
        + ("OK" if v["ok"] else "; ".join(problems)))
    return v


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


def main():
    os.makedirs(OUT, exist_ok=True)
    kmsg_start = len(run("dmesg").splitlines())
    taint0 = int(open("/proc/sys/kernel/tainted").read())
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
    log(f"kernel {os.uname().release}, fio engine {engine}, iodepth {IODEPTH}, "
        f"{ROUNDS} rounds x {RUNTIME}s (+{RAMP}s ramp), plan {plan}")
    result = {
        "kernel": os.uname().release, "engine": engine, "iodepth": IODEPTH,
        "runtime_s": RUNTIME, "ramp_s": RAMP, "rounds": ROUNDS, "bs": 4096,
        "main_sectors": MAIN_SECTORS, "dev_id": DEV_ID,
        "spare": f"{SPARE} ({SPARE_MB} MiB null_blk, memory-backed)",
        "null_blk": f"nr_devices=4 gb={GB} bs=4096 queue_mode=2 irqmode=0 memory_backed=0",
        "plan": {str(n): e for n, e in plan.items()},
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
                for rw in ["randread", "randwrite"]:
                    order = list(perms[(rnd + (rw == "randwrite") * 3) % len(perms)])
                    i = fio(eng, rw, order)
                    result["runs"].append({"engine": eng, "remaps": n, "round": rnd,
                                           "rw": rw, "order": order,
                                           "iops": {c: i[c]["iops"] for c in CONFIGS}})
                    log(f"{eng:<8} {n:>6} remaps round {rnd + 1:>2}/{ROUNDS} {rw:<9} "
                        + " ".join(f"{c}={i[c]['iops']:6.0f}" for c in order)
                        + f"  remap/lin_a={i['remap']['iops'] / i['lin_a']['iops']:.3f}"
                        + f"  A/A={i['lin_b']['iops'] / i['lin_a']['iops']:.3f}")
            with open(os.path.join(OUT, "io.json"), "w") as f:
                json.dump(result, f, indent=1)
    if os.environ.get("SCAN", "1") == "1":
        result["scanner"] = sc = scanner_phase(engine)
        if not sc["ok"]:
            failed = True
    result["measure_s"] = round(time.time() - t_start, 1)

    # The module's own metadata (after its commits) must load in user space too.
    detach_pool()
    p = subprocess.run([MKPOOL, "-V", SPARE], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    result["verify_after_module"] = {"rc": p.returncode, "out": p.stdout.strip()}
    log(f"pool as left by the module, checked by mkpool -V: rc={p.returncode} {p.stdout.strip()}")
    if p.returncode:
        failed = True
    for d in [LIN_A, LIN_B, MGR]:
        run("dmsetup", "remove", d, check=False)
    remove_spare()

    lines = run("dmesg").splitlines()[kmsg_start:]
    bad = [ln for ln in lines if KMSG_BAD.search(ln)]
    taint = int(open("/proc/sys/kernel/tainted").read()) & ~taint0 & ~(4096 | 8192)
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
