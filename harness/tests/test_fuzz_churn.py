"""The copy-on-write children of harness/fuzz/churn.py see a write that
reaches them, and only then (a page that is really shared stands in for
one that a buggy kernel wrote through while it was still shared)."""

from __future__ import annotations

import pytest

from harness.fuzz import layout as lay
from harness.fuzz.churn import CowChild
from harness.fuzz.model import Shadow


@pytest.mark.parametrize("flags", [lay.MAP_PRIVATE, lay.MAP_SHARED], ids=["private", "shared"])
def test_cow_child_sees_writes_that_reach_it(flags: int) -> None:
    m = lay.Mapper()
    try:
        addr = m.mmap(0, 2 * lay.PAGE, lay.PROT_RW, flags | lay.MAP_ANONYMOUS)
        w = lay.Area("anon", "test", (lay.Kind.RW, lay.Kind.RW), addr, private=True)
        layout = lay.Layout((w,), 0)
        shadow = Shadow(layout, {"anon": bytes(2 * lay.PAGE)})
        child = CowChild(layout, shadow, 0)
        lay.write(addr + lay.PAGE + 5, b"\x01")       # the parent writes after the fork
        diffs = child.check()
        if flags == lay.MAP_SHARED:
            assert len(diffs) == 1 and "+0x1005" in diffs[0]
        else:
            assert diffs == []
    finally:
        m.close()
