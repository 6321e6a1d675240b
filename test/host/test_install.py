# SPDX-License-Identifier: GPL-2.0-only
"""How a user installs dm-remap, run on the host: `make install` staged with
DESTDIR puts every file in place and nothing outside it, `make uninstall`
takes them away again, the boot unit passes `systemd-analyze verify`, and the
module DKMS builds from `make dkms-src` loads in the guest and remaps."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_RUN = os.path.join(ROOT, "test/vm/vm-run")
TOOLS = ["remapctl", "remap_check", "remap_dump", "remap_repair"]


def kver():
    k = os.environ.get("KVER")
    if not k:
        k = subprocess.run([os.path.join(ROOT, "test/vm/kver.sh"), "6.1"],
                           capture_output=True, text=True).stdout.strip()
    assert k, "no installed kernel with headers"
    return k


def version():
    with open(os.path.join(ROOT, "dkms.conf")) as f:
        m = re.search(r'^PACKAGE_VERSION="([^"]+)"$', f.read(), re.M)
    assert m, "dkms.conf names no PACKAGE_VERSION"
    return m.group(1)


def ko_name(k):
    """dm-remap.ko, with the suffix the kernel's modules carry (Debian's
    6.12 compresses them: .ko.xz)."""
    with open(f"/lib/modules/{k}/modules.dep") as f:
        first = f.readline().split(":")[0]
    return "dm-remap.ko" + first.split(".ko", 1)[1]


def make(*args, check=True):
    p = subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True)
    if check:
        assert p.returncode == 0, f"make {' '.join(args)}: {p.returncode}\n{p.stdout}{p.stderr}"
    return p


def files_under(top):
    return sorted(os.path.relpath(os.path.join(d, f), top)
                  for d, _, fs in os.walk(top) for f in fs)


def modinfo(field, ko):
    return subprocess.run(["/sbin/modinfo", "-F", field, ko], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_staged_install_and_uninstall(tmp_path):
    k = kver()
    stage = tmp_path / "stage"
    ko = ko_name(k)
    real = f"/lib/modules/{k}/updates/{ko}"
    before = os.stat(real).st_mtime_ns if os.path.exists(real) else None

    make(f"KVER={k}", f"DESTDIR={stage}", "install")
    want = {f"lib/modules/{k}/updates/{ko}",
            "usr/local/lib/systemd/system/remapctl-activate.service"}
    want |= {f"usr/local/sbin/{t}" for t in TOOLS}
    want |= {f"usr/local/share/man/man8/{t}.8" for t in TOOLS}
    got = set(files_under(stage))
    assert want <= got, f"missing: {sorted(want - got)}"
    # Nothing else but what modules_install may add next to the module.
    assert all(f in want or f.startswith(f"lib/modules/{k}/") for f in got), sorted(got - want)
    # The module staged is not also written into the real module tree.
    after = os.stat(real).st_mtime_ns if os.path.exists(real) else None
    assert after == before

    staged = str(stage / f"lib/modules/{k}/updates/{ko}")
    assert modinfo("vermagic", staged).split()[0] == k
    assert modinfo("version", staged) == version()
    rc = subprocess.run([str(stage / "usr/local/sbin/remapctl"), "--version"],
                        capture_output=True, text=True)
    assert rc.stdout.strip() == f"remapctl {version()}"
    unit = (stage / "usr/local/lib/systemd/system/remapctl-activate.service").read_text()
    assert "ExecStart=/usr/local/sbin/remapctl activate\n" in unit

    make(f"KVER={k}", f"DESTDIR={stage}", "uninstall")
    left = [f for f in files_under(stage) if not f.startswith(f"lib/modules/{k}/modules.")]
    assert left == []


def test_the_boot_unit_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (test/deps.sh install)")
    prefix = tmp_path / "prefix"
    make(f"PREFIX={prefix}", "install-tools")
    unit = prefix / "lib/systemd/system/remapctl-activate.service"
    assert f"ExecStart={prefix}/sbin/remapctl activate\n" in unit.read_text()
    # verify also runs `man remapctl(8)`: the page installed with it.
    env = dict(os.environ, MANPATH=f"{prefix}/share/man:")
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "remapctl-activate" not in p.stdout + p.stderr, p.stdout + p.stderr


def test_the_dkms_module_loads_and_remaps(tmp_path):
    """DKMS builds from the sources `make dkms-src` lays out, into a tree of
    its own, signed with a key of its own (the machine's DKMS state and
    signing key are not touched); the guest then runs module and remap
    tests on that module instead of the checkout's."""
    if not shutil.which("dkms"):
        pytest.fail("dkms is missing (test/deps.sh install)")
    k, v = kver(), version()
    stage, tree, out = tmp_path / "stage", tmp_path / "dkms", tmp_path / "out"
    tree.mkdir()
    out.mkdir()
    make(f"DESTDIR={stage}", "dkms-src")
    src = stage / f"usr/src/dm-remap-{v}"
    assert (src / "dkms.conf").exists() and (src / "Kbuild").exists()
    env = dict(os.environ, mok_signing_key=str(tmp_path / "mok.key"),
               mok_certificate=str(tmp_path / "mok.pub"))
    p = subprocess.run(["dkms", "build", "-m", "dm-remap", "-v", v, "-k", k,
                        "--sourcetree", str(stage / "usr/src"), "--dkmstree", str(tree)],
                       cwd=tmp_path, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    (ko,) = [os.path.join(d, f) for d, _, fs in os.walk(tree / "dm-remap" / v / k)
             for f in fs if f.startswith("dm-remap.ko")]
    assert os.path.basename(ko) == ko_name(k)
    assert modinfo("version", ko) == v and modinfo("vermagic", ko).split()[0] == k
    if ko.endswith(".xz"):                      # insmod in the guest takes a plain .ko
        with open(out / "dm-remap.ko", "wb") as f:
            subprocess.run(["xz", "-dc", ko], stdout=f, check=True)
    else:
        shutil.copy(ko, out / "dm-remap.ko")

    tests = ["test/py/test_module.py",
             "test/py/test_remap.py::test_forced_remaps_copy_and_redirect"]
    p = subprocess.run([VM_RUN, "--kver", k, "--timeout", "900", "--out", str(out),
                        "--env", "RM_KO=/tmp/out/dm-remap.ko",
                        "--", "/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider",
                        "-rfE", *tests],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "module /tmp/out/dm-remap.ko" in p.stdout
