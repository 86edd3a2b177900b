"""rseq(2) as in any 6.12+ kernel: registration rules and the fields it keeps.

Fresh registrations need a thread glibc has not registered already, so they
run in a child Python started with GLIBC_TUNABLES=glibc.pthread.rseq=0
(`python -S -m harness.suites.rseq_child`), each scenario in a new thread of that
child (registration is per thread, so threads isolate the scenarios).  The
child prints one JSON object; the tests below check its rows.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from harness import REPO
from harness.abi import rseq, sched
from harness.abi.libc import libc
from harness.suites.rseq_child import ERRNO_CASES

CPUS = sorted(os.sched_getaffinity(0))
CHILD_TIMEOUT_S = 300  # TCG guests are slow: python start-up over 9p


# ---- host (pytest) side -------------------------------------------------------

@pytest.fixture(scope="module")
def child() -> dict[str, Any]:
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.pthread.rseq=0",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "harness.suites.rseq_child"], cwd=REPO, env=env,
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


