"""Random, boundary-biased cpu_opv calls, valid and invalid, from a seed.

A call is built as a valid vector first (every op type, every length
class, operands aligned, unaligned, across a page boundary, next to guard
pages, in every kind of memory the layout offers, often at addresses
used just before so that effects meet), and then, for about a third of
the calls, given one defect (sometimes several): a bad opcnt, cpu, flags,
op type, len, shift count or total, an unreadable vector, or an operand
in memory it may not read or write, with or without its expect_fault
byte.  The generator never looks at the model: what a call should do is
the model's business alone.  Everything comes from one random.Random
seeded with the seed, so a seed and a call index name a call for good.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from harness.abi import cpu_opv as co
from harness.fuzz.layout import PAGE, Area, Kind, Layout
from harness.fuzz.model import Cpus
from harness.fuzz.vector import OP_SIZE, Call, Op

T = TypeVar("T")
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
DATA_KINDS = (co.CPU_COMPARE_EQ_OP, co.CPU_COMPARE_NE_OP, co.CPU_MEMCPY_OP,
              co.CPU_MEMCPY_RELEASE_OP)
WORD_KINDS = (co.CPU_ADD_OP, co.CPU_ADD_RELEASE_OP, co.CPU_OR_OP, co.CPU_AND_OP,
              co.CPU_XOR_OP, co.CPU_LSHIFT_OP, co.CPU_RSHIFT_OP)
DATA_LENS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128,
             255, 256, 511, 512, 1000, 1024, 2047, 2048, 2049, 4095, 4096)
# The number of ops: small vectors are the common case, 16 the limit.
COUNTS = (1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12, 15, 16, 16)
DEFECTS = ("opcnt", "cpu", "vector", "op", "len", "bits", "total", "fault", "fault",
           "fault", "fault")


def _run_list(windows: tuple[Area, ...], ok: tuple[Kind, ...]) -> list[tuple[int, int]]:
    """[start, end) addresses of runs of pages of the given kinds."""
    return [(w.addr + s, w.addr + e) for w in windows for s, e in w.runs(ok)]


class Generator:
    """The calls of one seed, in order: `next()` gives the next one."""

    def __init__(self, seed: int, layout: Layout, cpus: Cpus) -> None:
        self.rng = random.Random(f"cpu_opv-fuzz:{seed}")
        self.layout = layout
        wins = layout.windows
        self.reads = _run_list(wins, (Kind.RW, Kind.RO, Kind.WREF))
        self.writes = _run_list(wins, (Kind.RW,))
        # Pages a read faults on, and pages only a write faults on, as
        # (window, page index); then the areas that always fault.
        self.read_faults = [(w, i) for w in wins for i, k in enumerate(w.kinds)
                            if k in (Kind.NONE, Kind.HOLE)]
        self.write_faults = self.read_faults + [
            (w, i) for w in wins for i, k in enumerate(w.kinds) if k in (Kind.RO, Kind.WREF)]
        self.zones = [a for a in layout.areas if not a.shadowed and a.addr != layout.vector]
        self.allowed = sorted(cpus.allowed & cpus.possible)
        self.disallowed = sorted(cpus.possible - cpus.allowed)
        self.nr_cpus = max(cpus.possible) + 1
        # Operands used lately, to be used again so that effects meet:
        # (address, bytes of room after it, writable).
        self.hot: list[tuple[int, int, bool]] = []
        self._fitting: dict[tuple[int, bool], list[tuple[int, int]]] = {}
        # random.random() alone: choice() and randrange() cost several
        # Python-level calls each, the larger part of a call under TCG.
        self._r = self.rng.random

    def getstate(self) -> tuple[object, list[tuple[int, int, bool]]]:
        return self.rng.getstate(), list(self.hot)

    def setstate(self, state: tuple[object, list[tuple[int, int, bool]]]) -> None:
        rng_state, hot = state
        self.rng.setstate(rng_state)  # type: ignore[arg-type]
        self.hot = list(hot)

    def _c(self, seq: Sequence[T]) -> T:
        return seq[int(self._r() * len(seq))]

    # ---- operands ----------------------------------------------------------

    def place(self, length: int, write: bool) -> int:
        """A valid operand address of `length` bytes."""
        r, hot = self._r, self.hot
        if hot and r() < 0.3:
            addr, room, writable = hot[int(r() * len(hot))]
            if length <= room and (writable or not write):
                return addr
        runs = self._fitting.get((length, write))
        if runs is None:
            runs = [x for x in (self.writes if write else self.reads) if x[1] - x[0] >= length]
            self._fitting[(length, write)] = runs
        lo, hi = runs[int(r() * len(runs))]
        last = hi - length
        style = r()
        if style < 0.3 and hi - lo > PAGE and length > 1:
            # Across a page boundary inside the run (runs are whole pages).
            b = lo + PAGE * (1 + int(r() * ((hi - lo) // PAGE - 1)))
            a0, a1 = max(lo, b - length + 1), min(last, b - 1)
            addr = a0 + int(r() * (a1 - a0 + 1))
        elif style < 0.6:
            align = min(length, 8) if length in (1, 2, 4, 8) else (8, 16, 64)[int(r() * 3)]
            addr = lo + int(r() * (last - lo + 1)) // align * align
        elif style < 0.7:
            addr = lo if r() < 0.5 else last
        else:
            addr = lo + int(r() * (last - lo + 1))
        entry = (addr, hi - addr, write)
        if len(hot) < 48:
            hot.append(entry)
        else:
            hot[int(r() * 48)] = entry
        return addr

    def _ef(self) -> int:
        r = self._r
        return 0 if r() < 0.85 else (1, 1, 255, 1 + int(r() * 255))[int(r() * 4)]

    def _pad(self) -> bytes:
        return self.rng.randbytes(24) if self.rng.random() < 0.1 else b""

    # ---- valid ops -----------------------------------------------------------

    def data_op(self, kind: int, length: int) -> Op:
        write = kind in (co.CPU_MEMCPY_OP, co.CPU_MEMCPY_RELEASE_OP)
        p0 = self.place(length, write)
        if not write and self._r() < 0.2:
            p1 = p0                                   # equal, whatever it holds
        else:
            p1 = self.place(length, False)
            for _ in range(4):
                if not write or p1 + length <= p0 or p0 + length <= p1:
                    break
                p1 = self.place(length, False)
            else:
                kind = co.CPU_COMPARE_NE_OP           # memcpy may not overlap
        return Op(kind, length, p0, p1, 0, self._ef(), self._ef(), self._pad())

    def word_op(self, kind: int, length: int) -> Op:
        r = self._r
        bits = 8 * length
        x = r()
        if kind in co.SHIFT_OPS:
            arg = 0 if x < 0.25 else bits - 1 if x < 0.5 else int(r() * bits)
        elif kind in co.ARITH_OPS:
            i = int(x * 9)
            arg = ((0, 1, -1, int(r() * 11) - 5, 1 << (bits - 1), (1 << (bits - 1)) - 1,
                    -(1 << 63), (1 << 63) - 1)[i] if i < 8 else self.rng.getrandbits(64))
            arg = (arg + (1 << 63)) % (1 << 64) - (1 << 63)     # count is an __s64
        else:
            i = int(x * 6)
            arg = ((0, (1 << 64) - 1, 1 << int(r() * 64), 0xFF)[i] if i < 4
                   else self.rng.getrandbits(64))
        return Op(kind, length, self.place(length, True), 0, arg, self._ef(), 0, self._pad())

    def valid_ops(self, n: int) -> list[Op]:
        r, c = self._r, self._c
        ops: list[Op] = []
        budget = co.CPU_OP_VEC_DATA_LEN_MAX
        while len(ops) < n:
            left = n - len(ops) - 1
            cap = min(co.CPU_OP_DATA_LEN_MAX, budget - 8 * left)
            x = r()
            if x < 0.05:
                op = Op(co.CPU_MB_OP, 0, pad=self._pad())
            elif x < 0.5 and cap >= 1:
                length = c(DATA_LENS) if r() < 0.7 else 1 + int(r() * 4096)
                op = self.data_op(c(DATA_KINDS), min(length, cap))
                if op.kind in (co.CPU_MEMCPY_OP, co.CPU_MEMCPY_RELEASE_OP) and left \
                        and 2 * op.length <= budget - 8 * (left - 1) and r() < 0.3:
                    # memcpy then compare of the same bytes: both outcomes.
                    kind = c((co.CPU_COMPARE_EQ_OP, co.CPU_COMPARE_NE_OP))
                    ops.append(op)
                    budget -= op.length
                    op = Op(kind, op.length, op.p0, op.p1)
            else:
                op = self.word_op(c(WORD_KINDS), c(co.SCALAR_LENS))
            ops.append(op)
            budget -= op.length
        return ops

    def full_ops(self) -> list[Op]:
        """The largest valid vector: 4096 + 15 * 8 = 4216 bytes."""
        ops = [self.data_op(self.rng.choice(DATA_KINDS), 4096)]
        ops += [self.word_op(self.rng.choice(WORD_KINDS), 8) for _ in range(15)]
        self.rng.shuffle(ops)
        return ops

    # ---- calls -------------------------------------------------------------

    def next(self) -> Call:
        rng = self.rng
        r = rng.random()
        ops = self.full_ops() if rng.random() < 0.02 else self.valid_ops(self._c(COUNTS))
        call = Call(0, len(ops), self._c(self.allowed), self._vector(len(ops)),
                    tuple(ops), "valid")
        if r < 0.04:
            return self.probe(call)
        if r < 0.06:
            return self.bad_flags(call)
        if r < 0.09:
            # Fewer ops than written: the rest must be ignored.
            return call._replace(opcnt=rng.randrange(len(ops)), intent="short-opcnt")
        if r < 0.40:
            for _ in range(1 if rng.random() < 0.85 else rng.randint(2, 3)):
                call = self.defect(call, rng.choice(DEFECTS))
        return call

    def _vector(self, n: int) -> int:
        if self.rng.random() < 0.7:
            return self.layout.vector
        return self.layout.vector + self.rng.randrange(PAGE - OP_SIZE * n + 1)

    def probe(self, call: Call) -> Call:
        rng = self.rng
        flags = rng.choice((co.CPU_OP_NR_FLAG, co.CPU_OP_VEC_LEN_MAX_FLAG))
        # The other arguments are ignored, whatever they are.
        return call._replace(flags=flags, opcnt=rng.choice((0, call.opcnt, -1, 1000)),
                             cpu=rng.choice((call.cpu, -1, INT_MAX)),
                             vector=rng.choice((call.vector, 0)), intent="probe")

    def bad_flags(self, call: Call) -> Call:
        rng = self.rng
        flags = rng.choice((3, 4, 1 << rng.randrange(2, 31), INT_MIN, -1,
                            rng.choice((1, 2)) | 1 << rng.randrange(2, 32)))
        return call._replace(flags=flags if flags < 1 << 31 else flags - (1 << 32),
                             intent="bad-flags")

    def defect(self, call: Call, what: str) -> Call:
        rng = self.rng
        ops = list(call.ops)
        i = rng.randrange(len(ops))
        intent = f"bad-{what}" if call.intent == "valid" else "bad-several"
        if what == "opcnt":
            return call._replace(opcnt=rng.choice((-1, INT_MIN, 17, 18, 64, INT_MAX,
                                                   -rng.randrange(1, 1 << 20))), intent=intent)
        if what == "cpu":
            bad = [-1, INT_MIN, self.nr_cpus, self.nr_cpus + 1, 1024, INT_MAX]
            bad += self.disallowed * 3
            return call._replace(cpu=rng.choice(bad), intent=intent)
        if what == "vector":
            return call._replace(vector=self._bad_vector(len(ops)), intent=intent)
        if what == "op":
            kind = rng.choice((co.NR_CPU_OPS, 13, 99, -1, INT_MIN, INT_MAX))
            ops[i] = ops[i]._replace(kind=kind)
        elif what == "len":
            ops[i] = self._bad_len(ops[i])
        elif what == "bits":
            length = rng.choice(co.SCALAR_LENS)
            bits = rng.choice((8 * length, 8 * length + 1, 63, 64, 1 << 31, (1 << 32) - 1))
            bits = max(bits, 8 * length)
            kind = rng.choice((co.CPU_LSHIFT_OP, co.CPU_RSHIFT_OP))
            ops[i] = Op(kind, length, self.place(length, True), 0, bits)
        elif what == "total":
            ops = self._over_total(ops)
        else:
            ops[i] = self._fault(ops[i])
        opcnt = len(ops) if call.opcnt == len(call.ops) else call.opcnt
        return call._replace(opcnt=opcnt, ops=tuple(ops), intent=intent)

    def _bad_vector(self, n: int) -> int:
        rng = self.rng
        v = self.layout.vector
        choices = [0, v + PAGE, v + PAGE + rng.randrange(PAGE - OP_SIZE)]
        # Not [vvar]: it is readable, so a vector there would be read.
        choices += [z.addr + rng.randrange(z.size) for z in self.zones if z.name != "vvar"]
        if n > 1:       # the first ops readable, the rest on the PROT_NONE page
            choices += [v + PAGE - OP_SIZE * rng.randrange(1, n) - rng.randrange(OP_SIZE)] * 3
        return rng.choice(choices)

    def _bad_len(self, op: Op) -> Op:
        rng = self.rng
        if op.kind in DATA_KINDS:
            return op._replace(length=rng.choice((0, 4097, 8192, 1 << 31, (1 << 32) - 1)))
        if op.kind == co.CPU_MB_OP:
            return op._replace(length=rng.choice((1, 4, 8, (1 << 32) - 1)))
        if op.kind in WORD_KINDS:
            return op._replace(length=rng.choice((0, 3, 5, 6, 7, 9, 16, 4096, (1 << 32) - 1)))
        return op

    def _over_total(self, ops: list[Op]) -> list[Op]:
        """Two valid data ops whose lengths add up to more than 4216."""
        rng = self.rng
        first = rng.randint(121, 4096)
        second = min(4096, co.CPU_OP_VEC_DATA_LEN_MAX + 1 - first + rng.choice((0, 0, 1, 100)))
        extra = [self.data_op(rng.choice(DATA_KINDS), first),
                 self.data_op(rng.choice(DATA_KINDS), second)]
        keep = ops[:max(0, min(len(ops), co.CPU_OP_VEC_LEN_MAX - 2))]
        out = keep + extra
        rng.shuffle(out)
        return out

    def _fault(self, op: Op) -> Op:
        """Put one operand of op where it may not be accessed."""
        rng = self.rng
        sane = (1 <= op.length <= co.CPU_OP_DATA_LEN_MAX if op.kind in DATA_KINDS
                else op.kind in WORD_KINDS and op.length in co.SCALAR_LENS)
        if not sane:
            op = self.word_op(rng.choice(WORD_KINDS), rng.choice(co.SCALAR_LENS))
        slot = rng.randrange(2) if op.kind in DATA_KINDS else 0
        write = slot == 0 and op.kind not in (co.CPU_COMPARE_EQ_OP, co.CPU_COMPARE_NE_OP)
        addr = self._fault_addr(op.length, write)
        ef = rng.choice((0, 0, 1, 255))
        if slot == 0:
            return op._replace(p0=addr, ef0=ef)
        return op._replace(p1=addr, ef1=ef)

    def _fault_addr(self, length: int, write: bool) -> int:
        rng = self.rng
        if rng.random() < 0.25:
            z = rng.choice(self.zones)
            # At the top, addr + len may wrap, but addr itself is a __u64.
            room = z.size - length if z.name != "top" else z.size - 1
            return z.addr + rng.randint(0, max(0, room))
        w, i = rng.choice(self.write_faults if write else self.read_faults)
        page = w.addr + i * w.page
        lo = max(w.addr, page - length + 1)       # may start on the page before
        hi = min(page + w.page - 1, w.end - length)
        return rng.randint(lo, hi)
