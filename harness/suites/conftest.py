"""Shared fixtures for the guest suites: memory regions and a header line.

The header records what the kernel said to the cpu_opv probe, so a log of a
skipped run shows why it skipped without reading the skip reasons.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from harness.abi import cpu_opv
from harness.abi.memory import PROT_RW, Region


def pytest_report_header() -> list[str]:
    try:
        probe = f"cpu_opv probe: NR_CPU_OPS={cpu_opv.probe()}"
    except cpu_opv.ProbeError as e:
        probe = f"cpu_opv probe: {e}"
    cpus = sorted(os.sched_getaffinity(0))
    return [f"kernel {os.uname().release}, cpus allowed {cpus}", probe]


RegionFactory = Callable[..., Region]


@pytest.fixture
def mem() -> Iterator[RegionFactory]:
    """mem(pages=3, prot=PROT_RW) -> a guard-filled Region, unmapped after."""
    made: list[Region] = []

    def make(pages: int = 3, prot: int = PROT_RW) -> Region:
        r = Region.pages(pages)
        if prot != PROT_RW:
            r.mprotect(prot)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
