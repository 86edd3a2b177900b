"""Canaries: every byte of every window must be what the model says.

The model changes only the bytes of operands that a successful call
wrote, so comparing whole windows with the shadow checks both the
operands and everything around them (the canaries): guard pages, the rest
of each page, the read-only and refused pages.  Reading is cheap next to
a call under TCG, but not free: the runner compares once per batch.
PROT_NONE pages cannot be read from Python; `check_hidden` opens them
for reading once, at the end of a run.  Unmapped pages hold nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.fuzz import layout as lay
from harness.fuzz.layout import Area, Kind, Layout
from harness.fuzz.model import Shadow

VISIBLE = (Kind.RW, Kind.RO, Kind.WREF)


@dataclass(frozen=True)
class Difference:
    window: str
    offset: int            # of the first differing byte, in the window
    expected: bytes        # up to 16 bytes from there
    actual: bytes
    count: int             # differing bytes in the window

    def __str__(self) -> str:
        return (f"window {self.window} +{self.offset:#x}: {self.count} byte(s) differ; "
                f"expected {self.expected.hex()} got {self.actual.hex()}")


def _diff(w: Area, start: int, want: bytes | bytearray, got: bytes) -> Difference:
    bad = [i for i in range(len(got)) if got[i] != want[i]]
    first = bad[0]
    return Difference(w.name, start + first, bytes(want[first:first + 16]),
                      got[first:first + 16], len(bad))


class Memory:
    """Reads and writes the real windows (the guest's side of the shadow)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.runs = {w.name: w.runs(VISIBLE) for w in layout.windows}

    def compare(self, shadow: Shadow) -> list[Difference]:
        out = []
        for w in self.layout.windows:
            buf = shadow.bufs[w.name]
            for start, end in self.runs[w.name]:
                got = lay.read(w.addr + start, end - start)
                if got != buf[start:end]:
                    out.append(_diff(w, start, buf[start:end], got))
        return out

    def restore(self, shadow: Shadow, mapper: lay.Mapper) -> None:
        """Make the windows what the shadow says (read-only pages opened
        for writing for the while), before a batch is replayed."""
        for w in self.layout.windows:
            buf = shadow.bufs[w.name]
            for start, end in self.runs[w.name]:
                if lay.read(w.addr + start, end - start) == buf[start:end]:
                    continue
                ro = [i for i in range(start, end, w.page) if w.kind_at(w.addr + i) is Kind.RO]
                for i in ro:
                    mapper.mprotect(w.addr + i, w.page, lay.PROT_RW)
                lay.write(w.addr + start, bytes(buf[start:end]))
                for i in ro:
                    mapper.mprotect(w.addr + i, w.page, lay.PROT_READ)

    def check_hidden(self, shadow: Shadow, mapper: lay.Mapper) -> list[Difference]:
        """Compare the PROT_NONE pages, opening each for reading."""
        out = []
        for w in self.layout.windows:
            for i, kind in enumerate(w.kinds):
                if kind is not Kind.NONE:
                    continue
                addr, off = w.addr + i * w.page, i * w.page
                mapper.mprotect(addr, w.page, lay.PROT_READ)
                got = lay.read(addr, w.page)
                mapper.mprotect(addr, w.page, lay.PROT_NONE)
                want = shadow.bufs[w.name][off:off + w.page]
                if got != want:
                    out.append(_diff(w, off, want, got))
        return out
