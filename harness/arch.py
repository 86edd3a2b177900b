"""Per-architecture facts, read from vm/arch/<name>.toml (one file each).

Like kunit's qemu_configs/: adding an architecture adds a data file there
and a Kconfig fragment under kernel-config/; no code changes.  This module
only reads and checks the data; nothing else in the harness names an
architecture.
"""

from __future__ import annotations

import platform
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import REPO
from harness.errors import UserError

STAGE = "arch"
ARCH_DIR = REPO / "vm" / "arch"
FRAGMENT_DIR = REPO / "kernel-config"


@dataclass(frozen=True)
class Abi:
    """One ABI a process of this kernel can have (for the layout test)."""

    name: str
    cflags: tuple[str, ...]
    u64_align: int
    # The compiler prefix of this ABI's C selftests when it is not the
    # architecture's own (x86_64's i386: i686-linux-gnu-); "" if it is.
    cross_compile: str = ""


@dataclass(frozen=True)
class ArchConfig:
    name: str             # our name, also the build/<name>/ directory
    kernel_arch: str      # ARCH= for the kernel's make
    cross_prefix: str     # the cross compiler's prefix on any other host
    machine: str          # platform.machine() of a host that runs it natively
    image: str            # boot image, relative to the O= directory
    make_target: str      # what make builds to get `image`
    fragment: str         # kernel-config/<fragment>: console and machine bits
    debian_arch: str      # Debian's name: the guest root's packages
    host_packages: tuple[str, ...]
    selftest_cflags: str
    launcher: str         # "vng" (virtme-ng) or "qemu" (harness/qemu.py)
    vng_arch: str         # virtme-ng --arch
    qemu: str             # the QEMU binary
    qemu_machine: tuple[str, ...]  # -M/-cpu arguments (launcher "qemu")
    console: str          # the kernel's console device
    virtio: str           # virtio transport suffix: "device" (mmio) or "pci"
    kvm_args: tuple[str, ...]      # QEMU arguments of a KVM probe boot
    abis: tuple[Abi, ...]

    @property
    def native(self) -> bool:
        """Can the host's own userspace (and its venv) run in the guest?"""
        return platform.machine() == self.machine

    @property
    def cross_compile(self) -> str:
        """CROSS_COMPILE= for this host: empty when building natively."""
        return "" if self.native else self.cross_prefix

    @property
    def fragment_path(self) -> Path:
        return FRAGMENT_DIR / self.fragment


def names() -> list[str]:
    """Every architecture that has a data file, sorted."""
    return sorted(p.stem for p in ARCH_DIR.glob("*.toml"))


def get(name: str) -> ArchConfig:
    path = ARCH_DIR / f"{name}.toml"
    if not path.is_file():
        raise UserError(STAGE, f"unknown ARCH={name!r}",
                        f"use one of: {', '.join(names())} (files in {ARCH_DIR})")
    return load(path)


def load(path: Path) -> ArchConfig:
    """Read one data file; a missing or mistyped key names the file and key."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(STAGE, f"{path}: {e}") from e
    boot = _table(data, "boot", path)
    try:
        cfg = ArchConfig(
            name=_str(data, "name", path),
            kernel_arch=_str(data, "kernel_arch", path),
            cross_prefix=_str(data, "cross_compile", path),
            machine=_str(data, "machine", path),
            image=_str(data, "image", path),
            make_target=_str(data, "make_target", path),
            fragment=_str(data, "fragment", path),
            debian_arch=_str(data, "debian_arch", path),
            host_packages=_strs(data, "host_packages", path),
            selftest_cflags=_str(data, "selftest_cflags", path),
            launcher=_str(boot, "launcher", path),
            vng_arch=_str(boot, "vng_arch", path),
            qemu=_str(boot, "qemu", path),
            qemu_machine=_strs(boot, "machine", path, required=False),
            console=_str(boot, "console", path),
            virtio=str(boot.get("virtio", "device")),
            kvm_args=_strs(boot, "kvm_args", path),
            abis=tuple(Abi(_str(a, "name", path), _strs(a, "cflags", path),
                           int(a["u64_align"]), str(a.get("selftest_cross_compile", "")))
                       for a in data.get("abi", [])),
        )
    except KeyError as e:
        raise UserError(STAGE, f"{path}: missing key {e}") from e
    if cfg.name != path.stem:
        raise UserError(STAGE, f"{path}: name = {cfg.name!r}, expected {path.stem!r}")
    if cfg.launcher not in ("vng", "qemu"):
        raise UserError(STAGE, f"{path}: launcher = {cfg.launcher!r}: vng or qemu")
    if cfg.launcher == "qemu" and not cfg.qemu_machine:
        raise UserError(STAGE, f"{path}: launcher qemu needs boot.machine")
    return cfg


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise UserError(STAGE, f"{path}: no [{key}] table")
    return value


def _str(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise UserError(STAGE, f"{path}: {key} must be a string, got {value!r}")
    return value


def _strs(data: dict[str, Any], key: str, path: Path,
          required: bool = True) -> tuple[str, ...]:
    value = data.get(key, None if required else [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(STAGE, f"{path}: {key} must be a list of strings, got {value!r}")
    return tuple(value)
