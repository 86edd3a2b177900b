"""Boot stage: the kernel in QEMU, and the guest script in it.

vm/arch/<name>.toml says how: virtme-ng with the host's root (launcher
"vng", the host's own architecture), or QEMU driven by harness.qemu with a
guest root from harness.guest_root (launcher "qemu").  KVM is used only
when a short probe boot proves it works (on some hosts /dev/kvm exists
but QEMU aborts or spins); otherwise TCG.  Every wait has a
timeout, and the whole console goes to build/<arch>/console.log.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from harness import REPO, console, qemu
from harness.arch import ArchConfig
from harness.errors import BootError, GuestKernelError, UserError
from harness.run import echo, quote

STAGE = "boot"
GUEST_SCRIPT = REPO / "vm" / "guest" / "run-tests.sh"
START_MARK = "cpu-opv-guest: start"
DONE_MARK = "cpu-opv-guest: done rc="
INIT_MARK = "cpu-opv-init: "
PROBE_TIMEOUT_S = 30


@dataclass(frozen=True)
class BootRequest:
    arch: ArchConfig
    image: Path
    console_log: Path
    results: Path
    cpus: int = 4
    memory: str = "2G"
    timeout_s: int = 1800
    kvm: bool = False
    root: Path | None = None   # the guest root (launcher "qemu")
    repo: Path = REPO
    append: tuple[str, ...] = ()   # more kernel parameters (BOOT_APPEND)


@dataclass(frozen=True)
class BootResult:
    guest_rc: int | None     # the guest script's exit code, None if it never finished
    console: str
    seconds: float
    # The launcher's own exit status: vng passes the guest command's on
    # and says 255 for a VM that died; QEMU exits 0 when the guest powers off.
    vm_rc: int | None = None


def vng() -> str:
    """vng from PATH (the Makefile puts build/venv/bin first), else the one
    beside this Python, for `build/venv/bin/python -m harness`; then that
    directory goes on PATH, last, since vng runs its own tools (virtme-run)
    from PATH."""
    path = shutil.which("vng")
    if path is None:
        here = str(Path(sys.executable).parent)
        path = shutil.which("vng", path=here)
        if path is not None:
            os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), here])
    if path is None:
        raise BootError(STAGE, "virtme-ng (vng) is not installed",
                        "run `make setup` (it installs vng in build/venv)")
    return path


def vng_command(req: BootRequest, command: str | None) -> list[str]:
    if not req.arch.native:
        raise UserError(STAGE, f"ARCH={req.arch.name} boots with virtme-ng and the "
                        f"host's root, which needs a {req.arch.machine} host",
                        f"set launcher = \"qemu\" in vm/arch/{req.arch.name}.toml")
    argv = [vng(), "--run", str(req.image), "--cpus", str(req.cpus), "--memory", req.memory,
            # 9p directly: vng would try the host's virtiofsd and give up,
            # costing 3 s every boot.
            "--force-9p", "--user", "root", "--rwdir", str(req.results)]
    # The console is what the host scans for warnings; an interactive
    # shell has no scan and is easier to read without it.
    if command is not None:
        argv.append("--verbose")
    if not req.kvm:
        argv.append("--disable-kvm")
    if req.append:
        argv += ["--append", " ".join(req.append)]
    if command is not None:
        argv += ["--exec", command]
    return argv


def command(req: BootRequest, guest_argv: list[str] | None) -> list[str]:
    """The boot command of req.arch's launcher; None: an interactive shell."""
    if req.arch.launcher == "vng":
        return vng_command(req, None if guest_argv is None else quote(guest_argv))
    if req.root is None:
        raise BootError(STAGE, f"ARCH={req.arch.name} needs a guest root")
    return qemu.command(req.arch, req.image, req.root, req.repo, cpus=req.cpus,
                        memory=req.memory, kvm=req.kvm, guest_argv=guest_argv,
                        append=req.append)


def probe_kvm(arch: ArchConfig, image: Path, cache: Path) -> bool:
    """True when a KVM boot of `image` reaches the kernel's own messages.

    The answer depends on the host, not on our kernel, so it is cached per
    host kernel and QEMU binary; the probe costs up to 30 s once.
    """
    if not arch.native or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    binary = shutil.which(arch.qemu)
    if binary is None:
        return False
    key = f"{arch.name} {platform.release()} {os.stat(binary).st_mtime_ns}"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return bool(cached["kvm"])
    except (OSError, ValueError, KeyError):
        pass
    argv = [binary, *arch.kvm_args, "-m", "256", "-nographic",
            "-no-reboot", "-kernel", str(image),
            "-append", f"console={arch.console} panic=-1 root=/dev/cpu-opv-probe"]
    echo(f"boot: probing KVM ({PROBE_TIMEOUT_S}s at most): {quote(argv)}")
    ok = False
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
        ok = "Linux version" in proc.stdout
    except subprocess.TimeoutExpired:
        ok = False
    echo(f"boot: KVM {'works' if ok else 'does not work here: using TCG'}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "kvm": ok}))
    return ok


def boot(req: BootRequest, guest_argv: list[str]) -> BootResult:
    """Boot, run `guest_argv` in the guest, and return what happened.

    Raises BootError for a VM that hung (GuestKernelError when the kernel
    said why); check_console() judges the rest.
    """
    argv = command(req, guest_argv)
    echo(f"boot: {req.cpus} CPUs, {'KVM' if req.kvm else 'TCG'}, "
         f"console -> {req.console_log}")
    echo(f"  $ {quote(argv)}")
    start = time.monotonic()
    with req.console_log.open("wb") as log:
        # A pipe, copied to the log by a thread, not the log file itself:
        # virtme-ng has QEMU open /proc/self/fd/2 for the guest's stderr and
        # the kernel log, and each open of a regular file there starts at
        # offset 0 and truncates it, which overwrote the console's start.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        copier = threading.Thread(target=_copy, args=(proc, log), daemon=True)
        copier.start()
        try:
            proc.wait(timeout=req.timeout_s)
        except subprocess.TimeoutExpired as e:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            copier.join(timeout=10)
            log.flush()
            text = req.console_log.read_text(errors="replace")
            _raise_incidents(text, req.console_log,
                             f"the guest did not finish within {req.timeout_s}s, and ")
            raise BootError(
                STAGE, f"the guest did not finish within {req.timeout_s}s "
                f"({_progress(text)})",
                f"see {req.console_log}; raise BOOT_TIMEOUT if the tests are just slow"
            ) from e
        # QEMU's children may hold the pipe open a little longer.
        copier.join(timeout=10)
    elapsed = time.monotonic() - start
    text = req.console_log.read_text(errors="replace")
    return BootResult(_guest_rc(text), text, elapsed, proc.returncode)


def _copy(proc: subprocess.Popen[bytes], log: BinaryIO) -> None:
    """Copy the launcher's output to the console log as it comes."""
    assert proc.stdout is not None
    while chunk := os.read(proc.stdout.fileno(), 65536):
        log.write(chunk)
        log.flush()


def _progress(text: str) -> str:
    # vm/guest/init says why it gave up, then prints the done marker itself.
    init = re.search(rf"^.*?{re.escape(INIT_MARK)}(.*)$", text, re.MULTILINE)
    if init and START_MARK not in text:
        return f"its init gave up: {init[1].strip()}"
    if DONE_MARK in text:
        return "the guest script finished but QEMU did not exit"
    if START_MARK in text:
        return "it hung while running the tests"
    if "Linux version" in text:
        return "the kernel booted but never ran the guest script"
    return "no kernel output at all"


@dataclass(frozen=True)
class GuestFacts:
    """What the guest script said about itself (vm/guest/run-tests.sh)."""

    boot_s: float | None    # kernel start to the guest script
    tests_s: float | None   # the guest script's run
    cpus: int | None        # online CPUs the guest saw


def guest_facts(text: str) -> GuestFacts:
    start = re.search(r"cpu-opv-guest: start uptime=([\d.]+) cpus=(\d+)", text)
    done = re.search(r"cpu-opv-guest: done rc=\d+ uptime=([\d.]+)", text)
    boot_s = float(start[1]) if start else None
    tests_s = float(done[1]) - boot_s if done and boot_s is not None else None
    return GuestFacts(boot_s, tests_s, int(start[2]) if start else None)


def _guest_rc(text: str) -> int | None:
    idx = text.rfind(DONE_MARK)
    if idx < 0:
        return None
    digits = text[idx + len(DONE_MARK):].split(None, 1)[0]
    return int(digits) if digits.isdigit() else None


def _raise_incidents(text: str, console_log: Path, lead: str = "") -> None:
    incidents = console.scan(text)
    if incidents:
        shown = "\n    ".join(str(i) for i in incidents[:10])
        raise GuestKernelError(
            STAGE, f"{lead}the kernel reported {len(incidents)} problem(s):\n    {shown}",
            f"see {console_log}: a kernel warning is never a pass")


def check_console(result: BootResult, console_log: Path) -> None:
    """Raise unless the kernel stayed quiet and the guest script ran to its end.

    Three ways a VM can fail are told apart, from the console markers and
    the launcher's exit status together: the guest never reached its script,
    the VM died while the script ran, or the VM failed after the script
    finished.  A kernel incident (panic, oops, BUG, WARNING) comes first:
    it is the series' doing, whatever the VM did next.
    """
    _raise_incidents(result.console, console_log)
    status = f"exit status {'unknown' if result.vm_rc is None else result.vm_rc}"
    if START_MARK not in result.console:
        raise BootError(STAGE, f"the guest never reached its script "
                        f"({_progress(result.console)}; the VM's {status})",
                        f"see {console_log}")
    if result.guest_rc is None:
        raise BootError(STAGE, f"the VM died while the guest script ran "
                        f"(no '{DONE_MARK}' line; the VM's {status})",
                        f"see {console_log}")
    if result.vm_rc not in (None, 0, result.guest_rc):
        raise BootError(STAGE, f"the guest script finished (exit {result.guest_rc}) "
                        f"but the VM then failed ({status})", f"see {console_log}")
