"""The calling thread's thread pointer, read from Python.

glibc publishes its rseq area as an offset from the thread pointer
(`__rseq_offset`), and Python has no way to read that register.  x86_64
has a system call for it (arch_prctl ARCH_GET_FS).  arm64, 32-bit arm and
powerpc have none, so a two-instruction function (read the register into
the return register, return) is mapped executable and called through
ctypes.

The code is written into a memfd with write(2) and mapped PROT_READ |
PROT_EXEC from it, never written through a mapping: the kernel then makes
the instruction cache coherent with those page-cache pages when it maps
them executable, as for any program text, which arm64 and powerpc need
and a store into an anonymous page followed by a jump would not give.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import sys
from collections.abc import Callable

from harness.abi import memory, syscalls
from harness.abi.libc import syscall

ARCH_GET_FS = 0x1003

# Instruction words, in the order they run; every target here stores its
# instructions in the byte order of its data (arm64, armhf and ppc64le
# are all little-endian).
_READ_TP: dict[str, tuple[int, ...]] = {
    # mrs x0, tpidr_el0 ; ret
    "arm64": (0xD53BD040, 0xD65F03C0),
    # mrc p15, 0, r0, c13, c0, 3 (TPIDRURO, what __aeabi_read_tp reads) ;
    # bx lr.  ARM state: the address's low bit is clear, and bx returns to
    # the Thumb-2 caller.
    "arm": (0xEE1D0F70, 0xE12FFF1E),
    # mr r3, r13 (the ELFv2 thread pointer) ; blr.  No TOC use, so the
    # global entry point needs no r2 set-up.
    "powerpc": (0x7DA36B78, 0x4E800020),
}

_reader: Callable[[], int | None] | None = None


class ThreadPointerUnsupported(RuntimeError):
    """No way to read the thread pointer is known for this architecture."""


def _code_reader(words: tuple[int, ...]) -> Callable[[], int | None]:
    code = struct.pack(("<" if sys.byteorder == "little" else ">") + "I" * len(words),
                       *words)
    fd = os.memfd_create("cpu-opv-read-tp", os.MFD_CLOEXEC)
    try:
        os.write(fd, code)
        addr = memory.libc_mmap(memory.PAGE_SIZE, memory.PROT_READ | mmap.PROT_EXEC,
                                memory.MAP_PRIVATE, fd)
        if addr is None or addr == memory.MAP_FAILED:
            err = ctypes.get_errno()
            raise ThreadPointerUnsupported(
                f"cannot map the thread-pointer reader executable: {os.strerror(err)}")
    finally:
        # The mapping keeps the pages; it lives as long as the process.
        os.close(fd)
    reader: Callable[[], int | None] = ctypes.CFUNCTYPE(ctypes.c_void_p)(addr)
    return reader


def thread_pointer() -> int:
    """The calling thread's thread pointer (where glibc's TLS block hangs)."""
    global _reader
    arch = syscalls.arch_name()
    if arch == "x86_64":
        # The thread pointer is the FS base; arch_prctl reads it.
        fs = ctypes.c_ulong(0)
        syscall("arch_prctl", ARCH_GET_FS, ctypes.addressof(fs))
        return fs.value
    words = _READ_TP.get(arch)
    if words is None or ctypes.sizeof(ctypes.c_void_p) * 8 != _bits(arch):
        raise ThreadPointerUnsupported(
            f"reading the thread pointer from Python is not implemented for a "
            f"{ctypes.sizeof(ctypes.c_void_p) * 8}-bit process on {arch}")
    if _reader is None:
        _reader = _code_reader(words)
    return int(_reader() or 0)


def _bits(arch: str) -> int:
    # The code above is for the architecture's native process width: an
    # i386 or 32-bit arm process on a 64-bit kernel needs other code.
    return 32 if arch == "arm" else 64
