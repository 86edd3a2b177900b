"""CPU hotplug through /sys/devices/system/cpu/cpuN/online (needs root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from harness.abi.sched import SYSFS_CPU


def _path(cpu: int) -> str:
    return f"{SYSFS_CPU}/cpu{cpu}/online"


def can_offline(cpu: int) -> bool:
    """CPU 0 on x86 usually has no `online` file: it cannot be offlined."""
    return os.access(_path(cpu), os.W_OK)


def is_online(cpu: int) -> bool:
    try:
        with open(_path(cpu)) as f:
            return f.read().strip() == "1"
    except FileNotFoundError:
        return os.path.isdir(f"{SYSFS_CPU}/cpu{cpu}")


def set_online(cpu: int, online: bool) -> None:
    with open(_path(cpu), "w") as f:
        f.write("1" if online else "0")


@contextmanager
def offlined(cpu: int) -> Iterator[None]:
    """Take `cpu` offline for the block; always bring it back online."""
    set_online(cpu, False)
    try:
        yield
    finally:
        set_online(cpu, True)
