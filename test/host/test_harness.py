# SPDX-License-Identifier: GPL-2.0-only
"""The VM harness itself: exit codes, crashes and timeouts are reported."""
import os
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
    booted = subprocess.run([os.path.join(ROOT, "test/vm/kver.sh")], capture_output=True,
                            text=True).stdout.strip()
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
