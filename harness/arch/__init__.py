"""Per-architecture boot definitions, one file each (like kunit's qemu_configs).

Adding an architecture adds a module here and a console fragment under
kernel-config/; no other code changes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from harness.errors import UserError

ARCHES = ("x86_64", "arm64", "arm", "powerpc")


@dataclass(frozen=True)
class ArchConfig:
    name: str            # our name, also the build/<name>/ directory
    kernel_arch: str     # ARCH= for the kernel's make
    cross_compile: str   # CROSS_COMPILE= prefix, "" for native
    image: str           # boot image, relative to the O= directory
    vng_arch: str        # virtme-ng --arch (Debian names: amd64, armhf, ...)
    fragment: str        # kernel-config/<fragment>: console and machine bits
    native: bool         # can the host's userspace run in the guest?


def get(name: str) -> ArchConfig:
    if name not in ARCHES:
        raise UserError("arch", f"unknown ARCH={name!r}",
                        f"use one of: {', '.join(ARCHES)}")
    mod = importlib.import_module(f"harness.arch.{name}")
    cfg: ArchConfig = mod.CONFIG
    return cfg
