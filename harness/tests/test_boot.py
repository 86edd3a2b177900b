"""Boot stage with a fake virtme-ng: hangs, panics, dead VMs and exit codes."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

from harness import arch, boot
from harness.errors import BootError, GuestKernelError


def _fake_vng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "vng"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def _req(tmp_path: Path, timeout: int = 10) -> boot.BootRequest:
    return boot.BootRequest(arch.get("x86_64"), tmp_path / "bzImage",
                            tmp_path / "console.log", tmp_path / "results",
                            timeout_s=timeout)


def test_guest_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch,
              "echo 'Linux version 6.12.107'\necho 'cpu-opv-guest: start'\n"
              "echo 'cpu-opv-guest: done rc=0'\n")
    res = boot.boot(_req(tmp_path), ["true"])
    assert res.guest_rc == 0
    boot.check_console(res, tmp_path / "console.log")
    assert "Linux version" in (tmp_path / "console.log").read_text()


def test_reopened_stderr_keeps_the_console(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """virtme-ng has QEMU open /proc/self/fd/2 as a file (guest stderr, the
    kernel log): that open must not truncate what the console already
    holds (it did when the launcher wrote to the log file directly)."""
    _fake_vng(tmp_path, monkeypatch,
              "echo 'Linux version 6.12.107'\necho 'cpu-opv-guest: start'\n"
              "echo 'Aborted' > /proc/self/fd/2\n"
              "echo 'cpu-opv-guest: done rc=0'\n")
    res = boot.boot(_req(tmp_path), ["true"])
    boot.check_console(res, tmp_path / "console.log")
    text = (tmp_path / "console.log").read_text()
    assert text.index("cpu-opv-guest: start") < text.index("Aborted") < text.index("rc=0")


def test_guest_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch,
              "echo 'Linux version 6.12.107'\necho 'cpu-opv-guest: start'\nsleep 60\n")
    with pytest.raises(BootError, match=r"did not finish within 1s.*hung while running"):
        boot.boot(_req(tmp_path, timeout=1), ["true"])


def test_guest_panics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch,
              "echo 'Linux version 6.12.107'\n"
              "echo '[    1.0] Kernel panic - not syncing: No working init found.'\nexit 255\n")
    res = boot.boot(_req(tmp_path), ["true"])
    assert (res.guest_rc, res.vm_rc) == (None, 255)
    with pytest.raises(GuestKernelError, match="panic at console line 2"):
        boot.check_console(res, tmp_path / "console.log")


def test_warning_fails_even_when_tests_pass(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch,
              "echo 'cpu-opv-guest: start'\n"
              "echo '[ 9.0] WARNING: CPU: 1 PID: 80 at kernel/cpu_opv.c:1 x+0x0/0x1'\n"
              "echo 'cpu-opv-guest: done rc=0'\n")
    res = boot.boot(_req(tmp_path), ["true"])
    with pytest.raises(GuestKernelError, match="never a pass"):
        boot.check_console(res, tmp_path / "console.log")


# The ways a VM fails, told apart by the console markers and the
# launcher's exit status together (vng says 255 for a VM that died).
VM_FAILURES = {
    "never reached the script": (
        "echo 'Linux version 6.12.107'\nexit 255\n",
        r"never reached its script .*never ran the guest script; the VM's exit status 255"),
    "its init gave up": (
        "echo 'Linux version 6.12.107'\n"
        "echo 'cpu-opv-init: cannot mount the repository at /root/r'\n"
        "echo 'cpu-opv-guest: done rc=2'\nexit 0\n",
        r"never reached its script \(its init gave up: cannot mount the repository "
        r"at /root/r; the VM's exit status 0\)"),
    "died during the script": (
        "echo 'Linux version 6.12.107'\necho 'cpu-opv-guest: start'\nexit 255\n",
        r"VM died while the guest script ran .*exit status 255"),
    "failed after the script": (
        "echo 'cpu-opv-guest: start'\necho 'cpu-opv-guest: done rc=0'\nexit 255\n",
        r"finished \(exit 0\) but the VM then failed \(exit status 255\)"),
}


@pytest.mark.parametrize("name", list(VM_FAILURES))
def test_vm_failures_are_three_reports(name: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    script, message = VM_FAILURES[name]
    _fake_vng(tmp_path, monkeypatch, script)
    res = boot.boot(_req(tmp_path), ["true"])
    with pytest.raises(BootError, match=message):
        boot.check_console(res, tmp_path / "console.log")


def test_script_failure_is_not_a_boot_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """vng passes the guest script's exit code on: that is a test verdict."""
    _fake_vng(tmp_path, monkeypatch,
              "echo 'cpu-opv-guest: start'\necho 'cpu-opv-guest: done rc=1'\nexit 1\n")
    res = boot.boot(_req(tmp_path), ["true"])
    assert (res.guest_rc, res.vm_rc) == (1, 1)
    boot.check_console(res, tmp_path / "console.log")


def test_hang_with_a_stall_is_the_kernels(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch,
              "echo 'cpu-opv-guest: start'\n"
              "echo '[ 99.0] rcu: INFO: rcu_preempt self-detected stall on CPU'\nsleep 60\n")
    with pytest.raises(GuestKernelError, match="did not finish within 1s, and the kernel"):
        boot.boot(_req(tmp_path, timeout=1), ["true"])


def test_vng_command_uses_tcg_without_probe(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch, "exit 0\n")
    argv = boot.vng_command(_req(tmp_path), "echo hi")
    assert "--disable-kvm" in argv and argv[argv.index("--cpus") + 1] == "4"
    assert argv[-2:] == ["--exec", "echo hi"]


def test_vng_command_appends_kernel_parameters(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch, "exit 0\n")
    req = dataclasses.replace(_req(tmp_path), append=("isolcpus=3", "nohz=off"))
    argv = boot.vng_command(req, "echo hi")
    assert argv[argv.index("--append") + 1] == "isolcpus=3 nohz=off"


def test_vng_found_beside_the_python_running_the_harness(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`build/venv/bin/python -m harness` without build/venv/bin on PATH."""
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "vng").write_text("#!/bin/sh\nexit 0\n")
    (venv_bin / "vng").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert boot.vng() == str(venv_bin / "vng")
    assert os.environ["PATH"].split(os.pathsep)[-1] == str(venv_bin)   # for virtme-run
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (venv_bin / "vng").unlink()
    with pytest.raises(BootError, match="vng"):
        boot.vng()
