"""The one table of syscall numbers the harness uses, per architecture.

Numbers come from the 6.12 tables (arch/x86/entry/syscalls/syscall_{64,32}.tbl,
scripts/syscall.tbl for arm64, arch/arm/tools/syscall.tbl,
arch/powerpc/kernel/syscalls/syscall.tbl); harness/tests/test_abi_layout.py
checks this table against the patched tree so the two cannot drift.

cpu_opv is 463 everywhere: the next free number in 6.12.  Upstream 6.13 gave
463 to setxattrat, so a caller must run cpu_opv.probe() before sending a
vector (docs/man/cpu_opv.2, VERSIONS).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

CPU_OPV_NR = 463


@dataclass(frozen=True)
class SyscallTable:
    arch: str                 # our name (the kernel's table it comes from)
    table: str                # path of that table in the kernel tree
    numbers: dict[str, int]   # syscall name (as in the .tbl) -> number


def _table(arch: str, table: str, **numbers: int) -> SyscallTable:
    return SyscallTable(arch, table, {**numbers, "cpu_opv": CPU_OPV_NR})


TABLES: dict[str, SyscallTable] = {
    t.arch: t
    for t in (
        _table("x86_64", "arch/x86/entry/syscalls/syscall_64.tbl",
               sched_setaffinity=203, sched_getaffinity=204,
               getcpu=309, rseq=334, arch_prctl=158),
        _table("i386", "arch/x86/entry/syscalls/syscall_32.tbl",
               sched_setaffinity=241, sched_getaffinity=242,
               getcpu=318, rseq=386),
        _table("arm64", "scripts/syscall.tbl",
               sched_setaffinity=122, sched_getaffinity=123,
               getcpu=168, rseq=293),
        _table("arm", "arch/arm/tools/syscall.tbl",
               sched_setaffinity=241, sched_getaffinity=242,
               getcpu=345, rseq=398),
        _table("powerpc", "arch/powerpc/kernel/syscalls/syscall.tbl",
               sched_setaffinity=222, sched_getaffinity=223,
               getcpu=302, rseq=387),
    )
}

# platform.machine() spellings (uname -m) -> our table names.
MACHINES: dict[str, str] = {
    "x86_64": "x86_64", "amd64": "x86_64",
    "i386": "i386", "i486": "i386", "i586": "i386", "i686": "i386",
    "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm", "armv8l": "arm", "arm": "arm",
    "ppc64le": "powerpc", "ppc64": "powerpc", "ppc": "powerpc",
}


class UnsupportedArch(RuntimeError):
    """The running machine has no entry in TABLES."""


def arch_name(machine: str | None = None) -> str:
    """Our architecture name for `machine` (default: this machine)."""
    m = machine if machine is not None else platform.machine()
    try:
        return MACHINES[m]
    except KeyError:
        raise UnsupportedArch(
            f"no syscall table for machine {m!r}; known: "
            + ", ".join(sorted(MACHINES))) from None


def table(machine: str | None = None) -> SyscallTable:
    return TABLES[arch_name(machine)]


def nr(name: str, machine: str | None = None) -> int:
    """Syscall number of `name` on `machine` (default: this machine)."""
    t = table(machine)
    try:
        return t.numbers[name]
    except KeyError:
        raise UnsupportedArch(f"syscall {name!r} not in the {t.arch} table") from None
