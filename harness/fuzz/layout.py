"""The memory the fuzzer aims at: areas of pages whose kind it knows.

An area is a run of pages, each of one Kind; the model predicts every
call from these kinds alone (model.py), so the kinds say exactly what the
ABI promises for each page.  Areas the fuzzer keeps a shadow copy of
(`shadowed`) are windows into real mappings: anonymous memory with
read-only, PROT_NONE and unmapped pages inside it, shmem (memfd), a ramfs
file mapped shared (write operands refused: EFAULT) and private (reads of
not-yet-copied page cache pages), and the boundary between two huge pages
of hugetlbfs and of transparent huge pages.  The other areas always fault:
the NULL page, kernel and non-canonical addresses, the top of the address
space (where addr + len wraps), and the [vvar] PFN mapping.

`plan()` and `fill()` are pure (host unit tests use them with made-up
addresses); `Mapper` makes the mappings in the guest.
"""

from __future__ import annotations

import bisect
import ctypes
import enum
import os
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from harness.abi.libc import SyscallError, libc

PAGE = 4096
HUGE = 2 << 20                 # PMD size with 4 KiB pages (x86_64, arm64)
WORD_BITS = 64 if sys.maxsize > 2**32 else 32
ADDR_END = 1 << WORD_BITS       # addresses at or above this wrap


class Kind(enum.Enum):
    """What one page is, as far as the ABI is concerned."""

    RW = "rw"            # readable and writable
    RO = "ro"            # readable; a write faults (EAGAIN with expect_fault)
    NONE = "none"        # PROT_NONE: any access faults
    HOLE = "hole"        # nothing mapped: any access faults
    WREF = "wref"        # readable; mapped writable, but a write is refused
    REFUSED = "refused"  # never accessible: kernel, non-canonical, PFN-mapped

    @property
    def readable(self) -> bool:
        return self in READABLE

    @property
    def writable(self) -> bool:
        return self is Kind.RW


READABLE = frozenset({Kind.RW, Kind.RO, Kind.WREF})


@dataclass(frozen=True)
class Area:
    """Pages at `addr`, one Kind each; `memory` names what backs them."""

    name: str
    memory: str
    kinds: tuple[Kind, ...]
    addr: int = 0
    shadowed: bool = True
    # Python may read (and write) these pages: compared once per batch.
    page: int = PAGE
    private: bool = False     # a fork()ed child gets a copy-on-write copy

    @property
    def size(self) -> int:
        return len(self.kinds) * self.page

    @property
    def end(self) -> int:
        return self.addr + self.size

    def kind_at(self, addr: int) -> Kind:
        return self.kinds[(addr - self.addr) // self.page]

    def runs(self, ok: Iterable[Kind]) -> list[tuple[int, int]]:
        """Maximal [start, end) offsets of pages whose kind is in `ok`."""
        good = set(ok)
        out: list[tuple[int, int]] = []
        for i, k in enumerate(self.kinds):
            if k not in good:
                continue
            if out and out[-1][1] == i * self.page:
                out[-1] = (out[-1][0], (i + 1) * self.page)
            else:
                out.append((i * self.page, (i + 1) * self.page))
        return out


@dataclass(frozen=True)
class Layout:
    """Every area, sorted by address, and the page the vector is written to
    (followed by a PROT_NONE page, for vectors that run into it)."""

    areas: tuple[Area, ...]
    vector: int
    notes: tuple[str, ...] = ()
    _starts: tuple[int, ...] = field(default=(), compare=False, repr=False)
    # Page number -> its kind, and -> its area: the model asks per page.
    pages: dict[int, Kind] = field(default_factory=dict, compare=False, repr=False)
    owners: dict[int, Area] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        areas = tuple(sorted(self.areas, key=lambda a: a.addr))
        object.__setattr__(self, "areas", areas)
        object.__setattr__(self, "_starts", tuple(a.addr for a in areas))
        for a in areas:
            for i, k in enumerate(a.kinds):
                self.pages[a.addr // PAGE + i] = k
                self.owners[a.addr // PAGE + i] = a

    @property
    def windows(self) -> tuple[Area, ...]:
        return tuple(a for a in self.areas if a.shadowed)

    def area_at(self, addr: int) -> Area | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.areas[i].end:
            return self.areas[i]
        return None

    def kind_at(self, addr: int) -> Kind | None:
        """The kind of the page at addr; None where the fuzzer knows nothing."""
        if addr >= ADDR_END:
            return Kind.REFUSED
        return self.pages.get(addr // PAGE)

    def area(self, name: str) -> Area | None:
        return next((a for a in self.areas if a.name == name), None)

    def describe(self) -> str:
        parts = [f"{a.name}({a.memory}, {len(a.kinds)}p)" for a in self.areas if a.shadowed]
        return " ".join(parts) + "".join(f"; {n}" for n in self.notes)


R, RO, N, H, W = Kind.RW, Kind.RO, Kind.NONE, Kind.HOLE, Kind.WREF

# The windows, in the order they are mapped.  A window of its own
# reservation has a PROT_NONE guard page at each end, so an operand that
# runs off it faults instead of touching memory the fuzzer knows nothing
# of; the huge page windows are cut out of bigger mappings, and operands
# are only ever placed inside them.
WINDOWS: tuple[Area, ...] = (
    Area("anon", "anonymous private",
         (N, R, R, RO, R, N, R, R, R, RO, RO, R, H, R, R, N, R, R, N), private=True),
    Area("memfd", "memfd shared (shmem)", (N, R, R, N)),
    Area("ramfs-shared", "ramfs file shared: writes refused", (N, W, W, N)),
    Area("ramfs-private", "ramfs file private: page cache until written", (N, R, R, N),
         private=True),
    Area("hugetlb", "hugetlb shared, across two huge pages", (R, R, R, R)),
    Area("thp", "transparent huge pages, across two", (R, R, R, R), private=True),
)

_NULL = Area("null", "unmapped NULL page", (N,), 0, shadowed=False)
if WORD_BITS == 64:
    FAULT_ZONES: tuple[Area, ...] = (
        _NULL,
        Area("kernel", "kernel text", (Kind.REFUSED,) * 2, 0xFFFF_FFFF_8100_0000, False),
        Area("noncanonical", "non-canonical", (Kind.REFUSED,) * 2, 1 << 63, False),
        Area("top", "top of the address space", (Kind.REFUSED,) * 2, ADDR_END - 2 * PAGE,
             False),
    )
else:
    FAULT_ZONES = (
        _NULL,
        Area("kernel", "kernel", (Kind.REFUSED,) * 2, 0xC000_0000, False),
        Area("top", "top of the address space", (Kind.REFUSED,) * 2, ADDR_END - 2 * PAGE,
             False),
    )


def fill(rng: random.Random, area: Area) -> bytes:
    """The initial bytes of a window: per page zeros, one repeated byte, a
    short repeated pattern or random bytes, so that compares of both
    outcomes happen.  Pages that cannot be written before the run starts
    (PROT_NONE, unmapped) are zero."""
    out = bytearray()
    for k in area.kinds:
        style = rng.randrange(4)
        if k in (Kind.NONE, Kind.HOLE) or style == 0:
            out += bytes(area.page)
        elif style == 1:
            out += bytes([rng.randrange(256)]) * area.page
        elif style == 2:
            pat = rng.randbytes(rng.choice((2, 4, 8, 16)))
            out += pat * (area.page // len(pat))
        else:
            out += rng.randbytes(area.page)
    return bytes(out)


def plan(base: int = 0x10_0000_0000, gap: int = 16 * PAGE, vector: bool = True) -> Layout:
    """Every window at a made-up address (host tests, and the shape of the
    real layout)."""
    areas: list[Area] = []
    addr = base
    for w in WINDOWS:
        areas.append(replace(w, addr=addr))
        addr += w.size + gap
    vec = addr
    areas.append(Area("vector", "the vector page", (R, N), vec, shadowed=False))
    return Layout((*areas, *FAULT_ZONES), vec if vector else 0)


# ---- the real mappings (guest) ---------------------------------------------

PROT_NONE, PROT_READ, PROT_RW = 0, 1, 3
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_NORESERVE, MAP_HUGETLB = 0x4000, 0x40000
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25


def _fn(name: str, restype: type, *argtypes: type) -> Any:
    f = libc()[name]          # a fresh function object: its own argtypes
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_vp, _sz, _int, _long = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_long


class Mapper:
    """Makes the mappings of one layout and unmaps them at close()."""

    def __init__(self) -> None:
        self._mmap = _fn("mmap", _vp, _vp, _sz, _int, _int, _int, _long)
        self._munmap = _fn("munmap", _int, _vp, _sz)
        self._mprotect = _fn("mprotect", _int, _vp, _sz, _int)
        self._madvise = _fn("madvise", _int, _vp, _sz, _int)
        self.mapped: list[tuple[int, int]] = []
        self.fds: list[int] = []

    def mmap(self, addr: int, size: int, prot: int, flags: int, fd: int = -1) -> int:
        ctypes.set_errno(0)
        got = self._mmap(addr or None, size, prot, flags, fd, 0)
        if got is None or got == ctypes.c_void_p(-1).value:
            raise SyscallError(ctypes.get_errno(), "mmap")
        if not flags & MAP_FIXED:
            self.mapped.append((int(got), size))
        return int(got)

    def mprotect(self, addr: int, size: int, prot: int) -> None:
        if self._mprotect(addr, size, prot):
            raise SyscallError(ctypes.get_errno(), "mprotect")

    def munmap(self, addr: int, size: int) -> None:
        if self._munmap(addr, size):
            raise SyscallError(ctypes.get_errno(), "munmap")

    def madvise(self, addr: int, size: int, advice: int) -> int:
        return int(self._madvise(addr, size, advice))

    def reserve(self, pages: int) -> int:
        return self.mmap(0, pages * PAGE, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

    def close(self) -> None:
        for addr, size in reversed(self.mapped):
            self._munmap(addr, size)
        for fd in self.fds:
            os.close(fd)
        self.mapped.clear()
        self.fds.clear()


def write(addr: int, data: bytes) -> None:
    ctypes.memmove(addr, data, len(data))


def read(addr: int, n: int) -> bytes:
    return ctypes.string_at(addr, n)


@dataclass
class Built:
    """A layout whose windows are mapped, with their initial contents."""

    layout: Layout
    contents: dict[str, bytes]
    mapper: Mapper


def _guarded(m: Mapper, w: Area, prot: int, flags: int, fd: int = -1) -> int:
    """Reserve the window with PROT_NONE and map its inner pages over it;
    return the address of the window (its first guard page)."""
    base = m.reserve(len(w.kinds))
    m.mmap(base + PAGE, w.size - 2 * PAGE, prot, flags | MAP_FIXED, fd)
    return base


def _anon(m: Mapper, w: Area, data: bytes) -> int:
    base = _guarded(m, w, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
    write(base + PAGE, data[PAGE:-PAGE])
    for i, k in enumerate(w.kinds[1:-1], 1):
        addr = base + i * PAGE
        if k is Kind.RO:
            m.mprotect(addr, PAGE, PROT_READ)
        elif k is Kind.NONE:
            m.mprotect(addr, PAGE, PROT_NONE)
        elif k is Kind.HOLE:
            m.munmap(addr, PAGE)
    return base


def _memfd(m: Mapper, w: Area, data: bytes) -> int:
    fd = os.memfd_create("cpu_opv-fuzz")
    m.fds.append(fd)
    os.ftruncate(fd, w.size - 2 * PAGE)
    base = _guarded(m, w, PROT_RW, MAP_SHARED, fd)
    write(base + PAGE, data[PAGE:-PAGE])
    return base


def _ramfs(m: Mapper, w: Area, data: bytes, path: str, shared: bool) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    m.fds.append(fd)
    os.unlink(path)
    # Written through the file: a private mapping then reads page cache
    # pages until a write copies them.
    os.write(fd, data[PAGE:-PAGE])
    return _guarded(m, w, PROT_RW, MAP_SHARED if shared else MAP_PRIVATE, fd)


def _hugetlb(m: Mapper, w: Area, data: bytes) -> int:
    big = m.mmap(0, 2 * HUGE, PROT_RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB)
    base = big + HUGE - len(w.kinds) // 2 * PAGE
    write(base, data)
    return base


def _thp(m: Mapper, w: Area, data: bytes) -> int:
    big = m.mmap(0, 3 * HUGE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
    aligned = (big + HUGE - 1) & ~(HUGE - 1)
    m.madvise(aligned, 2 * HUGE, MADV_HUGEPAGE)
    ctypes.memset(aligned, 0, 2 * HUGE)
    base = aligned + HUGE - len(w.kinds) // 2 * PAGE
    write(base, data)
    return base


def _vvar() -> Area | None:
    """[vvar] when smaps says it is PFN-mapped (VmFlags pf): an operand
    there must be refused (EFAULT)."""
    try:
        with open("/proc/self/smaps") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        if line.endswith("[vvar]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            flags = next((x for x in lines[i + 1:i + 40] if x.startswith("VmFlags:")), "")
            if " pf" in flags:
                return Area("vvar", "[vvar], PFN-mapped", (Kind.REFUSED,) * ((hi - lo) // PAGE),
                            lo, shadowed=False)
    return None


def build(rng: random.Random, ramfs: str | None, tag: str) -> Built:
    """Map every window that this machine allows, filled from `rng`.

    `ramfs` is a directory on a ramfs mount (None: no ramfs windows), `tag`
    makes the file names of this process unique.  A window that cannot be
    mapped (no huge pages left) is left out and named in the notes; the
    fill is drawn for every window all the same, so that the contents of
    the others do not depend on what this machine offers.
    """
    m = Mapper()
    areas: list[Area] = []
    contents: dict[str, bytes] = {}
    notes: list[str] = []
    makers = {
        "anon": lambda w, d: _anon(m, w, d),
        "memfd": lambda w, d: _memfd(m, w, d),
        "ramfs-shared": lambda w, d: _ramfs(m, w, d, f"{ramfs}/s-{tag}", True),
        "ramfs-private": lambda w, d: _ramfs(m, w, d, f"{ramfs}/p-{tag}", False),
        "hugetlb": lambda w, d: _hugetlb(m, w, d),
        "thp": lambda w, d: _thp(m, w, d),
    }
    for w in WINDOWS:
        data = fill(rng, w)
        if w.name.startswith("ramfs") and ramfs is None:
            notes.append(f"{w.name}: no ramfs mount")
            continue
        try:
            addr = makers[w.name](w, data)
        except OSError as e:
            notes.append(f"{w.name}: {e}")
            continue
        areas.append(replace(w, addr=addr))
        contents[w.name] = data
    vec = m.reserve(2)
    m.mprotect(vec, PAGE, PROT_RW)
    areas.append(Area("vector", "the vector page", (Kind.RW, Kind.NONE), vec, shadowed=False))
    vvar = _vvar()
    if vvar is not None:
        areas.append(vvar)
    else:
        notes.append("vvar: not PFN-mapped here")
    return Built(Layout((*areas, *FAULT_ZONES), vec, tuple(notes)), contents, m)
