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
import time
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


def _anon_huge_kb(addr: int) -> int:
    """AnonHugePages of the mapping that holds addr, from /proc/self/smaps
    (page state, unlike the thp_* events of /proc/vmstat, which need
    CONFIG_VM_EVENT_COUNTERS)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "AnonHugePages:":
                return int(line.split()[1])
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
    ctypes.memset(base, 0, 2 * HUGE)
    if _anon_huge_kb(base) < 2 * HUGE // 1024:
        # The fault path fell back to small pages (no free 2 MB block):
        # collapse them now, synchronously.
        _madvise(base, 2 * HUGE, MADV_COLLAPSE)
    got = _anon_huge_kb(base)
    if got < 2 * HUGE // 1024:
        r.close()
        pytest.skip(f"the kernel gave {got} kB of transparent huge pages, not "
                    f"{2 * HUGE // 1024} (memory fragmented?)")
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
    race really happened (splits and collapses went on during the calls:
    a PMD cannot map across the VMA boundaries mprotect() makes, so each
    round splits it)."""
    r, base = _thp_region()
    counter, cross, other = base + 8192, base + HUGE - 4, base + 3 * 4096
    stop = threading.Event()
    splits, collapses = [0], [0]

    def splitter() -> None:
        f = libc().mprotect
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        while not stop.is_set():
            if f(other, 4096, 1) == 0:      # PROT_READ: splits the PMD mapping
                splits[0] += 1
            f(other, 4096, 3)
            collapses[0] += _madvise(base, HUGE, MADV_COLLAPSE) == 0

    th = threading.Thread(target=splitter)
    th.start()
    calls = 0
    try:
        cpu = sched.getcpu()[0]
        # At least 200 calls and 50 split rounds, 60 s at most.
        deadline = time.monotonic() + 60
        while calls < 200 or (splits[0] < 50 and time.monotonic() < deadline):
            calls += 1
            res = co.cpu_opv([co.add(counter, 1, 8), co.memcpy(cross, counter, 8)], cpu)
            assert res.ok, f"call {calls}: {res}"
    finally:
        stop.set()
        th.join()
    try:
        assert _u64(r, counter) == calls, f"{calls} adds, counter {_u64(r, counter)}"
        assert _u64(r, cross) == calls
        assert r.read_at(other, 8) == bytes(8)
        assert splits[0] >= 10 and collapses[0] > 0, (
            f"{splits[0]} splits and {collapses[0]} collapses during {calls} calls: "
            "no race tested")
        print(f"{calls} calls, {splits[0]} splits, {collapses[0]} collapses")
    finally:
        r.close()
