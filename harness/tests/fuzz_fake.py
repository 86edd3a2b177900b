"""A fake kernel for the fuzzer's host tests: the model itself, running on
its own copy of the windows, with a hook to make it misbehave."""

from __future__ import annotations

import random
from collections.abc import Callable

from harness.fuzz import layout as lay
from harness.fuzz.arena import VISIBLE, Difference
from harness.fuzz.gen import Generator
from harness.fuzz.model import Cpus, Shadow, predict
from harness.fuzz.run import Fuzzer
from harness.fuzz.vector import Call

CPUS = Cpus(frozenset({0, 1, 2, 3}), frozenset({0, 1, 3}))
# (call index, call, ret, errno, the fake's memory) -> (ret, errno)
Hook = Callable[[int, Call, int, int, Shadow], tuple[int, int]]


def contents(layout: lay.Layout, seed: int) -> dict[str, bytes]:
    rng = random.Random(f"cpu_opv-fuzz-fill:{seed}")
    return {w.name: lay.fill(rng, w) for w in layout.windows}


class FakeKernel:
    def __init__(self, layout: lay.Layout, data: dict[str, bytes],
                 hook: Hook | None = None) -> None:
        self.mem = Shadow(layout, data)
        self.hook = hook
        self.n = 0

    def issue(self, call: Call) -> tuple[int, int]:
        pred = predict(call, self.mem, CPUS)
        ret, err = (pred.ret, 0) if pred.ret is not None else (-1, min(pred.errnos))
        if self.hook is not None:
            ret, err = self.hook(self.n, call, ret, err, self.mem)
        self.n += 1
        return ret, err

    def compare(self, shadow: Shadow) -> list[Difference]:
        out = []
        for w in self.mem.layout.windows:
            for s, e in w.runs(VISIBLE):
                got, want = self.mem.bufs[w.name][s:e], shadow.bufs[w.name][s:e]
                if got != want:
                    first = next(i for i in range(e - s) if got[i] != want[i])
                    out.append(Difference(w.name, s + first, bytes(want[first:first + 16]),
                                          bytes(got[first:first + 16]), 1))
        return out

    def restore(self, shadow: Shadow) -> None:
        self.mem.restore(shadow.snapshot())


def fuzzer(seed: int, hook: Hook | None = None, batch: int = 64) -> Fuzzer:
    layout = lay.plan()
    data = contents(layout, seed)
    return Fuzzer(seed, Generator(seed, layout, CPUS), Shadow(layout, data), CPUS,
                  FakeKernel(layout, data, hook), batch=batch)
