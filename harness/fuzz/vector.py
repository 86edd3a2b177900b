"""One cpu_opv call as data: its ops, arguments, where its vector lies.

`Op` holds every field of a struct cpu_op as a plain int, whatever the op
is, so that invalid ops (unknown types, bad lengths) are as easy to write
as valid ones; `encode` lays it out as the uapi header does (the union
member of its type; padding bytes, which the ABI does not read, may carry
garbage).  Fast: one struct.pack_into per op, no ctypes objects.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from harness.abi import cpu_opv as co

OP_SIZE = 32

# By union member: compare_op/memcpy_op, arithmetic_op, bitwise_op,
# shift_op, and the rest (CPU_MB_OP and unknown ops: the union is unused).
_DATA = struct.Struct("=iIQQBB6s")
_ARITH = struct.Struct("=iIQqB7s")
_BITWISE = struct.Struct("=iIQQB7s")
_SHIFT = struct.Struct("=iIQIB11s")
_OTHER = struct.Struct("=iI24s")
assert all(s.size == OP_SIZE for s in (_DATA, _ARITH, _BITWISE, _SHIFT, _OTHER))


class Op(NamedTuple):
    kind: int          # op: enum cpu_op_type (any s32, for invalid ones)
    length: int        # len (u32)
    p0: int = 0        # a, dst or p
    p1: int = 0        # b or src
    arg: int = 0       # count (s64), mask (u64) or bits (u32)
    ef0: int = 0       # expect_fault byte of p0
    ef1: int = 0       # expect_fault byte of p1
    pad: bytes = b""   # the union's unused tail (zeros if short)


class Call(NamedTuple):
    flags: int
    opcnt: int
    cpu: int
    vector: int          # address of the vector (0: NULL)
    ops: tuple[Op, ...]  # what is written at `vector` (only what fits there)
    intent: str          # what the generator meant: "valid", "bad-len", ...


def operands(op: Op) -> tuple[tuple[int, bool, int], ...]:
    """(address, written, expect_fault byte) of each operand of a known op."""
    k = op.kind
    if k in co.COMPARE_OPS:
        return ((op.p0, False, op.ef0), (op.p1, False, op.ef1))
    if k in (co.CPU_MEMCPY_OP, co.CPU_MEMCPY_RELEASE_OP):
        return ((op.p0, True, op.ef0), (op.p1, False, op.ef1))
    if k in co.ARITH_OPS or k in co.BITWISE_OPS or k in co.SHIFT_OPS:
        return ((op.p0, True, op.ef0),)
    return ()


def encode_into(buf: bytearray | memoryview, offset: int, op: Op) -> None:
    k = op.kind
    if k in co.DATA_OPS:
        _DATA.pack_into(buf, offset, k, op.length, op.p0, op.p1, op.ef0, op.ef1, op.pad)
    elif k in co.ARITH_OPS:
        _ARITH.pack_into(buf, offset, k, op.length, op.p0, op.arg, op.ef0, op.pad)
    elif k in co.BITWISE_OPS:
        _BITWISE.pack_into(buf, offset, k, op.length, op.p0, op.arg, op.ef0, op.pad)
    elif k in co.SHIFT_OPS:
        _SHIFT.pack_into(buf, offset, k, op.length, op.p0, op.arg, op.ef0, op.pad)
    else:
        _OTHER.pack_into(buf, offset, k, op.length, op.pad)


def encode(ops: tuple[Op, ...]) -> bytes:
    buf = bytearray(OP_SIZE * len(ops))
    for i, op in enumerate(ops):
        encode_into(buf, i * OP_SIZE, op)
    return bytes(buf)


def describe_op(op: Op) -> str:
    name = co.OP_NAMES.get(op.kind, f"op{op.kind}")
    args = [f"len={op.length}"]
    for (addr, _, ef), role in zip(operands(op), ("p0", "p1"), strict=False):
        args.append(f"{role}={addr:#x}" + (f"!{ef}" if ef else ""))
    if op.kind in co.ARITH_OPS | co.BITWISE_OPS | co.SHIFT_OPS:
        args.append(f"arg={op.arg:#x}")
    if op.pad.strip(b"\0"):
        args.append(f"pad={op.pad.hex()}")
    return f"{name}({', '.join(args)})"


def describe(call: Call) -> str:
    """One line; `!n` marks an expect_fault byte n."""
    ops = "; ".join(describe_op(op) for op in call.ops)
    return (f"cpu_opv(vec={call.vector:#x}, opcnt={call.opcnt}, cpu={call.cpu}, "
            f"flags={call.flags:#x}) [{call.intent}] {ops}")
