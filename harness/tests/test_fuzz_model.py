"""The fuzzer's model against the ABI text (docs/cpu_opv-abi.md and its v2
amendments, docs/man/cpu_opv.2): one case per class of input, with the
errno or result the documents name for it."""

from __future__ import annotations

import errno

import pytest

from harness.abi import cpu_opv as co
from harness.fuzz import layout as lay
from harness.fuzz.model import Prediction, Shadow, predict
from harness.fuzz.vector import Call, Op
from harness.tests.fuzz_fake import CPUS

P = lay.PAGE
L = lay.plan()
ANON = L.area("anon")
assert ANON is not None
RW = ANON.addr + 1 * P          # pages 1-2 read-write
RO = ANON.addr + 3 * P          # read-only
NONE = ANON.addr + 5 * P        # PROT_NONE
HOLE = ANON.addr + 12 * P       # unmapped
WREF = L.area("ramfs-shared").addr + P  # type: ignore[union-attr]
SHM = L.area("memfd").addr + P          # type: ignore[union-attr]
KERNEL = L.area("kernel").addr          # type: ignore[union-attr]
TOP = lay.ADDR_END - 4
EINVAL, EFAULT, EAGAIN = errno.EINVAL, errno.EFAULT, errno.EAGAIN


def shadow() -> Shadow:
    return Shadow(L, {w.name: bytes(w.size) for w in L.windows})


def call(*ops: Op, cpu: int = 0, flags: int = 0, opcnt: int | None = None,
         vector: int | None = None) -> Call:
    return Call(flags, len(ops) if opcnt is None else opcnt, cpu,
                L.vector if vector is None else vector, ops, "test")


def add(p: int, n: int = 1, length: int = 8, ef: int = 0) -> Op:
    return Op(co.CPU_ADD_OP, length, p, 0, n, ef)


def memcpy(dst: int, src: int, length: int = 8, efd: int = 0, efs: int = 0) -> Op:
    return Op(co.CPU_MEMCPY_OP, length, dst, src, 0, efd, efs)


def cmp(kind: int, a: int, b: int, length: int = 8) -> Op:
    return Op(kind, length, a, b)


def errs(*e: int) -> Prediction:
    return Prediction(None, frozenset(e))


CASES: dict[str, tuple[Call, Prediction]] = {
    # "Flags": a probe ignores the other arguments; any other bit, or both: EINVAL.
    "probe_nr": (call(flags=co.CPU_OP_NR_FLAG, cpu=-1, opcnt=-1, vector=0), Prediction(12)),
    "probe_vec_len_max": (call(flags=co.CPU_OP_VEC_LEN_MAX_FLAG, opcnt=99), Prediction(16)),
    "flags_both": (call(add(RW), flags=3), errs(EINVAL)),
    "flags_bit2": (call(add(RW), flags=4), errs(EINVAL)),
    "flags_bit31": (call(add(RW), flags=-(1 << 31)), errs(EINVAL)),
    # EINVAL: opcnt < 0 or > 16
    "opcnt_negative": (call(add(RW), opcnt=-1), errs(EINVAL)),
    "opcnt_17": (call(add(RW), opcnt=17), errs(EINVAL)),
    "opcnt_0": (call(opcnt=0, vector=0), Prediction(0)),
    # EINVAL: cpu < 0, not possible, not in the affinity mask
    "cpu_negative": (call(add(RW), cpu=-1), errs(EINVAL)),
    "cpu_not_possible": (call(add(RW), cpu=4), errs(EINVAL)),
    "cpu_disallowed": (call(add(RW), cpu=2), errs(EINVAL)),
    # EFAULT: the vector cannot be read
    "vector_null": (call(add(RW), vector=0), errs(EFAULT)),
    "vector_kernel": (call(add(RW), vector=KERNEL), errs(EFAULT)),
    "vector_into_prot_none": (call(add(RW), add(RW), vector=L.vector + P - 40),
                              errs(EFAULT)),
    # EINVAL: unknown op; bad len, bits; total over 4216
    "op_12": (call(Op(12, 8, RW)), errs(EINVAL)),
    "op_negative": (call(add(RW), Op(-1, 8, RW)), errs(EINVAL)),
    "add_len_3": (call(add(RW, length=3)), errs(EINVAL)),
    "memcpy_len_0": (call(memcpy(RW, SHM, 0)), errs(EINVAL)),
    "memcpy_len_4097": (call(memcpy(RW, SHM, 4097)), errs(EINVAL)),
    "mb_len_1": (call(Op(co.CPU_MB_OP, 1)), errs(EINVAL)),
    "shift_bits_8_len_1": (call(Op(co.CPU_LSHIFT_OP, 1, RW, 0, 8)), errs(EINVAL)),
    "total_4217": (call(memcpy(RW, SHM, 4096), memcpy(SHM, RW + 4096, 121)), errs(EINVAL)),
    # EFAULT: not mapped readable; destination not writable; refused memory
    "src_prot_none": (call(memcpy(RW, NONE)), errs(EFAULT)),
    "src_unmapped": (call(memcpy(RW, HOLE)), errs(EFAULT)),
    "compare_null": (call(cmp(co.CPU_COMPARE_EQ_OP, RW, 16)), errs(EFAULT)),
    "dst_read_only": (call(memcpy(RO, RW)), errs(EFAULT)),
    "add_read_only": (call(add(RO)), errs(EFAULT)),
    "dst_crosses_into_read_only": (call(memcpy(RO - 4, RW)), errs(EFAULT)),
    "dst_ramfs_shared": (call(memcpy(WREF, RW)), errs(EFAULT)),
    "dst_kernel": (call(add(KERNEL)), errs(EFAULT)),
    "dst_wraps": (call(add(TOP)), errs(EFAULT)),
    "src_noncanonical": (call(memcpy(RW, 1 << 63)), errs(EFAULT)),
    # EAGAIN: expect_fault set on an operand not mapped with the access it needs
    "src_prot_none_expect": (call(memcpy(RW, NONE, efs=1)), errs(EAGAIN)),
    "dst_read_only_expect": (call(memcpy(RO, RW, efd=255)), errs(EAGAIN)),
    # ... refused memory: the documents name EFAULT, and EAGAIN fits too.
    "dst_ramfs_shared_expect": (call(add(WREF, ef=1)), errs(EFAULT, EAGAIN)),
    # Several problems: any of their errnos (the ABI orders none of them).
    "two_problems": (call(add(RW, length=3), memcpy(RW, NONE), cpu=2), errs(EINVAL, EFAULT)),
    # Reads are fine in read-only and refused-for-write memory.
    "src_read_only": (call(memcpy(RW, RO)), Prediction(0)),
    "src_ramfs_shared": (call(cmp(co.CPU_COMPARE_EQ_OP, WREF, RO)), Prediction(0)),
    "expect_fault_on_good_operand": (call(add(RW, ef=1)), Prediction(0)),
    # Return value: n when op n-1, a compare, fails.
    "compare_ne_equal_stops": (call(add(RW), cmp(co.CPU_COMPARE_NE_OP, RO, SHM)), Prediction(2)),
    "offline_or_other_cpu": (call(add(RW), cpu=3), Prediction(0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_documented_outcome(name: str) -> None:
    c, want = CASES[name]
    assert predict(c, shadow(), CPUS) == want


def test_error_changes_nothing() -> None:
    s = shadow()
    before = s.snapshot()
    predict(call(add(RW), add(RW), memcpy(RW, NONE)), s, CPUS)
    assert s.snapshot() == before


def _u(s: Shadow, addr: int, n: int = 8) -> int:
    buf, off = s.locate(addr, n)
    return int.from_bytes(buf[off:off + n], "little")


def test_ops_in_order_until_failed_compare() -> None:
    """'ops before it have taken effect; there is no rollback'."""
    s = shadow()
    ops = (add(RW, 5), cmp(co.CPU_COMPARE_EQ_OP, RW, SHM), add(RW, 1))
    assert predict(call(*ops), s, CPUS).ret == 2
    assert _u(s, RW) == 5


def test_arithmetic() -> None:
    s = shadow()
    vec = call(add(RW, -1, 1),                           # wraps to 0xff
               Op(co.CPU_XOR_OP, 2, RW + 8, 0, 0xFFFF_0F0F),
               add(RW + 16, 1, 4), Op(co.CPU_LSHIFT_OP, 4, RW + 16, 0, 31),
               Op(co.CPU_RSHIFT_OP, 4, RW + 16, 0, 4),
               Op(co.CPU_OR_OP, 8, RW + 24, 0, 0xF0), Op(co.CPU_AND_OP, 8, RW + 24, 0, 0x3C),
               memcpy(RW + P - 4, RW + 24, 8),               # across a page boundary
               Op(co.CPU_MB_OP, 0), Op(co.CPU_ADD_RELEASE_OP, 8, RW + 32, 0, -(1 << 63)))
    assert predict(vec, s, CPUS).ret == 0
    assert _u(s, RW, 1) == 0xFF
    assert _u(s, RW + 8, 2) == 0x0F0F
    assert _u(s, RW + 16, 4) == 0x0800_0000            # (1 << 31) >> 4: logical
    assert _u(s, RW + 24) == 0x30 and _u(s, RW + P - 4) == 0x30
    assert _u(s, RW + 32) == 1 << 63


def test_rollback_undoes_a_predicted_success() -> None:
    """When the kernel fails a call the model let succeed, the runner takes
    the effect back out before it reports."""
    s = shadow()
    before = s.snapshot()
    predict(call(add(RW, 3), memcpy(SHM, RW)), s, CPUS)
    assert s.snapshot() != before
    s.rollback()
    assert s.snapshot() == before
