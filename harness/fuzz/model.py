"""What the ABI allows a call to do: its result, and its effect on memory.

Written from docs/cpu_opv-abi.md (with its v2 amendments) and
docs/man/cpu_opv.2, not from the kernel source:

* flags are checked before anything else: CPU_OP_NR_FLAG returns 12,
  CPU_OP_VEC_LEN_MAX_FLAG 16, anything else but 0 is EINVAL;
* EINVAL: opcnt < 0 or > 16, an unknown op, a bad len or shift count, a
  total len over 4216, an operand over more than two pages, cpu negative,
  not possible or not in the caller's affinity mask;
* EFAULT: the vector cannot be read; an operand is not mapped readable, a
  destination not mapped writable or refused (a shared mapping of a file
  other than shmem and hugetlbfs), a kernel or PFN-mapped address;
* EAGAIN instead of EFAULT for an operand whose expect_fault byte is set
  and which is not mapped, or not mapped with the access it needs;
* an error changes no memory; otherwise ops run in order and a failed
  compare n-1 returns n, the ops before it having taken effect.

The ABI gives no order among the errors of one call, so a call with
several problems may fail with the errno of any of them: the prediction
is a set.  Where the documents leave a case open, the set says so too: a
refused operand (kernel, PFN-mapped, a refused file mapping) with its
expect_fault byte set may give EFAULT (it is in EFAULT's list) or EAGAIN
(it "is not mapped with the access it needs").  opcnt 0 reads no vector
and returns 0.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass

from harness.abi import cpu_opv as co
from harness.fuzz.layout import ADDR_END, PAGE, READABLE, Kind, Layout
from harness.fuzz.vector import OP_SIZE, Call, Op, operands

EINVAL, EFAULT, EAGAIN = errno.EINVAL, errno.EFAULT, errno.EAGAIN
ORDER = sys.byteorder
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Cpus:
    """The CPUs as the caller sees them: possible ones, and its affinity."""

    possible: frozenset[int]
    allowed: frozenset[int]

    def valid(self, cpu: int) -> bool:
        return cpu in self.possible and cpu in self.allowed


@dataclass(frozen=True)
class Prediction:
    """ret is the return value if the call may succeed (its effect is
    already in the shadow); errnos the errors it may fail with."""

    ret: int | None
    errnos: frozenset[int] = frozenset()

    def allows(self, ret: int, err: int) -> bool:
        if ret == -1:
            return err in self.errnos
        return ret == self.ret

    def __str__(self) -> str:
        names = sorted(errno.errorcode.get(e, str(e)) for e in self.errnos)
        alts = ([str(self.ret)] if self.ret is not None else []) + [f"-1 {n}" for n in names]
        return " or ".join(alts)


class Shadow:
    """The model's copy of every window, and an undo log of the last call."""

    def __init__(self, layout: Layout, contents: dict[str, bytes]) -> None:
        self.layout = layout
        self.bufs = {w.name: bytearray(contents[w.name]) for w in layout.windows}
        self.undo: list[tuple[bytearray, int, bytes]] = []

    def locate(self, addr: int, length: int) -> tuple[bytearray, int]:
        a = self.layout.owners.get(addr // PAGE)
        if a is None or not a.shadowed or addr + length > a.addr + a.size:
            raise ValueError(f"{addr:#x}+{length} is not inside one window")
        return self.bufs[a.name], addr - a.addr

    def store(self, buf: bytearray, off: int, data: bytes) -> None:
        self.undo.append((buf, off, bytes(buf[off:off + len(data)])))
        buf[off:off + len(data)] = data

    def rollback(self) -> None:
        for buf, off, old in reversed(self.undo):
            buf[off:off + len(old)] = old
        self.undo.clear()

    def snapshot(self) -> dict[str, bytes]:
        return {k: bytes(v) for k, v in self.bufs.items()}

    def restore(self, snap: dict[str, bytes]) -> None:
        for k, v in snap.items():
            self.bufs[k][:] = v
        self.undo.clear()


def _i32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def structure_ok(op: Op) -> bool:
    """The op's type, len and shift count are valid (EINVAL otherwise)."""
    k, n = op.kind, op.length
    if k in co.DATA_OPS:
        return 1 <= n <= co.CPU_OP_DATA_LEN_MAX
    if k in co.ARITH_OPS or k in co.BITWISE_OPS:
        return n in co.SCALAR_LENS
    if k in co.SHIFT_OPS:
        return n in co.SCALAR_LENS and op.arg < 8 * n
    return k == co.CPU_MB_OP and n == 0


def operand_errnos(layout: Layout, addr: int, length: int, write: bool,
                   expect_fault: int) -> set[int]:
    """The errors an operand can cause; empty if it is fine."""
    first, last = addr // PAGE, (addr + length - 1) // PAGE
    if last - first + 1 > co.CPU_OP_MAX_PAGES:
        return {EINVAL}
    out: set[int] = set()
    pages = layout.pages
    for page in range(first, last + 1):
        kind = pages.get(page) if page * PAGE < ADDR_END else Kind.REFUSED
        if kind is None:
            raise ValueError(f"operand {addr:#x}+{length}: page {page * PAGE:#x} "
                             "is outside every area the fuzzer knows")
        if kind is Kind.RW:
            continue
        if kind is Kind.REFUSED or (write and kind is Kind.WREF):
            out |= {EFAULT, EAGAIN} if expect_fault else {EFAULT}
        elif write or kind not in READABLE:
            out.add(EAGAIN if expect_fault else EFAULT)
    return out


def vector_ops(layout: Layout, call: Call, n: int) -> tuple[tuple[Op, ...], bool]:
    """The ops the kernel can read of the first n at call.vector, and
    whether all n can be read."""
    readable = 0
    while readable < n * OP_SIZE:
        kind = layout.kind_at(call.vector + readable)
        if kind is None or not kind.readable:
            break
        readable += PAGE - (call.vector + readable) % PAGE
    whole = min(readable, n * OP_SIZE) // OP_SIZE
    return call.ops[:whole], whole == n


def errors(call: Call, layout: Layout, cpus: Cpus) -> set[int] | None:
    """Every errno the call may fail with; None if it must not fail."""
    out: set[int] = set()
    opcnt, cpu = _i32(call.opcnt), _i32(call.cpu)
    if not 0 <= opcnt <= co.CPU_OP_VEC_LEN_MAX:
        return {EINVAL}
    if not cpus.valid(cpu):
        out.add(EINVAL)
    if opcnt == 0:
        return out or None
    ops, whole = vector_ops(layout, call, opcnt)
    if not whole:
        out.add(EFAULT)
    total = 0
    for op in ops:
        if not structure_ok(op):
            out.add(EINVAL)
            continue
        total += op.length
        for addr, write, ef in operands(op):
            out |= operand_errnos(layout, addr, op.length, write, ef)
    if total > co.CPU_OP_VEC_DATA_LEN_MAX:
        out.add(EINVAL)
    return out or None


def _word(op: Op, v: int) -> int:
    k = op.kind
    if k in co.ARITH_OPS:
        return v + op.arg
    if k == co.CPU_OR_OP:
        return v | op.arg
    if k == co.CPU_AND_OP:
        return v & op.arg
    if k == co.CPU_XOR_OP:
        return v ^ op.arg
    if k == co.CPU_LSHIFT_OP:
        return v << op.arg
    return v >> op.arg


def run_ops(ops: tuple[Op, ...], shadow: Shadow) -> int:
    """Run a valid vector on the shadow; return what cpu_opv returns."""
    for i, op in enumerate(ops):
        k, n = op.kind, op.length
        if k == co.CPU_MB_OP:
            continue
        buf0, o0 = shadow.locate(op.p0, n)
        if k in co.COMPARE_OPS:
            buf1, o1 = shadow.locate(op.p1, n)
            equal = buf0[o0:o0 + n] == buf1[o1:o1 + n]
            if equal != (k == co.CPU_COMPARE_EQ_OP):
                return i + 1
        elif k in co.DATA_OPS:
            buf1, o1 = shadow.locate(op.p1, n)
            shadow.store(buf0, o0, bytes(buf1[o1:o1 + n]))
        else:
            v = int.from_bytes(buf0[o0:o0 + n], ORDER)
            v = _word(op, v) & ((1 << 8 * n) - 1)
            shadow.store(buf0, o0, v.to_bytes(n, ORDER))
    return 0


def predict(call: Call, shadow: Shadow, cpus: Cpus) -> Prediction:
    """The outcome the ABI allows; a success's effect goes into the shadow
    (shadow.rollback() takes it out again)."""
    shadow.undo.clear()
    flags = _i32(call.flags)
    if flags == co.CPU_OP_NR_FLAG:
        return Prediction(co.NR_CPU_OPS)
    if flags == co.CPU_OP_VEC_LEN_MAX_FLAG:
        return Prediction(co.CPU_OP_VEC_LEN_MAX)
    if flags:
        return Prediction(None, frozenset({EINVAL}))
    errs = errors(call, shadow.layout, cpus)
    if errs:
        return Prediction(None, frozenset(errs))
    return Prediction(run_ops(call.ops[:_i32(call.opcnt)], shadow))
