"""What changes the page tables under the calls but no data: a thread
that splits and collapses the transparent huge pages of the THP window,
and fork()ed children holding copy-on-write copies of the private
windows, which check, when asked, that none of the parent's later
cpu_opv writes reached them (a write through a pinned page that is
still shared with the child would)."""

from __future__ import annotations

import json
import os
import threading

from harness.fuzz import layout as lay
from harness.fuzz.arena import VISIBLE, Difference
from harness.fuzz.layout import Layout
from harness.fuzz.model import Shadow


class Splitter(threading.Thread):
    """mprotect() one small page of the THP window's first huge page (not
    one the fuzzer uses) back and forth, which splits the PMD mapping, and
    now and then MADV_COLLAPSE it again, until stopped."""

    def __init__(self, layout: Layout, mapper: lay.Mapper, period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.mapper = mapper
        w = layout.area("thp")
        self.base = None if w is None else w.addr + len(w.kinds) // 2 * lay.PAGE - lay.HUGE
        self.period = period
        self.stop = threading.Event()
        self.splits = self.collapses = 0

    def run(self) -> None:
        if self.base is None:
            return
        other = self.base + 3 * lay.PAGE
        while not self.stop.wait(self.period):
            self.mapper.mprotect(other, lay.PAGE, lay.PROT_READ)
            self.mapper.mprotect(other, lay.PAGE, lay.PROT_RW)
            self.splits += 1
            if self.splits % 8 == 0:
                self.collapses += self.mapper.madvise(self.base, 2 * lay.HUGE,
                                                      lay.MADV_COLLAPSE) == 0


class CowChild:
    """A fork()ed child that keeps the private windows as they were."""

    def __init__(self, layout: Layout, shadow: Shadow, since: int) -> None:
        self.since = since
        self.windows = [w for w in layout.windows if w.private]
        snap = {w.name: bytes(shadow.bufs[w.name]) for w in self.windows}
        go_r, self._go = os.pipe()
        self._answer, answer_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            # Never return into the fuzz loop: a child that did would go on
            # fuzzing as a second copy of the worker.
            try:
                os.close(self._go)
                os.close(self._answer)
                os.read(go_r, 1)
                diffs = [str(d) for d in self._compare(snap)]
                os.write(answer_w, json.dumps(diffs).encode())
            finally:
                os._exit(0)
        os.close(go_r)
        os.close(answer_w)

    def _compare(self, snap: dict[str, bytes]) -> list[Difference]:
        out = []
        for w in self.windows:
            for s, e in w.runs(VISIBLE):
                got = lay.read(w.addr + s, e - s)
                want = snap[w.name][s:e]
                if got != want:
                    first = next(i for i in range(e - s) if got[i] != want[i])
                    out.append(Difference(w.name, s + first, want[first:first + 16],
                                          got[first:first + 16],
                                          sum(a != b for a, b in zip(got, want, strict=True))))
        return out

    def check(self) -> list[str]:
        """Ask the child to compare; wait for it; return what differed."""
        os.write(self._go, b"x")
        os.close(self._go)
        with os.fdopen(self._answer, "rb") as f:
            data = f.read()
        os.waitpid(self.pid, 0)
        try:
            out: list[str] = json.loads(data)
        except ValueError:
            out = ["the copy-on-write child died without an answer"]
        return out
