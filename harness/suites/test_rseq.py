"""rseq(2) as in any 6.12+ kernel: registration rules and the fields it keeps.

Fresh registrations need a thread glibc has not registered already, so they
run in a child Python started with GLIBC_TUNABLES=glibc.pthread.rseq=0
(`python -m harness.suites.test_rseq`), each scenario in a new thread of that
child (registration is per thread, so threads isolate the scenarios).  The
child prints one JSON object; the tests below check its rows.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.abi import rseq, sched
from harness.abi.libc import libc

CPUS = sorted(os.sched_getaffinity(0))
REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 300  # TCG guests are slow: python start-up over 9p


# ---- child side -------------------------------------------------------------

@dataclass
class Outcome:
    """One syscall's answer as the child saw it."""

    ret: int = 0
    errno: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _attempt(fn: Callable[[], None]) -> Outcome:
    try:
        fn()
    except rseq.RseqError as e:
        return Outcome(-1, e.name)
    return Outcome()


def _with_area(offset: int, body: Callable[[rseq.RseqArea], Outcome],
               *, registered: bool) -> Outcome:
    area = rseq.RseqArea(offset)
    if registered:
        area.register()
    try:
        return body(area)
    finally:
        if registered:
            area.unregister()
        # Unmapping a still-registered area would make the kernel fault on
        # the next return to user space: only close after unregistering.
        area.close()


def _bad_reg(offset: int, length: int, flags: int = 0) -> Callable[[], Outcome]:
    def body(a: rseq.RseqArea) -> Outcome:
        out = _attempt(lambda: rseq.rseq(a.addr, length, flags, rseq.sig()))
        if out.ret == 0:
            # Accepted against expectation: unregister before the unmap, or
            # the kernel kills the child on its next return to user space.
            rseq.rseq(a.addr, length, rseq.RSEQ_FLAG_UNREGISTER, rseq.sig())
        return out
    return lambda: _with_area(offset, body, registered=False)


def _on_registered(action: Callable[[rseq.RseqArea, int], None]) -> Callable[[], Outcome]:
    """Register an area, then try `action(area, other_address)`."""
    def run() -> Outcome:
        other = rseq.RseqArea()
        try:
            return _with_area(
                0, lambda a: _attempt(lambda: action(a, other.addr)), registered=True)
        finally:
            other.close()
    return run


def _register_unregister() -> Outcome:
    area = rseq.RseqArea()
    try:
        out = _attempt(area.register)
        if out.ret == 0:
            out = _attempt(area.unregister)
        return out
    finally:
        area.close()


def _raw_addr(addr: int, flags: int = 0) -> Callable[[], Outcome]:
    return lambda: _attempt(lambda: rseq.rseq(addr, rseq.RSEQ_ORIG_SIZE, flags, rseq.sig()))


# name -> (scenario run in a fresh thread of the child, expected errno or "")
ERRNO_CASES: dict[str, tuple[Callable[[], Outcome], str]] = {
    "register_then_unregister": (_register_unregister, ""),
    "double_register_same": (_on_registered(lambda a, _: a.register()), "EBUSY"),
    "register_other_address": (_on_registered(lambda _, o: rseq.register(o)), "EINVAL"),
    "register_same_other_sig": (
        _on_registered(lambda a, _: rseq.register(a.addr, signature=rseq.sig() ^ 1)),
        "EPERM"),
    "bad_length_16": (_bad_reg(0, 16), "EINVAL"),
    "bad_length_31": (_bad_reg(0, 31), "EINVAL"),
    "bad_length_0": (_bad_reg(0, 0), "EINVAL"),
    "bad_flags": (_bad_reg(0, rseq.RSEQ_ORIG_SIZE, 1 << 30), "EINVAL"),
    "bad_alignment_8": (_bad_reg(8, rseq.RSEQ_ORIG_SIZE), "EINVAL"),
    "bad_alignment_4": (_bad_reg(4, rseq.RSEQ_ORIG_SIZE), "EINVAL"),
    "bad_alignment_16": (_bad_reg(16, rseq.RSEQ_ORIG_SIZE), "EINVAL"),
    "kernel_address": (_raw_addr(-rseq.RSEQ_ALIGN), "EFAULT"),
    "null_address": (_raw_addr(0), "EFAULT"),
    "unregister_wrong_sig": (
        _on_registered(lambda a, _: rseq.unregister(a.addr, signature=rseq.sig() ^ 1)),
        "EPERM"),
    "unregister_wrong_address": (_on_registered(lambda _, o: rseq.unregister(o)), "EINVAL"),
    "unregister_wrong_length": (
        _on_registered(lambda a, _: rseq.unregister(a.addr, length=64)), "EINVAL"),
    "unregister_extra_flag": (
        _on_registered(lambda a, _: rseq.rseq(
            a.addr, rseq.RSEQ_ORIG_SIZE, rseq.RSEQ_FLAG_UNREGISTER | 2, rseq.sig())),
        "EINVAL"),
    "unregister_unregistered": (_raw_addr(0, rseq.RSEQ_FLAG_UNREGISTER), "EINVAL"),
}


def _fields(area: rseq.Rseq) -> dict[str, int]:
    return {"cpu_id_start": area.cpu_id_start, "cpu_id": rseq.cpu_id(area),
            "node_id": area.node_id, "mm_cid": area.mm_cid}


def _pinned_fields() -> Outcome:
    """Register, then pin to each allowed CPU and read the area's fields."""
    def body(a: rseq.RseqArea) -> Outcome:
        per_cpu: dict[str, Any] = {}
        for cpu in CPUS:
            with sched.pinned(cpu):
                fields = _fields(a.area)          # read before any other syscall
                cpu_now, node = sched.getcpu()
            per_cpu[str(cpu)] = {**fields, "getcpu": cpu_now, "getnode": node}
        return Outcome(extra=per_cpu)
    return _with_area(0, body, registered=True)


def _after_unregister() -> Outcome:
    area = rseq.RseqArea()
    try:
        area.register()
        before = _fields(area.area)
        area.unregister()
        return Outcome(extra={"before": before, "after": _fields(area.area)})
    finally:
        area.close()


STATE_CASES: dict[str, Callable[[], Outcome]] = {
    "pinned_fields": _pinned_fields,
    "after_unregister": _after_unregister,
}


def _in_new_thread(fn: Callable[[], Outcome]) -> Outcome:
    box: list[Outcome] = []

    def run() -> None:
        try:
            box.append(fn())
        except Exception as e:
            box.append(Outcome(-2, f"{type(e).__name__}: {e}"))
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return box[0]


def child_main() -> None:
    out: dict[str, Any] = {"glibc_rseq_size": rseq.glibc_registration()[1]}
    for name, (fn, _) in ERRNO_CASES.items():
        out[name] = asdict(_in_new_thread(fn))
    for name, sfn in STATE_CASES.items():
        out[name] = asdict(_in_new_thread(sfn))
    print(json.dumps(out))


# ---- host (pytest) side -------------------------------------------------------

@pytest.fixture(scope="module")
def child() -> dict[str, Any]:
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.pthread.rseq=0",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.suites.test_rseq"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    assert proc.returncode == 0, f"child exit {proc.returncode}:\n{proc.stderr}"
    results: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def test_child_has_no_glibc_registration(child: dict[str, Any]) -> None:
    # Otherwise every fresh registration below would fail EINVAL for the
    # wrong reason (a registration already exists).
    assert child["glibc_rseq_size"] == 0, "GLIBC_TUNABLES=glibc.pthread.rseq=0 ignored"


@pytest.mark.parametrize("case", list(ERRNO_CASES))
def test_registration_errno(child: dict[str, Any], case: str) -> None:
    got = child[case]
    want = ERRNO_CASES[case][1]
    if want:
        assert (got["ret"], got["errno"]) == (-1, want), \
            f"{case}: returned {got['ret']} {got['errno'] or 'no error'}, expected -1 {want}"
    else:
        assert got["ret"] == 0, f"{case}: returned {got['ret']} {got['errno']}, expected 0"


@pytest.mark.parametrize("cpu", CPUS)
def test_fresh_area_tracks_cpu(child: dict[str, Any], cpu: int) -> None:
    row = child["pinned_fields"]
    assert row["ret"] == 0, f"registration: {row['ret']} {row['errno']}"
    f = row["extra"][str(cpu)]
    assert f["getcpu"] == cpu, f"pinned to {cpu} but getcpu says {f['getcpu']}"
    assert f["cpu_id"] == cpu, f"rseq cpu_id {f['cpu_id']}, getcpu {cpu}: {f}"
    assert f["cpu_id_start"] == cpu, f"cpu_id_start {f['cpu_id_start']}: {f}"
    assert f["node_id"] == f["getnode"], f"node_id {f['node_id']} vs getcpu node: {f}"
    # One thread of a process: its concurrency id is small and dense.
    assert 0 <= f["mm_cid"] < (os.cpu_count() or 1), f"mm_cid out of range: {f}"


def test_unregister_resets_cpu_id(child: dict[str, Any]) -> None:
    row = child["after_unregister"]
    assert row["ret"] == 0, f"{row['ret']} {row['errno']}"
    assert row["extra"]["before"]["cpu_id"] >= 0, row
    assert row["extra"]["after"]["cpu_id"] == rseq.RSEQ_CPU_ID_UNINITIALIZED, row


# ---- glibc's own registration, read in this (pytest) process ------------------

def _glibc_area_or_skip() -> rseq.Rseq:
    try:
        return rseq.glibc_area()
    except rseq.RseqUnsupported as e:
        pytest.skip(str(e))


def test_glibc_registered_this_thread() -> None:
    off, size = rseq.glibc_registration()
    # 32 in glibc 2.35/2.36 as released, 20 (the 6.3 feature size) after the
    # later fix that Debian backported; 0 would mean "not registered".
    assert off != 0 and size >= 20, f"__rseq_offset {off}, __rseq_size {size}"
    # The kernel says the area is already registered by refusing a second one.
    area = rseq.RseqArea()
    try:
        with pytest.raises(rseq.RseqError) as ei:
            area.register()
        assert ei.value.name == "EINVAL", f"second registration: {ei.value.name}"
    finally:
        area.close()


@pytest.mark.parametrize("cpu", CPUS)
def test_glibc_area_tracks_cpu(cpu: int) -> None:
    area = _glibc_area_or_skip()
    with sched.pinned(cpu):
        got = rseq.cpu_id(area)
        start = area.cpu_id_start
        now, node = sched.getcpu()
    assert now == cpu, f"pinned to {cpu}, getcpu {now}"
    assert got == cpu, f"glibc rseq cpu_id {got} (start {start}), getcpu {now}"
    assert start == cpu
    assert area.node_id == node


def test_glibc_area_matches_libc_sched_getcpu() -> None:
    area = _glibc_area_or_skip()
    getcpu = libc().sched_getcpu
    getcpu.restype = ctypes.c_int
    with sched.pinned(CPUS[-1]):
        assert int(getcpu()) == rseq.cpu_id(area) == CPUS[-1]


if __name__ == "__main__":
    child_main()
