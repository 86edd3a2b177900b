"""The fuzz loop: generate, predict, call, compare; name the culprit.

Each call's return value and errno are checked at once against the
model; memory is compared with the shadow once per batch.  When a batch's
memory differs, the batch is replayed call by call from its start (the
generator's state, the shadow and the windows are restored to what they
were) with a comparison after every call, which names the call.  The
loop talks to the kernel through a Target, so host tests can put a
deliberately wrong kernel behind it.
"""

from __future__ import annotations

import ctypes
import errno
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.abi import syscalls
from harness.abi.libc import libc
from harness.fuzz import layout as lay
from harness.fuzz.arena import Difference, Memory
from harness.fuzz.gen import Generator
from harness.fuzz.model import Cpus, Prediction, Shadow, predict
from harness.fuzz.vector import OP_SIZE, Call, describe, encode, encode_into

BATCH = 64


class Target(Protocol):
    """Where calls go: the real kernel, or a fake one in the host tests."""

    def issue(self, call: Call) -> tuple[int, int]: ...

    def compare(self, shadow: Shadow) -> list[Difference]: ...

    def restore(self, shadow: Shadow) -> None: ...


def outcome(ret: int, err: int) -> str:
    return f"-1 {errno.errorcode.get(err, err)}" if ret == -1 else str(ret)


@dataclass
class Mismatch:
    """A call whose outcome the ABI does not allow, or the first call
    after which memory differs from the model."""

    seed: int
    index: int               # 0-based call index in the seed's stream
    call: Call | None        # None: no single call is to blame
    expected: str
    actual: str
    memory: list[Difference] = field(default_factory=list)
    note: str = ""

    def replay(self) -> str:
        return f"make fuzz SEED={self.seed} N={self.index + 1} WORKERS=1"

    def lines(self) -> list[str]:
        out = [f"seed {self.seed} call {self.index}: {self.note or 'unexpected result'}"]
        if self.call is not None:
            out += [f"call: {describe(self.call)}",
                    f"vector bytes: {encode(self.call.ops).hex()}"]
        out += [f"expected: {self.expected}", f"actual: {self.actual}"]
        out += [f"memory: {d}" for d in self.memory[:8]]
        out.append(f"replay: {self.replay()}")
        return out


@dataclass
class Stats:
    calls: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in self.outcomes.most_common(8))
        rate = self.calls / self.seconds if self.seconds else 0.0
        return f"{self.calls} calls in {self.seconds:.1f}s ({rate:.0f}/s); outcomes: {top}"


@dataclass
class Fuzzer:
    seed: int
    gen: Generator
    shadow: Shadow
    cpus: Cpus
    target: Target
    batch: int = BATCH
    stats: Stats = field(default_factory=Stats)
    index: int = 0
    progress: float = 0.0     # seconds between progress lines; 0: none
    # Called after each batch that matched the model; may report a mismatch.
    between: Callable[[Fuzzer], Mismatch | None] | None = None

    def step(self) -> tuple[Call, Prediction, int, int]:
        call = self.gen.next()
        pred = predict(call, self.shadow, self.cpus)
        ret, err = self.target.issue(call)
        if ret == -1 and pred.ret is not None:
            self.shadow.rollback()
        return call, pred, ret, err

    def run(self, calls: int, deadline: float | None = None) -> Mismatch | None:
        """Run up to `calls` calls in all (or until `deadline`, at a batch
        boundary); return the first mismatch, if any."""
        start = time.monotonic()
        said = start
        try:
            while self.index < calls and (deadline is None or time.monotonic() < deadline):
                bad = self._batch(min(calls, self.index + self.batch))
                if bad is None and self.between is not None:
                    bad = self.between(self)
                if bad is not None:
                    return bad
                if self.progress and time.monotonic() - said > self.progress:
                    said = time.monotonic()
                    print(f"cpu-opv-fuzz: seed {self.seed}: {self.index} calls, "
                          f"{self.index / (said - start):.0f}/s", flush=True)
            return None
        finally:
            self.stats.seconds += time.monotonic() - start

    def _batch(self, end: int) -> Mismatch | None:
        first, state, snap = self.index, self.gen.getstate(), self.shadow.snapshot()
        st = self.stats
        for i in range(first, end):
            call, pred, ret, err = self.step()
            self.index = i + 1
            st.calls += 1
            st.outcomes[outcome(ret, err)] += 1
            st.intents[call.intent] += 1
            if not pred.allows(ret, err):
                return Mismatch(self.seed, i, call, str(pred), outcome(ret, err))
        diffs = self.target.compare(self.shadow)
        if not diffs:
            return None
        return self._replay(first, end, state, snap, diffs)

    def _replay(self, first: int, end: int, state: tuple[object, list[tuple[int, int, bool]]],
                snap: dict[str, bytes], diffs: list[Difference]) -> Mismatch:
        """Replay a batch whose memory differed, comparing after each call."""
        self.gen.setstate(state)
        self.shadow.restore(snap)
        self.target.restore(self.shadow)
        for i in range(first, end):
            call, pred, ret, err = self.step()
            now = self.target.compare(self.shadow)
            if now or not pred.allows(ret, err):
                return Mismatch(self.seed, i, call, str(pred), outcome(ret, err), now,
                                "memory differs from the model after this call")
        return Mismatch(self.seed, end - 1, call, "memory as the model says",
                        "memory differed", diffs,
                        f"memory differed after calls {first}..{end - 1} but not when "
                        "they were replayed one by one (a race?)")


class Guest:
    """The real kernel: cpu_opv through libc's syscall(), the vector page
    written in place (no allocation per call)."""

    def __init__(self, built: lay.Built) -> None:
        self.layout = built.layout
        self.mapper = built.mapper
        self.memory = Memory(built.layout)
        fn = libc()["syscall"]
        fn.restype = ctypes.c_long
        fn.argtypes = [ctypes.c_long] * 5
        self._syscall = fn
        self._nr = syscalls.CPU_OPV_NR
        page = (ctypes.c_char * lay.PAGE).from_address(built.layout.vector)
        self._page = memoryview(page).cast("B")

    def _write_vector(self, call: Call) -> None:
        off = call.vector - self.layout.vector
        if not 0 <= off < lay.PAGE:
            return
        if off + OP_SIZE * len(call.ops) <= lay.PAGE:
            for i, op in enumerate(call.ops):
                encode_into(self._page, off + i * OP_SIZE, op)
        else:                         # runs into the PROT_NONE page
            data = encode(call.ops)[:lay.PAGE - off]
            self._page[off:off + len(data)] = data

    def issue(self, call: Call) -> tuple[int, int]:
        self._write_vector(call)
        ctypes.set_errno(0)
        ret = int(self._syscall(self._nr, call.vector, call.opcnt, call.cpu, call.flags))
        return ret, (ctypes.get_errno() if ret == -1 else 0)

    def compare(self, shadow: Shadow) -> list[Difference]:
        return self.memory.compare(shadow)

    def restore(self, shadow: Shadow) -> None:
        self.memory.restore(shadow, self.mapper)

    def hidden(self, shadow: Shadow) -> list[Difference]:
        return self.memory.check_hidden(shadow, self.mapper)
