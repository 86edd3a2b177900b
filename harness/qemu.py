"""Boot command for the architectures that QEMU runs directly (launcher "qemu").

What vng does for x86_64, reduced to what the harness needs: the guest
root (harness.guest_root) and this repository shared over 9p, the
kernel's console on QEMU's stdio, and vm/guest/init as PID 1, which runs
the command given after `--` on the kernel command line and powers off.
The machine, CPU model and console come from vm/arch/<name>.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.arch import ArchConfig
from harness.errors import BootError

STAGE = "boot"
ROOT_TAG = "cpu_opv_root"
REPO_TAG = "cpu_opv_repo"
INIT = "/cpu-opv-init"          # where harness.guest_root installs vm/guest/init
# 9p's default msize (8 KiB) makes every file read a round trip per 8 KiB.
MSIZE = 512 * 1024


def binary(arch: ArchConfig) -> str:
    path = shutil.which(arch.qemu)
    if path is None:
        raise BootError(STAGE, f"{arch.qemu} is not installed",
                        f"run `make setup` (Debian: {' '.join(arch.host_packages)})")
    return path


def _share(arch: ArchConfig, tag: str, path: Path, readonly: bool) -> list[str]:
    ro = ",readonly=on" if readonly else ""
    return ["-fsdev", f"local,id={tag},path={path},security_model=none{ro}",
            "-device", f"virtio-9p-{arch.virtio},fsdev={tag},mount_tag={tag}"]


def command(arch: ArchConfig, image: Path, root: Path, repo: Path, *, cpus: int,
            memory: str, kvm: bool, guest_argv: list[str] | None,
            append: tuple[str, ...] = ()) -> list[str]:
    """QEMU's argv; guest_argv None boots into an interactive shell."""
    cmdline = [
        f"console={arch.console}",
        # A panic reboots, and -no-reboot turns that into QEMU exiting.
        "panic=-1",
        f"root={ROOT_TAG}", "rootfstype=9p",
        f"rootflags=trans=virtio,version=9p2000.L,msize={MSIZE},cache=loose", "ro",
        f"init={INIT}",
        # Not a kernel parameter, so the kernel hands it to init as an
        # environment variable.
        f"cpu_opv_repo={repo}",
        *append,
    ]
    if guest_argv is None:
        cmdline.append("cpu_opv_shell=1")
    else:
        # The kernel splits its command line at spaces, quotes or not.
        spaced = [a for a in guest_argv if not a or any(c.isspace() for c in a)]
        if spaced:
            raise BootError(STAGE, f"guest arguments with spaces: {spaced!r}",
                            "use paths without spaces for the repository")
        cmdline += ["--", *guest_argv]
    accel = list(arch.kvm_args) if kvm else ["-accel", "tcg", *arch.qemu_machine]
    return [binary(arch), *accel, "-smp", str(cpus), "-m", memory,
            "-nographic", "-no-reboot", "-kernel", str(image),
            *_share(arch, ROOT_TAG, root, readonly=True),
            *_share(arch, REPO_TAG, repo, readonly=False),
            "-append", " ".join(cmdline)]
