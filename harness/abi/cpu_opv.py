"""ctypes bindings for cpu_opv(2) (syscall 463 on a patched 6.12).

`struct cpu_op` mirrors include/uapi/linux/cpu_opv.h field by field (layout:
docs/man/cpu_opv.2 and the series' Documentation/userspace-api/cpu_opv.rst,
patches/0007; harness/tests/test_abi_layout.py checks it against the C
compiler).  Syscall 463 is setxattrat on 6.13+, so no vector leaves this
module before probe() has seen the cpu_opv answer (NR_CPU_OPS == 12).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass

from harness.abi import sched, syscalls
from harness.abi.libc import SyscallError, errno_name, raw_syscall
from harness.abi.memory import PAGE_SIZE

# enum cpu_op_type (values fixed by the ABI)
CPU_COMPARE_EQ_OP = 0
CPU_COMPARE_NE_OP = 1
CPU_MEMCPY_OP = 2
CPU_ADD_OP = 3
CPU_OR_OP = 4
CPU_AND_OP = 5
CPU_XOR_OP = 6
CPU_LSHIFT_OP = 7
CPU_RSHIFT_OP = 8
CPU_MB_OP = 9
CPU_MEMCPY_RELEASE_OP = 10
CPU_ADD_RELEASE_OP = 11
NR_CPU_OPS = 12

OP_NAMES: dict[int, str] = {
    CPU_COMPARE_EQ_OP: "compare_eq", CPU_COMPARE_NE_OP: "compare_ne",
    CPU_MEMCPY_OP: "memcpy", CPU_ADD_OP: "add", CPU_OR_OP: "or",
    CPU_AND_OP: "and", CPU_XOR_OP: "xor", CPU_LSHIFT_OP: "lshift",
    CPU_RSHIFT_OP: "rshift", CPU_MB_OP: "mb",
    CPU_MEMCPY_RELEASE_OP: "memcpy_release", CPU_ADD_RELEASE_OP: "add_release",
}

# Flags
CPU_OP_NR_FLAG = 1 << 0
CPU_OP_VEC_LEN_MAX_FLAG = 1 << 1
# The flags that turn a call into a query (they take no vector).
PROBE_FLAGS = CPU_OP_NR_FLAG | CPU_OP_VEC_LEN_MAX_FLAG

# Limits
CPU_OP_VEC_LEN_MAX = 16
CPU_OP_DATA_LEN_MAX = 4096
CPU_OP_ARG_LEN = 24                   # size of the union
CPU_OP_VEC_DATA_LEN_MAX = CPU_OP_DATA_LEN_MAX + (CPU_OP_VEC_LEN_MAX - 1) * 8
CPU_OP_MAX_PAGES = 2                  # pages one operand may span
SCALAR_LENS = (1, 2, 4, 8)

DATA_OPS = frozenset({CPU_COMPARE_EQ_OP, CPU_COMPARE_NE_OP, CPU_MEMCPY_OP,
                      CPU_MEMCPY_RELEASE_OP})
ARITH_OPS = frozenset({CPU_ADD_OP, CPU_ADD_RELEASE_OP})
BITWISE_OPS = frozenset({CPU_OR_OP, CPU_AND_OP, CPU_XOR_OP})
SHIFT_OPS = frozenset({CPU_LSHIFT_OP, CPU_RSHIFT_OP})
COMPARE_OPS = frozenset({CPU_COMPARE_EQ_OP, CPU_COMPARE_NE_OP})


# Pointers are __u64 in every member so that 32-bit and 64-bit processes
# share one layout (no compat syscall).  The explicit padding member keeps
# the union 24 bytes where __u64 is only 4-byte aligned (i386).
class CompareOp(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint64), ("b", ctypes.c_uint64),
                ("expect_fault_a", ctypes.c_uint8),
                ("expect_fault_b", ctypes.c_uint8)]


class MemcpyOp(ctypes.Structure):
    _fields_ = [("dst", ctypes.c_uint64), ("src", ctypes.c_uint64),
                ("expect_fault_dst", ctypes.c_uint8),
                ("expect_fault_src", ctypes.c_uint8)]


class ArithmeticOp(ctypes.Structure):
    _fields_ = [("p", ctypes.c_uint64), ("count", ctypes.c_int64),
                ("expect_fault_p", ctypes.c_uint8)]


class BitwiseOp(ctypes.Structure):
    _fields_ = [("p", ctypes.c_uint64), ("mask", ctypes.c_uint64),
                ("expect_fault_p", ctypes.c_uint8)]


class ShiftOp(ctypes.Structure):
    _fields_ = [("p", ctypes.c_uint64), ("bits", ctypes.c_uint32),
                ("expect_fault_p", ctypes.c_uint8)]


class CpuOpArgs(ctypes.Union):
    _fields_ = [("compare_op", CompareOp), ("memcpy_op", MemcpyOp),
                ("arithmetic_op", ArithmeticOp), ("bitwise_op", BitwiseOp),
                ("shift_op", ShiftOp),
                ("__padding", ctypes.c_char * CPU_OP_ARG_LEN)]


class CpuOp(ctypes.Structure):
    _fields_ = [("op", ctypes.c_int32), ("len", ctypes.c_uint32),
                ("u", CpuOpArgs)]

    def __repr__(self) -> str:
        return describe(self)


def _operands(op: CpuOp) -> list[tuple[str, int]]:
    """(role, address) of each memory operand of `op`."""
    u = op.u
    if op.op in COMPARE_OPS:
        return [("a", u.compare_op.a), ("b", u.compare_op.b)]
    if op.op in (CPU_MEMCPY_OP, CPU_MEMCPY_RELEASE_OP):
        return [("dst", u.memcpy_op.dst), ("src", u.memcpy_op.src)]
    if op.op in ARITH_OPS | BITWISE_OPS | SHIFT_OPS:
        return [("p", u.arithmetic_op.p)]  # p is at offset 8 in all three
    return []


def describe(op: CpuOp) -> str:
    name = OP_NAMES.get(op.op, f"op {op.op}")
    u = op.u
    args = [f"{role}={addr:#x}" for role, addr in _operands(op)]
    if op.op in ARITH_OPS:
        args.append(f"count={u.arithmetic_op.count}")
    elif op.op in BITWISE_OPS:
        args.append(f"mask={u.bitwise_op.mask:#x}")
    elif op.op in SHIFT_OPS:
        args.append(f"bits={u.shift_op.bits}")
    return f"{name}(len={op.len}{''.join(', ' + a for a in args)})"


# ---- op constructors: addresses are plain ints ----------------------------

def _compare(kind: int, a: int, b: int, length: int,
             expect_fault_a: bool, expect_fault_b: bool) -> CpuOp:
    op = CpuOp(op=kind, len=length)
    op.u.compare_op = CompareOp(a, b, expect_fault_a, expect_fault_b)
    return op


def compare_eq(a: int, b: int, length: int, *, expect_fault_a: bool = False,
               expect_fault_b: bool = False) -> CpuOp:
    """Stop the vector here unless the `length` bytes at a and b are equal."""
    return _compare(CPU_COMPARE_EQ_OP, a, b, length, expect_fault_a, expect_fault_b)


def compare_ne(a: int, b: int, length: int, *, expect_fault_a: bool = False,
               expect_fault_b: bool = False) -> CpuOp:
    """Stop the vector here if the `length` bytes at a and b are equal."""
    return _compare(CPU_COMPARE_NE_OP, a, b, length, expect_fault_a, expect_fault_b)


def _memcpy(kind: int, dst: int, src: int, length: int,
            expect_fault_dst: bool, expect_fault_src: bool) -> CpuOp:
    op = CpuOp(op=kind, len=length)
    op.u.memcpy_op = MemcpyOp(dst, src, expect_fault_dst, expect_fault_src)
    return op


def memcpy(dst: int, src: int, length: int, *, expect_fault_dst: bool = False,
           expect_fault_src: bool = False) -> CpuOp:
    return _memcpy(CPU_MEMCPY_OP, dst, src, length, expect_fault_dst, expect_fault_src)


def memcpy_release(dst: int, src: int, length: int, *, expect_fault_dst: bool = False,
                   expect_fault_src: bool = False) -> CpuOp:
    return _memcpy(CPU_MEMCPY_RELEASE_OP, dst, src, length,
                   expect_fault_dst, expect_fault_src)


def _arith(kind: int, p: int, count: int, length: int, expect_fault_p: bool) -> CpuOp:
    op = CpuOp(op=kind, len=length)
    op.u.arithmetic_op = ArithmeticOp(p, count, expect_fault_p)
    return op


def add(p: int, count: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _arith(CPU_ADD_OP, p, count, length, expect_fault_p)


def add_release(p: int, count: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _arith(CPU_ADD_RELEASE_OP, p, count, length, expect_fault_p)


def _bitwise(kind: int, p: int, mask: int, length: int, expect_fault_p: bool) -> CpuOp:
    op = CpuOp(op=kind, len=length)
    op.u.bitwise_op = BitwiseOp(p, mask & (2**64 - 1), expect_fault_p)
    return op


def or_(p: int, mask: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _bitwise(CPU_OR_OP, p, mask, length, expect_fault_p)


def and_(p: int, mask: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _bitwise(CPU_AND_OP, p, mask, length, expect_fault_p)


def xor(p: int, mask: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _bitwise(CPU_XOR_OP, p, mask, length, expect_fault_p)


def _shift(kind: int, p: int, bits: int, length: int, expect_fault_p: bool) -> CpuOp:
    op = CpuOp(op=kind, len=length)
    op.u.shift_op = ShiftOp(p, bits, expect_fault_p)
    return op


def lshift(p: int, bits: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _shift(CPU_LSHIFT_OP, p, bits, length, expect_fault_p)


def rshift(p: int, bits: int, length: int, *, expect_fault_p: bool = False) -> CpuOp:
    return _shift(CPU_RSHIFT_OP, p, bits, length, expect_fault_p)


def mb() -> CpuOp:
    return CpuOp(op=CPU_MB_OP, len=0)


# ---- validation ------------------------------------------------------------

def pages_spanned(addr: int, length: int) -> int:
    if length == 0:
        return 0
    return (addr + length - 1) // PAGE_SIZE - addr // PAGE_SIZE + 1


def validate_flags(flags: int) -> None:
    if flags & ~PROBE_FLAGS:
        raise ValueError(f"unknown flag bits {flags:#x}")
    if flags == PROBE_FLAGS:
        raise ValueError("CPU_OP_NR_FLAG and CPU_OP_VEC_LEN_MAX_FLAG together")


def validate_op(i: int, op: CpuOp) -> None:
    """Raise ValueError naming op #i and its problem (what the kernel EINVALs)."""
    where = f"op #{i} ({OP_NAMES.get(op.op, op.op)})"
    if op.op not in OP_NAMES:
        raise ValueError(f"{where}: unknown op (valid: 0..{NR_CPU_OPS - 1})")
    if op.op in DATA_OPS and op.len > CPU_OP_DATA_LEN_MAX:
        raise ValueError(f"{where}: len {op.len} over CPU_OP_DATA_LEN_MAX "
                         f"{CPU_OP_DATA_LEN_MAX}")
    if op.op in ARITH_OPS | BITWISE_OPS | SHIFT_OPS and op.len not in SCALAR_LENS:
        raise ValueError(f"{where}: len {op.len} not one of 1, 2, 4, 8")
    if op.op in SHIFT_OPS and op.u.shift_op.bits >= 8 * op.len:
        raise ValueError(f"{where}: shift by {op.u.shift_op.bits} bits, "
                         f"must be < {8 * op.len}")
    if op.op == CPU_MB_OP and op.len != 0:
        raise ValueError(f"{where}: len {op.len}, mb takes no operand (len 0)")
    for role, addr in _operands(op):
        if pages_spanned(addr, op.len) > CPU_OP_MAX_PAGES:
            raise ValueError(f"{where}: operand {role} at {addr:#x} len {op.len} "
                             f"spans more than {CPU_OP_MAX_PAGES} pages")


def validate_vector(ops: Sequence[CpuOp]) -> None:
    if len(ops) > CPU_OP_VEC_LEN_MAX:
        raise ValueError(f"{len(ops)} ops, over CPU_OP_VEC_LEN_MAX {CPU_OP_VEC_LEN_MAX}")
    for i, op in enumerate(ops):
        validate_op(i, op)
    total = sum(op.len for op in ops)
    if total > CPU_OP_VEC_DATA_LEN_MAX:
        raise ValueError(f"total len {total} over CPU_OP_VEC_DATA_LEN_MAX "
                         f"{CPU_OP_VEC_DATA_LEN_MAX}")


def validate_cpu(cpu: int) -> None:
    """User space can see what the kernel refuses: negative, not possible,
    or outside this thread's affinity mask."""
    if cpu < 0:
        raise ValueError(f"cpu {cpu} is negative")
    possible = os.sysconf("SC_NPROCESSORS_CONF")
    if cpu >= possible:
        raise ValueError(f"cpu {cpu} is not a possible CPU (0..{possible - 1})")
    # sched_getaffinity() only reports active CPUs, while the kernel keeps
    # offline CPUs in the mask (and cpu_opv accepts them): only an online
    # CPU missing from the mask is known to be refused.
    if cpu in sched.online_cpus() and cpu not in os.sched_getaffinity(0):
        raise ValueError(f"cpu {cpu} is outside this thread's affinity mask "
                         f"{sorted(os.sched_getaffinity(0))}")


# ---- the call ----------------------------------------------------------------

class CpuOpvError(SyscallError):
    """cpu_opv returned -1: .errno and .name say why."""


class ProbeError(RuntimeError):
    """The running kernel cannot take cpu_opv vectors; str() says why."""


class CpuOpvDisabled(ProbeError):
    """ENOSYS: syscall 463 exists in the table but CONFIG_CPU_OPV is off
    (or the kernel has no syscall 463 at all)."""


class NotCpuOpvKernel(ProbeError):
    """Syscall 463 answered, but not as cpu_opv (e.g. setxattrat on 6.13+)."""


_probed: int | None = None


def probe() -> int:
    """Return NR_CPU_OPS from `cpu_opv(NULL, 0, -1, CPU_OP_NR_FLAG)`.

    Raises CpuOpvDisabled on ENOSYS, NotCpuOpvKernel on any other answer
    than 12: an unexpected errno is never read as "unavailable".
    """
    global _probed
    ret, err = raw_syscall(syscalls.CPU_OPV_NR, None, 0, -1, CPU_OP_NR_FLAG)
    if ret == -1 and err == errno.ENOSYS:
        raise CpuOpvDisabled(
            "cpu_opv: ENOSYS: kernel built without CONFIG_CPU_OPV "
            f"(or it has no syscall {syscalls.CPU_OPV_NR})")
    if ret != NR_CPU_OPS:
        got = f"-1 {errno_name(err)}" if ret == -1 else str(ret)
        raise NotCpuOpvKernel(
            f"not a cpu_opv kernel: syscall {syscalls.CPU_OPV_NR} probe returned "
            f"{got}, expected {NR_CPU_OPS} (on 6.13+ it is setxattrat); "
            f"running {os.uname().release}")
    _probed = ret
    return ret


def call(vector: int | None, opcnt: int, cpu: int, flags: int) -> int:
    """The bare syscall: no validation; raise CpuOpvError on -1.

    Refuses (ProbeError) to send anything before probe() has succeeded.
    """
    if _probed is None:
        probe()
    ret, err = raw_syscall(syscalls.CPU_OPV_NR, vector, opcnt, cpu, flags)
    if ret == -1:
        raise CpuOpvError(err, "cpu_opv")
    return ret


@dataclass(frozen=True)
class OpvResult:
    """What a vector did: ret 0 = all ran, n > 0 = op n-1 (a compare) failed."""

    ret: int
    ops: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.ret == 0

    @property
    def failed_index(self) -> int | None:
        """0-based index of the compare that stopped the vector, or None."""
        return self.ret - 1 if self.ret > 0 else None

    def __str__(self) -> str:
        i = self.failed_index
        if i is None:
            return "0 (all ops ran)"
        what = self.ops[i] if i < len(self.ops) else "beyond the vector!"
        return f"compare #{self.ret} failed (op index {i}: {what})"


def vector(ops: Sequence[CpuOp]) -> ctypes.Array[CpuOp]:
    return (CpuOp * max(1, len(ops)))(*ops)


def cpu_opv(ops: Sequence[CpuOp], cpu: int, flags: int = 0, *,
            validate: bool = True, opcnt: int | None = None) -> OpvResult:
    """Run `ops` on `cpu`.  Raises ValueError (validated, nothing sent) or
    CpuOpvError (the kernel's errno).  validate=False sends what it is given
    (and `opcnt`, if set, instead of len(ops)) so tests can provoke errnos.
    """
    if validate:
        validate_flags(flags)
        if flags:
            raise ValueError("probe flags return a number, not an OpvResult: "
                             "use probe() / vec_len_max()")
        validate_vector(ops)
        validate_cpu(cpu)
    vec = vector(ops)
    n = len(ops) if opcnt is None else opcnt
    ret = call(ctypes.addressof(vec), n, cpu, flags)
    return OpvResult(ret, tuple(describe(op) for op in ops))


def vec_len_max() -> int:
    """CPU_OP_VEC_LEN_MAX as the kernel reports it."""
    return call(None, 0, -1, CPU_OP_VEC_LEN_MAX_FLAG)
