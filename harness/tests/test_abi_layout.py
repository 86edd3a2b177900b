"""Host test: the ctypes mirrors and the syscall table against C and the tree.

* ctypes only describes the host ABI, so the expected layout of each
  architecture is computed from the ctypes field tables with that ABI's
  alignment rules (layout_of), checked against the ABI doc's offsets, and
  then against what each (cross) compiler says about the uapi header:
  `gcc -S` of an array of sizeof/offsetof values, so no foreign binary runs.
* The C side uses include/uapi/linux/cpu_opv.h of the patched tree
  ($CPU_OPV_KSRC, else build/src/patched, else build/src/dev); while the
  series has not reached the header yet, a C copy of the ABI doc's layout
  (DOC_HEADER below) stands in, and the test ids say "doc-copy".
* The syscall table is checked against the same tree's .tbl files.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from harness import REPO
from harness import arch as arches
from harness.abi import cpu_opv, rseq, syscalls


def ksrc() -> tuple[Path | None, bool]:
    """(tree, final): final is False for build/src/dev, the tree the series
    is being written in, where a missing cpu_opv table entry only means
    "not written yet" and skips instead of failing."""
    for cand, final in ((os.environ.get("CPU_OPV_KSRC"), True),
                        (REPO / "build/src/patched", True),
                        (REPO / "build/src/dev", False)):
        if cand and (Path(cand) / "Makefile").is_file():
            return Path(cand), final
    return None, False


KSRC, KSRC_FINAL = ksrc()
CPU_OPV_H = KSRC / "include/uapi/linux/cpu_opv.h" if KSRC else None
HAVE_HEADER = CPU_OPV_H is not None and CPU_OPV_H.is_file()
HEADER_ID = "tree-header" if HAVE_HEADER else "doc-copy"


# ---- per-ABI layout computed from the ctypes field tables --------------------

@dataclass(frozen=True)
class Abi:
    name: str
    compiler: str
    cflags: tuple[str, ...]
    u64_align: int   # the one difference among our ABIs: i386 aligns __u64 to 4


def _abis() -> dict[str, Abi]:
    """Every ABI of every architecture, from vm/arch/<name>.toml."""
    found = {}
    for name in arches.names():
        a = arches.get(name)
        for abi in a.abis:
            # An ABI with a compiler of its own (i386: i686-linux-gnu-gcc)
            # needs no multilib headers for the host's gcc.
            found[abi.name] = Abi(abi.name, f"{abi.cross_compile or a.cross_compile}gcc",
                                  abi.cflags, abi.u64_align)
    return found


ABIS = _abis()

def _size_align(t: Any, abi: Abi) -> tuple[int, int]:
    if issubclass(t, ctypes.Array):
        size, align = _size_align(t._type_, abi)
        return size * t._length_, align
    if issubclass(t, ctypes.Structure | ctypes.Union):
        size, align, _ = layout_of(t, abi)
        return size, align
    size = ctypes.sizeof(t)
    return size, (abi.u64_align if size == 8 else size)


@cache
def layout_of(t: Any, abi: Abi) -> tuple[int, int, dict[str, int]]:
    """(sizeof, alignof, {dotted member path: offset}) of a ctypes struct or
    union laid out under `abi`; the class attribute `_align_` stands for a
    C __attribute__((aligned(n))) (ctypes itself applies it only from
    Python 3.13 on)."""
    offsets: dict[str, int] = {}
    is_union = issubclass(t, ctypes.Union)
    pos, align = 0, 1
    for name, ftype in t._fields_:
        fsize, falign = _size_align(ftype, abi)
        off = 0 if is_union else -(-pos // falign) * falign
        offsets[name] = off
        if issubclass(ftype, ctypes.Structure | ctypes.Union):
            for sub, suboff in layout_of(ftype, abi)[2].items():
                offsets[f"{name}.{sub}"] = off + suboff
        pos = max(pos, fsize) if is_union else off + fsize
        align = max(align, falign)
    align = max(align, getattr(t, "_align_", 1))
    return -(-pos // align) * align, align, offsets


STRUCTS: dict[str, type[ctypes.Structure]] = {
    "cpu_op": cpu_opv.CpuOp, "rseq": rseq.Rseq, "rseq_cs": rseq.RseqCs}

# Offsets of the struct in docs/man/cpu_opv.2 ("the same layout for 32-bit
# and 64-bit processes") and in the series' cpu_opv.rst (patches/0007).
DOC_CPU_OP = {
    "op": 0, "len": 4, "u": 8,
    "u.compare_op.a": 8, "u.compare_op.b": 16,
    "u.compare_op.expect_fault_a": 24, "u.compare_op.expect_fault_b": 25,
    "u.memcpy_op.dst": 8, "u.memcpy_op.src": 16,
    "u.memcpy_op.expect_fault_dst": 24, "u.memcpy_op.expect_fault_src": 25,
    "u.arithmetic_op.p": 8, "u.arithmetic_op.count": 16,
    "u.arithmetic_op.expect_fault_p": 24,
    "u.bitwise_op.p": 8, "u.bitwise_op.mask": 16, "u.bitwise_op.expect_fault_p": 24,
    "u.shift_op.p": 8, "u.shift_op.bits": 16, "u.shift_op.expect_fault_p": 20,
}
DOC_RSEQ = {"cpu_id_start": 0, "cpu_id": 4, "rseq_cs": 8, "flags": 16,
            "node_id": 20, "mm_cid": 24}


@pytest.mark.parametrize("abi", list(ABIS))
def test_computed_layout_matches_doc(abi: str) -> None:
    size, _, offs = layout_of(cpu_opv.CpuOp, ABIS[abi])
    assert size == 32
    got = {k: offs[k] for k in DOC_CPU_OP}
    assert got == DOC_CPU_OP
    size, align, offs = layout_of(rseq.Rseq, ABIS[abi])
    assert (size, align) == (32, 32)
    assert {k: offs[k] for k in DOC_RSEQ} == DOC_RSEQ


def test_engine_agrees_with_ctypes_on_host() -> None:
    # The engine must reproduce what ctypes itself does for the host ABI
    # (except the declared 32-byte alignment, which ctypes applies only
    # from Python 3.13 on).
    host = ABIS[syscalls.arch_name()]
    for t in (cpu_opv.CpuOp, cpu_opv.CpuOpArgs, cpu_opv.ShiftOp):
        assert layout_of(t, host)[0] == ctypes.sizeof(t), t.__name__
    for name, off in DOC_CPU_OP.items():
        obj: Any = cpu_opv.CpuOp
        total = 0
        for part in name.split("."):
            desc = getattr(obj, part)
            total += desc.offset
            obj = dict(obj._fields_)[part]
        assert total == off, name


# ---- the C compiler's view -----------------------------------------------------

DOC_HEADER = """
/* C copy of the struct cpu_op in docs/man/cpu_opv.2, used until the
 * patched tree has include/uapi/linux/cpu_opv.h. */
#include <linux/types.h>
struct cpu_op {
    __s32 op;
    __u32 len;
    union {
        struct { __u64 a; __u64 b; __u8 expect_fault_a; __u8 expect_fault_b; } compare_op;
        struct { __u64 dst; __u64 src; __u8 expect_fault_dst; __u8 expect_fault_src; } memcpy_op;
        struct { __u64 p; __s64 count; __u8 expect_fault_p; } arithmetic_op;
        struct { __u64 p; __u64 mask; __u8 expect_fault_p; } bitwise_op;
        struct { __u64 p; __u32 bits; __u8 expect_fault_p; } shift_op;
        char __padding[24];
    } u;
};
"""

BIAS = 1000  # keeps every value non-zero, so gcc emits it as a plain .long


RSEQ_H = KSRC / "include/uapi/linux/rseq.h" if KSRC else None
# Without a 6.12 tree there is no rseq.h to compare with: the host's
# (Debian 12: Linux 6.1 headers) predates node_id and mm_cid.
CHECKED = [s for s in STRUCTS if s == "cpu_op" or (RSEQ_H is not None and RSEQ_H.is_file())]


def _queries() -> list[tuple[str, str]]:
    """(key, C expression) for every size, alignment and offset checked."""
    q = []
    for sname, t in STRUCTS.items():
        if sname not in CHECKED:
            continue
        q.append((f"{sname}:sizeof", f"sizeof(struct {sname})"))
        q.append((f"{sname}:alignof", f"_Alignof(struct {sname})"))
        for path in layout_of(t, ABIS["x86_64"])[2]:
            if "__padding" in path:
                continue  # our name for the padding member; the header's may differ
            q.append((f"{sname}.{path}", f"offsetof(struct {sname}, {path})"))
    return q


def _source() -> str:
    head = f'#include "{CPU_OPV_H}"\n' if HAVE_HEADER else DOC_HEADER
    if RSEQ_H is not None and RSEQ_H.is_file():
        head += f'#include "{RSEQ_H}"\n'
    values = ",\n".join(f"  {BIAS} + {expr}" for _, expr in _queries())
    return f"#include <stddef.h>\n{head}\nconst unsigned int layout_values[] = {{\n{values}\n}};\n"


@cache
def compiled_layout(abi_name: str) -> dict[str, int]:
    abi = ABIS[abi_name]
    if shutil.which(abi.compiler) is None:
        pytest.skip(f"{abi.compiler} not installed")
    proc = subprocess.run(
        [abi.compiler, *abi.cflags, "-x", "c", "-std=gnu11", "-O0", "-S", "-o", "-", "-"],
        input=_source(), capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0 and abi.cflags and "No such file" in proc.stderr:
        pytest.skip(f"{abi.compiler} {' '.join(abi.cflags)}: no headers for it "
                    f"(multilib not installed): {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    body = proc.stdout.split("layout_values:", 1)[1]
    nums = [int(m.group(1)) for m in re.finditer(
        r"^\s*\.(?:long|word|4byte|int)\s+(\d+)\s*$", body, re.M)]
    keys = [k for k, _ in _queries()]
    assert len(nums) >= len(keys), f"parsed {len(nums)} values from:\n{body[:500]}"
    return {k: v - BIAS for k, v in zip(keys, nums, strict=False)}


@pytest.mark.parametrize("struct", list(STRUCTS))
@pytest.mark.parametrize("abi", list(ABIS))
@pytest.mark.parametrize("header", [HEADER_ID])
def test_c_layout_matches_ctypes(abi: str, struct: str, header: str) -> None:
    if struct not in CHECKED:
        pytest.skip("no kernel tree with the 6.12 rseq.h: `make patch` makes one")
    c = compiled_layout(abi)
    size, align, offs = layout_of(STRUCTS[struct], ABIS[abi])
    want = {f"{struct}:sizeof": size, f"{struct}:alignof": align}
    want.update({f"{struct}.{p}": o for p, o in offs.items() if "__padding" not in p})
    got = {k: c[k] for k in want}
    diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not diff, f"{abi} ({header}): field: (ctypes-derived, C) {diff}"


# ---- the syscall table against the tree's .tbl files ------------------------------

# ABI column values that apply to each of our tables' targets.
TBL_ABIS = {"x86_64": {"common", "64"}, "i386": {"i386"},
            "arm64": {"common", "64", "renameat", "rlimit", "memfd_secret"},
            "arm": {"common"}, "powerpc": {"common", "64", "nospu"}}


def _tbl(path: Path) -> dict[tuple[str, str], int]:
    out = {}
    for line in path.read_text().splitlines():
        cols = line.split("#", 1)[0].split()
        if len(cols) >= 3:
            out[(cols[2], cols[1])] = int(cols[0])
    return out


def _syscall_rows() -> list[tuple[str, str]]:
    return [(arch, name) for arch, t in syscalls.TABLES.items() for name in t.numbers]


@pytest.mark.parametrize(("arch", "name"), _syscall_rows())
def test_syscall_number_matches_tree(arch: str, name: str) -> None:
    if KSRC is None:
        pytest.skip("no kernel tree: set CPU_OPV_KSRC or create build/src/patched")
    t = syscalls.TABLES[arch]
    if name == "cpu_opv" and not HAVE_HEADER:
        pytest.skip(f"{KSRC} has no include/uapi/linux/cpu_opv.h yet: the series "
                    "has not added cpu_opv, nothing to compare")
    entries = _tbl(KSRC / t.table)
    found = {nr for (n, abi), nr in entries.items() if n == name and abi in TBL_ABIS[arch]}
    if not found and name == "cpu_opv" and not KSRC_FINAL:
        pytest.skip(f"{KSRC} is the work-in-progress tree and {t.table} has no "
                    "cpu_opv yet; build/src/patched or CPU_OPV_KSRC is checked strictly")
    assert found == {t.numbers[name]}, \
        f"{arch}: {name} is {sorted(found) or 'absent'} in {KSRC / t.table}, " \
        f"harness says {t.numbers[name]}"


def test_machine_lookup() -> None:
    assert syscalls.nr("rseq", "x86_64") == 334
    assert syscalls.nr("cpu_opv", "aarch64") == 463
    with pytest.raises(syscalls.UnsupportedArch, match="s390x"):
        syscalls.nr("rseq", "s390x")


def test_rseq_area_is_aligned_where_ctypes_is_not() -> None:
    """struct rseq's 32-byte alignment: ctypes applies `_align_` only from
    Python 3.13 on, so what reaches the kernel is RseqArea's storage."""
    want = 32 if sys.version_info >= (3, 13) else ctypes.alignment(ctypes.c_uint64)
    assert ctypes.alignment(rseq.Rseq) == want
    area = rseq.RseqArea()
    try:
        assert area.addr % rseq.RSEQ_ALIGN == 0
        assert ctypes.addressof(area.area) == area.addr
    finally:
        area.close()
