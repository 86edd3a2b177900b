"""rseq(2) bindings: struct rseq / rseq_cs as in 6.12's include/uapi/linux/rseq.h.

Also reads the area glibc (2.35+) registers for every thread, found at
`__rseq_offset` bytes from the thread pointer (harness/abi/tp.py reads
that register; where it cannot, glibc_area() raises RseqUnsupported
rather than guessing).
"""

from __future__ import annotations

import ctypes

from harness.abi import syscalls, tp
from harness.abi.libc import SyscallError, libc, syscall
from harness.abi.memory import Region

RSEQ_FLAG_UNREGISTER = 1 << 0
RSEQ_CPU_ID_UNINITIALIZED = -1
# The registration length of the original struct rseq (and its alignment,
# __attribute__((aligned(4 * sizeof(__u64)))) in the header).
RSEQ_ORIG_SIZE = 32
RSEQ_ALIGN = 32

# The signature that must precede every abort handler; the kernel only
# compares it, but unregistration must repeat it.  Values of the rseq
# selftests (little-endian variants), chosen to be trapping instructions.
RSEQ_SIG: dict[str, int] = {
    "x86_64": 0x53053053,
    "i386": 0x53053053,
    "arm64": 0xD428BC00,   # brk #0x45e0
    "arm": 0xE7F5DEF3,     # udf #24035
    "powerpc": 0x0FE5000B,  # twui r5,11
}


class Rseq(ctypes.Structure):
    """struct rseq; the C struct is 32-byte aligned, so 32 bytes on every
    ABI although the fields end at 28 (`end`, a flexible array).

    ctypes honours `_align_` from Python 3.13 on; before that (the guests'
    Debian 12 has 3.11) it is an ignored attribute, so an instance ctypes
    allocates may be only 8-byte aligned: RseqArea allocates the storage
    aligned instead, and only it is handed to the kernel.
    """

    _fields_ = [("cpu_id_start", ctypes.c_uint32), ("cpu_id", ctypes.c_uint32),
                ("rseq_cs", ctypes.c_uint64), ("flags", ctypes.c_uint32),
                ("node_id", ctypes.c_uint32), ("mm_cid", ctypes.c_uint32)]
    _align_ = RSEQ_ALIGN


class RseqCs(ctypes.Structure):
    """struct rseq_cs, also 32-byte aligned."""

    _fields_ = [("version", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("start_ip", ctypes.c_uint64),
                ("post_commit_offset", ctypes.c_uint64),
                ("abort_ip", ctypes.c_uint64)]
    _align_ = RSEQ_ALIGN   # as for Rseq: honoured by ctypes from 3.13 on


class RseqError(SyscallError):
    pass


class RseqUnsupported(RuntimeError):
    pass


def sig() -> int:
    return RSEQ_SIG[syscalls.arch_name()]


def rseq(addr: int, length: int, flags: int, signature: int) -> None:
    """The raw syscall; RseqError (errno, name) on failure."""
    syscall("rseq", addr, length, flags, signature, error=RseqError)


def register(addr: int, length: int = RSEQ_ORIG_SIZE, signature: int | None = None) -> None:
    rseq(addr, length, 0, sig() if signature is None else signature)


def unregister(addr: int, length: int = RSEQ_ORIG_SIZE, signature: int | None = None) -> None:
    rseq(addr, length, RSEQ_FLAG_UNREGISTER, sig() if signature is None else signature)


class RseqArea:
    """A struct rseq in its own page, so its alignment is ours to choose:
    at offset 0 (the default) it is page-aligned, which satisfies
    RSEQ_ALIGN on every Python; the tests pass other offsets to provoke
    the kernel's EINVAL."""

    def __init__(self, offset: int = 0) -> None:
        self.region = Region.pages(1, fill=0)
        self.addr = self.region.at(offset)
        self.area = Rseq.from_address(self.addr)

    def register(self, length: int = RSEQ_ORIG_SIZE) -> None:
        register(self.addr, length)

    def unregister(self, length: int = RSEQ_ORIG_SIZE) -> None:
        unregister(self.addr, length)

    def close(self) -> None:
        self.region.close()


def thread_pointer() -> int:
    """The calling thread's thread pointer (where glibc's TLS block hangs)."""
    try:
        return tp.thread_pointer()
    except tp.ThreadPointerUnsupported as e:
        raise RseqUnsupported(str(e)) from e


def glibc_registration() -> tuple[int, int]:
    """(__rseq_offset, __rseq_size) exported by glibc's ld.so; size 0 means
    glibc did not register (tunable glibc.pthread.rseq=0 or a failure)."""
    lib = libc()
    try:
        off = ctypes.c_ssize_t.in_dll(lib, "__rseq_offset").value
        size = ctypes.c_uint.in_dll(lib, "__rseq_size").value
    except ValueError as e:
        raise RseqUnsupported("this libc exports no __rseq_offset "
                              "(glibc before 2.35?)") from e
    return off, size


def glibc_area() -> Rseq:
    """The calling thread's glibc-registered struct rseq."""
    off, size = glibc_registration()
    if size == 0:
        raise RseqUnsupported("glibc did not register rseq (__rseq_size == 0)")
    return Rseq.from_address(thread_pointer() + off)


def cpu_id(area: Rseq) -> int:
    """area.cpu_id as a signed value (the negative states are meaningful)."""
    return ctypes.c_int32(area.cpu_id).value


