"""Where a thread runs: affinity, the raw getcpu syscall, CPU sets from sysfs."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

from harness.abi.libc import syscall

SYSFS_CPU = "/sys/devices/system/cpu"


def getcpu() -> tuple[int, int]:
    """(cpu, node) from the getcpu syscall itself.

    Not glibc's sched_getcpu(): since glibc 2.35 that reads glibc's rseq
    area, and the rseq area is what the tests compare against.
    """
    cpu = ctypes.c_uint(0)
    node = ctypes.c_uint(0)
    syscall("getcpu", ctypes.addressof(cpu), ctypes.addressof(node), None)
    return cpu.value, node.value


def parse_cpulist(text: str) -> list[int]:
    """'0-2,5' -> [0, 1, 2, 5] (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def _cpulist(name: str) -> list[int]:
    with open(f"{SYSFS_CPU}/{name}") as f:
        return parse_cpulist(f.read())


def online_cpus() -> list[int]:
    return _cpulist("online")


def possible_cpus() -> list[int]:
    return _cpulist("possible")


@contextmanager
def pinned(cpus: int | set[int]) -> Iterator[None]:
    """Restrict the calling thread to `cpus`, restoring the old mask after.

    os.sched_setaffinity(0, ...) acts on the calling thread only (pid 0 is
    the caller's tid for this syscall), which is what per-thread tests need.
    """
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus} if isinstance(cpus, int) else cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)
