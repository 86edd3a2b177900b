"""The child side of test_rseq: fresh rseq registrations, one per thread.

Run as `python -S -m harness.suites.rseq_child` with
GLIBC_TUNABLES=glibc.pthread.rseq=0, so that glibc leaves every thread
unregistered.  Standard library and harness.abi only (no pytest, no site):
Python's start-up dominates this child's cost in a TCG guest.  It prints one
JSON object, which test_rseq.py checks row by row.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.abi import rseq, sched

CPUS = sorted(os.sched_getaffinity(0))


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


if __name__ == "__main__":
    child_main()
