"""cpu_opv(2) operands in huge pages: hugetlbfs and transparent huge pages.

A huge page is pinned by its head folio, and an operand can cross from one
huge page into the next; a transparent huge page can also be split (or
collapsed) by another thread while calls pin and write it.  Each test
skips, naming the kernel option, when the kernel has no such memory; on
the project's x86_64 test kernel (HUGETLBFS, TRANSPARENT_HUGEPAGE) all run.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator

import pytest

from harness.abi import cpu_opv as co
from harness.abi import sched
from harness.abi.libc import libc
from harness.abi.memory import GUARD, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, Region

try:
    co.probe()
except (co.CpuOpvDisabled, co.NotCpuOpvKernel) as e:
    pytest.skip(f"no cpu_opv here: {e}", allow_module_level=True)

ENDIAN = sys.byteorder
MAP_HUGETLB = 0x40000          # include/uapi/asm-generic/mman-common.h
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
HUGE = 2 << 20                 # the PMD size on x86_64 and arm64 (4K pages)
THP_SYSFS = "/sys/kernel/mm/transparent_hugepage/enabled"


def _madvise(addr: int, length: int, advice: int) -> int:
    f = libc().madvise
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return int(f(addr, length, advice))


def _vmstat(name: str) -> int:
    with open("/proc/vmstat") as f:
        for line in f:
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    return 0


def _u64(r: Region, addr: int) -> int:
    return int.from_bytes(r.read_at(addr, 8), ENDIAN)


@pytest.fixture
def hugetlb() -> Iterator[int]:
    """Reserve four more huge pages (two mapped, and room for a private
    mapping's copy-on-write reserve); yield the new pool size."""
    path = "/proc/sys/vm/nr_hugepages"
    if not os.path.exists(path):
        pytest.skip("no hugetlbfs (CONFIG_HUGETLBFS)")
    with open(path) as f:
        before = int(f.read())
    try:
        with open(path, "w") as f:
            f.write(str(before + 4))
    except OSError as e:
        pytest.skip(f"cannot reserve huge pages: {e}")
    try:
        yield before + 4
    finally:
        with open(path, "w") as f:
            f.write(str(before))


@pytest.mark.parametrize("shared", [False, True], ids=["private", "shared"])
def test_hugetlb_operands(hugetlb: int, shared: bool) -> None:
    """ADD inside a huge page, and MEMCPY and COMPARE across the boundary
    between two huge pages (an operand on two huge folios); nothing else in
    the mapping changes.  A shared hugetlb mapping is writable per the ABI
    (hugetlb memory has no writeback)."""
    flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS | MAP_HUGETLB
    try:
        r = Region(2 * HUGE, flags=flags, fill=None)
    except OSError as e:
        pytest.skip(f"mmap(MAP_HUGETLB) failed: {e}")
    try:
        # Guard bytes around the operands only: filling 4 MB from Python
        # under TCG is slow, and the pages are zero otherwise.
        cross = r.at(HUGE - 8)
        counter = r.at(4096)
        for addr in (cross - 64, counter - 64):
            r.write_at(addr, bytes([GUARD]) * 160)
        src = Region(4096)
        try:
            src.write(0, bytes(range(16)))
            cpu = sched.getcpu()[0]
            r.write_at(counter, (41).to_bytes(8, ENDIAN))
            assert co.cpu_opv([co.add(counter, 1, 8)], cpu).ok
            assert _u64(r, counter) == 42
            assert co.cpu_opv([co.memcpy(cross, src.at(0), 16)], cpu).ok
            assert r.read_at(cross, 16) == bytes(range(16))
            res = co.cpu_opv([co.compare_eq(cross, src.at(0), 16),
                              co.add(counter, 1, 8)], cpu)
            assert res.ok and _u64(r, counter) == 43
            assert r.read_at(cross - 64, 64) == bytes([GUARD]) * 64
            assert r.read_at(cross + 16, 80) == bytes([GUARD]) * 80
            assert r.read_at(counter - 64, 64) == bytes([GUARD]) * 64
            assert r.read_at(counter + 8, 88) == bytes([GUARD]) * 88
        finally:
            src.close()
    finally:
        r.close()


def _thp_region() -> tuple[Region, int]:
    """An anonymous mapping with two PMD-aligned huge pages at the returned
    address, faulted in as transparent huge pages, or skip."""
    if not os.path.exists(THP_SYSFS):
        pytest.skip("no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE)")
    with open(THP_SYSFS) as f:
        if "[never]" in f.read():
            try:
                with open(THP_SYSFS, "w") as w:
                    w.write("madvise")
            except OSError as e:
                pytest.skip(f"THP disabled and cannot be enabled: {e}")
    r = Region(3 * HUGE, fill=None)
    base = (r.addr + HUGE - 1) & ~(HUGE - 1)
    assert _madvise(base, 2 * HUGE, MADV_HUGEPAGE) == 0
    before = _vmstat("thp_fault_alloc") + _vmstat("thp_collapse_alloc")
    ctypes.memset(base, 0, 2 * HUGE)
    if _vmstat("thp_fault_alloc") + _vmstat("thp_collapse_alloc") - before < 2:
        # The fault path fell back to small pages (no free 2 MB block):
        # collapse them now, synchronously.
        _madvise(base, 2 * HUGE, MADV_COLLAPSE)
    if _vmstat("thp_fault_alloc") + _vmstat("thp_collapse_alloc") - before < 2:
        r.close()
        pytest.skip("the kernel gave no transparent huge page (memory fragmented?)")
    return r, base


def test_thp_operands() -> None:
    """The same across the boundary of two transparent huge pages."""
    r, base = _thp_region()
    try:
        cpu = sched.getcpu()[0]
        cross, counter = base + HUGE - 4, base + 8192
        src = bytes(range(100, 108))
        r.write_at(cross, src)
        assert co.cpu_opv([co.memcpy(counter, cross, 8)], cpu).ok
        assert r.read_at(counter, 8) == src
        assert co.cpu_opv([co.add(cross, 1, 8)], cpu).ok
        assert _u64(r, cross) == int.from_bytes(src, ENDIAN) + 1
        assert r.read_at(cross - 8, 8) == bytes(8) and r.read_at(cross + 8, 8) == bytes(8)
    finally:
        r.close()


def test_thp_split_and_collapse_during_calls() -> None:
    """Another thread splits the huge page mapping (mprotect of one small
    page inside it) and collapses it again (MADV_COLLAPSE) in a loop while
    this thread adds to a counter in the same huge page and copies across
    the boundary to the next: no add is lost, no byte goes astray, and the
    race really happened (the split counter moved)."""
    r, base = _thp_region()
    counter, cross, other = base + 8192, base + HUGE - 4, base + 3 * 4096
    stop = threading.Event()
    splits = [0]

    def splitter() -> None:
        f = libc().mprotect
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        while not stop.is_set():
            f(other, 4096, 1)       # PROT_READ: splits the PMD mapping
            f(other, 4096, 3)
            _madvise(base, HUGE, MADV_COLLAPSE)
            splits[0] += 1

    split0 = _vmstat("thp_split_pmd")
    th = threading.Thread(target=splitter)
    th.start()
    calls = 0
    try:
        cpu = sched.getcpu()[0]
        for calls in range(1, 1001):
            res = co.cpu_opv([co.add(counter, 1, 8), co.memcpy(cross, counter, 8)], cpu)
            assert res.ok, f"call {calls}: {res}"
            if splits[0] >= 50 and calls >= 200:
                break
    finally:
        stop.set()
        th.join()
    try:
        assert _u64(r, counter) == calls, f"{calls} adds, counter {_u64(r, counter)}"
        assert _u64(r, cross) == calls
        assert r.read_at(other, 8) == bytes(8)
        split = _vmstat("thp_split_pmd") - split0
        assert split > 0, "the huge page was never split during the calls: no race tested"
        print(f"{calls} calls, {splits[0]} split+collapse rounds, "
              f"{split} PMD splits")
    finally:
        r.close()
