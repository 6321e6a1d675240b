# SPDX-License-Identifier: GPL-2.0-only
"""The VM harness itself: exit codes, crashes and timeouts are reported."""
import os
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_RUN = os.path.join(ROOT, "test/vm/vm-run")


def vm(*argv, timeout=300):
    return subprocess.run([VM_RUN, "--quiet", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_exit_code_and_result_files_come_back(tmp_path):
    p = vm("--out", str(tmp_path), "--", "sh", "-c",
           'uname -r > "$VM_OUT/kver"; test "$IN_VM" = 1 || exit 9; exit 7')
    assert p.returncode == 7
    booted = os.environ.get("KVER") or subprocess.run(
        [os.path.join(ROOT, "test/vm/kver.sh")], capture_output=True, text=True).stdout.strip()
    with open(tmp_path / "kver") as f:
        assert f.read().strip() == booted


def test_guest_panic_is_a_failure_with_the_console_shown():
    p = vm("--", "sh", "-c", "echo c > /proc/sysrq-trigger; sleep 60")
    assert p.returncode == 124
    assert "did not return an exit code" in p.stderr
    assert "Kernel panic" in p.stderr or "sysrq" in p.stderr


def test_timeout_is_a_failure():
    t0 = time.monotonic()
    p = vm("--timeout", "30", "--", "sleep", "600")
    assert p.returncode == 124
    assert time.monotonic() - t0 < 120


FAKE_QEMU = """#!/bin/bash
# Aborts like QEMU on an assertion of its own, {aborts} time(s), then runs QEMU.
n=$(cat "{state}" 2>/dev/null || echo 0)
if [ "$n" -lt {aborts} ]; then
	echo $((n + 1)) > "{state}"
	echo "qemu-system-x86_64: hw/pci/msix.c:218: msix_table_mmio_write: Assertion \\`x' failed." >&2
	kill -ABRT $$
fi
exec {qemu} "$@"
"""


def fake_qemu(tmp_path, aborts):
    qemu = subprocess.run(["sh", "-c", "command -v qemu-system-x86_64"], capture_output=True,
                          text=True).stdout.strip()
    d = tmp_path / "bin"
    d.mkdir()
    (d / "qemu-system-x86_64").write_text(FAKE_QEMU.format(
        aborts=aborts, state=tmp_path / "state", qemu=qemu))
    (d / "qemu-system-x86_64").chmod(0o755)
    return dict(os.environ, PATH=f"{d}:{os.environ['PATH']}")


def run_with(env, *argv):
    return subprocess.run([VM_RUN, "--quiet", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def test_qemu_abort_before_the_guest_starts_is_booted_again_once(tmp_path):
    p = run_with(fake_qemu(tmp_path, 1), "--", "sh", "-c", "exit 5")
    assert p.returncode == 5, p.stderr
    assert "QEMU aborted before the guest started" in p.stderr
    assert (tmp_path / "state").read_text().strip() == "1"


def test_qemu_aborting_twice_is_a_failure(tmp_path):
    p = run_with(fake_qemu(tmp_path, 2), "--", "sh", "-c", "exit 5")
    assert p.returncode == 124
    assert "did not return an exit code" in p.stderr
    assert "Assertion" in p.stderr


SLOW_TIMEOUT = """#!/bin/bash
# timeout(1), one second late in starting QEMU.
sleep 1
exec {timeout} "$@"
"""


def test_pidfile_names_qemu_itself(tmp_path):
    """--pidfile is for kill -9 of QEMU: it must name QEMU, not timeout(1)
    (whose command line holds the same arguments), even when QEMU starts
    late; killing it ends vm-run and leaves no QEMU behind."""
    timeout = subprocess.run(["sh", "-c", "command -v timeout"], capture_output=True,
                             text=True).stdout.strip()
    d = tmp_path / "bin"
    d.mkdir()
    (d / "timeout").write_text(SLOW_TIMEOUT.format(timeout=timeout))
    (d / "timeout").chmod(0o755)
    env = dict(os.environ, PATH=f"{d}:{os.environ['PATH']}")
    pidfile = tmp_path / "qemu.pid"
    p = subprocess.Popen([VM_RUN, "--quiet", "--timeout", "300", "--pidfile", str(pidfile),
                          "--", "sleep", "600"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline and p.poll() is None, "no pid was written"
            time.sleep(0.1)
        pid = int(pidfile.read_text())
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "qemu-system-x86"
        with open(f"/proc/{pid}/cmdline") as f:
            ret = [a for a in f.read().split("\0") if a.startswith("file,id=ret,path=")]
        assert len(ret) == 1
        os.kill(pid, signal.SIGKILL)
        assert p.wait(timeout=60) == 124
        left = subprocess.run(["pgrep", "-f", ret[0]], capture_output=True,
                              text=True).stdout.split()
        assert not left, f"processes of this boot left behind: {left}"
    finally:
        # (A QEMU left behind by a failure ends at its --timeout.)
        if p.poll() is None:
            p.kill()
            p.wait()
