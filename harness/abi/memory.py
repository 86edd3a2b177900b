"""Raw memory for operands: mmap'd regions at chosen offsets, mprotect.

Operands are handed to the kernel as plain addresses, so the regions are
mapped with libc's mmap() (not Python's mmap module, which refuses to close
while a ctypes view is alive and cannot mprotect).  Reading a PROT_NONE
region from Python would crash the interpreter; `Region.read` refuses to.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from types import TracebackType
from typing import Self

from harness.abi.libc import SyscallError, libc

PAGE_SIZE = mmap.PAGESIZE
PROT_NONE = mmap.PROT_NONE if hasattr(mmap, "PROT_NONE") else 0
PROT_READ = mmap.PROT_READ
PROT_WRITE = mmap.PROT_WRITE
PROT_RW = PROT_READ | PROT_WRITE
MAP_SHARED = mmap.MAP_SHARED
MAP_PRIVATE = mmap.MAP_PRIVATE
MAP_ANONYMOUS = mmap.MAP_ANONYMOUS
MAP_FAILED = ctypes.c_void_p(-1).value

GUARD = 0xA5  # fill byte: a changed guard byte shows a stray write


def libc_mmap(size: int, prot: int, flags: int, fd: int) -> int | None:
    """libc's mmap(NULL, size, prot, flags, fd, 0); None or MAP_FAILED on error."""
    f = libc().mmap
    f.restype = ctypes.c_void_p
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                  ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr: int | None = f(None, size, prot, flags, fd, 0)
    return addr


def _check(ret: int, call: str) -> None:
    if ret != 0:
        raise SyscallError(ctypes.get_errno(), call)


def crossing_offset(length: int, page: int = 1) -> int:
    """Where a `length`-byte operand starts so that it straddles the start
    of `page`: half of it on each side (a byte cannot straddle)."""
    return page * PAGE_SIZE - max(1, length // 2)


class Region:
    """A page-aligned mapping; addresses are plain ints for struct cpu_op."""

    def __init__(self, size: int, *, prot: int = PROT_RW,
                 flags: int = MAP_PRIVATE | MAP_ANONYMOUS, fd: int = -1,
                 fill: int | None = GUARD) -> None:
        self.size = -(-size // PAGE_SIZE) * PAGE_SIZE
        ctypes.set_errno(0)
        addr = libc_mmap(self.size, prot, flags, fd)
        if addr is None or addr == MAP_FAILED:
            raise SyscallError(ctypes.get_errno(), "mmap")
        self.addr: int = addr
        self.prot = prot
        if fill is not None and prot & PROT_WRITE:
            ctypes.memset(self.addr, fill, self.size)

    @classmethod
    def pages(cls, n: int, **kw: int) -> Region:
        return cls(n * PAGE_SIZE, **kw)

    def at(self, offset: int) -> int:
        """Address `offset` bytes into the region (bounds-checked)."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} outside region of {self.size}")
        return self.addr + offset

    def _span(self, offset: int, n: int) -> None:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise ValueError(f"[{offset}, {offset + n}) outside region of {self.size}")

    def read(self, offset: int = 0, n: int | None = None) -> bytes:
        n = self.size - offset if n is None else n
        self._span(offset, n)
        if not self.prot & PROT_READ:
            raise PermissionError("region is not readable (would SIGSEGV)")
        return ctypes.string_at(self.addr + offset, n)

    def write(self, offset: int, data: bytes) -> None:
        self._span(offset, len(data))
        if not self.prot & PROT_WRITE:
            raise PermissionError("region is not writable (would SIGSEGV)")
        ctypes.memmove(self.addr + offset, data, len(data))

    def read_at(self, addr: int, n: int) -> bytes:
        return self.read(addr - self.addr, n)

    def write_at(self, addr: int, data: bytes) -> None:
        self.write(addr - self.addr, data)

    def mprotect(self, prot: int, offset: int = 0, n: int | None = None) -> None:
        """Change protection of whole pages (the whole region by default)."""
        n = self.size - offset if n is None else n
        if offset % PAGE_SIZE:
            raise ValueError("mprotect offset must be page-aligned")
        f = libc().mprotect
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _check(f(self.addr + offset, n, prot), "mprotect")
        if offset == 0 and n >= self.size:
            self.prot = prot

    def guards_intact(self, *operands: tuple[int, int]) -> list[int]:
        """Offsets of fill bytes that changed outside the (addr, len) operands."""
        data = self.read()
        inside = bytearray(self.size)
        for addr, length in operands:
            off = addr - self.addr
            inside[max(0, off):max(0, off + length)] = b"\1" * (
                max(0, off + length) - max(0, off))
        return [i for i, b in enumerate(data) if b != GUARD and not inside[i]]

    def close(self) -> None:
        if self.addr:
            f = libc().munmap
            f.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            _check(f(self.addr, self.size), "munmap")
            self.addr = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def file_region(path: str, size: int, *, prot: int = PROT_READ,
                flags: int = MAP_SHARED, fill: int = GUARD) -> Region:
    """Map a file of `size` bytes (created with `fill` bytes) at `path`."""
    with open(path, "wb") as f:
        f.write(bytes([fill]) * size)
    fd = os.open(path, os.O_RDONLY if not prot & PROT_WRITE else os.O_RDWR)
    try:
        return Region(size, prot=prot, flags=flags, fd=fd, fill=None)
    finally:
        os.close(fd)
