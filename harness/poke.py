"""poke: send one cpu_opv vector by hand and see what it did.

    python3 -m harness.poke --cpu 1 --init a=7 'add u64 @a 5' 'cmpeq u64 @a @b'
    python3 -m harness.poke --repl

Ops (one per argument):  add|add_release|or|and|xor|lshift|rshift TYPE @p N
                         cmpeq|cmpne|memcpy|memcpy_release LEN @x @y
                         mb
TYPE is u8/u16/u32/u64 (or 1/2/4/8); LEN is a type or a byte count 1..4096.
Operands are named scratch buffers, @name or @name+OFFSET, created on demand
in one mmap (zero-filled unless --init name=INT (stored as little-endian u64)
or --init name=hex:BYTES).

Exit: 0 all ops ran, 1 a compare stopped the vector or the kernel returned an
errno, 2 bad input or not a cpu_opv kernel (nothing sent).
"""

from __future__ import annotations

import argparse
import code
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.abi import cpu_opv as co
from harness.abi import memory, rseq, sched
from harness.abi.memory import Region

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

TYPES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}
SLOT = 2 * memory.PAGE_SIZE   # bytes per scratch buffer: room for a 4096 operand
SHOW_MAX = 64                 # bytes of a buffer printed at most

Ctor = Callable[[int, int, int], co.CpuOp]
# scalar ops read 'OP TYPE @p N'; data ops 'OP LEN @x @y'
SCALAR: dict[str, Ctor] = {
    "add": co.add, "add_release": co.add_release, "or": co.or_, "and": co.and_,
    "xor": co.xor, "lshift": co.lshift, "rshift": co.rshift}
DATA: dict[str, Ctor] = {
    "cmpeq": co.compare_eq, "cmpne": co.compare_ne, "memcpy": co.memcpy,
    "memcpy_release": co.memcpy_release}
OPERAND = re.compile(r"@([A-Za-z_]\w*)(?:\+(\w+))?$")


class PokeError(Exception):
    """Bad input: printed as one line, exit 2, nothing sent."""


@dataclass(frozen=True)
class Operand:
    buf: str
    offset: int


@dataclass(frozen=True)
class OpSpec:
    name: str
    length: int
    operands: tuple[Operand, ...]
    arg: int | None        # count, mask or bits for the scalar ops


def parse_int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise PokeError(f"bad number {text!r} for {what}") from None


def parse_len(text: str, op: str, scalar: bool) -> int:
    if text in TYPES:
        return TYPES[text]
    if not re.fullmatch(r"(0x)?[0-9a-fA-F]+", text):
        raise PokeError(f"{op}: impossible length {text!r} (u8, u16, u32, u64 or bytes)")
    n = parse_int(text, f"{op} length")
    if scalar and n not in co.SCALAR_LENS:
        raise PokeError(f"{op}: impossible length {text!r} (use u8, u16, u32, u64)")
    if not scalar and not 1 <= n <= co.CPU_OP_DATA_LEN_MAX:
        raise PokeError(f"{op}: impossible length {text!r} "
                        f"(1..{co.CPU_OP_DATA_LEN_MAX} bytes)")
    return n


def parse_operand(text: str, op: str, length: int) -> Operand:
    m = OPERAND.match(text)
    if not m:
        raise PokeError(f"{op}: {text!r} is not a buffer (write @name or @name+OFFSET)")
    off = parse_int(m.group(2), f"offset of @{m.group(1)}") if m.group(2) else 0
    if not 0 <= off <= SLOT - length:
        raise PokeError(f"{op}: offset {off} of @{m.group(1)} outside its "
                        f"{SLOT}-byte buffer for a {length}-byte operand")
    return Operand(m.group(1), off)


def parse_op(text: str) -> OpSpec:
    words = text.split()
    if not words:
        raise PokeError("empty op")
    name, rest = words[0], words[1:]
    if name == "mb":
        if rest:
            raise PokeError(f"mb takes no arguments, got {' '.join(rest)!r}")
        return OpSpec("mb", 0, (), None)
    if name in SCALAR:
        if len(rest) != 3:
            raise PokeError(f"{name}: expected '{name} TYPE @p N', got {text!r}")
        length = parse_len(rest[0], name, scalar=True)
        arg = parse_int(rest[2], f"{name} argument")
        if name in ("lshift", "rshift") and not 0 <= arg < 8 * length:
            raise PokeError(f"{name}: shift by {arg} impossible for {8 * length} bits")
        return OpSpec(name, length, (parse_operand(rest[1], name, length),), arg)
    if name in DATA:
        if len(rest) != 3:
            raise PokeError(f"{name}: expected '{name} LEN @x @y', got {text!r}")
        length = parse_len(rest[0], name, scalar=False)
        ops = tuple(parse_operand(r, name, length) for r in rest[1:])
        return OpSpec(name, length, ops, None)
    known = ", ".join(sorted([*SCALAR, *DATA, "mb"]))
    raise PokeError(f"unknown op {name!r} (known: {known})")


def parse_init(text: str) -> tuple[str, bytes]:
    name, eq, value = text.partition("=")
    name = name.lstrip("@")
    if not eq or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise PokeError(f"--init {text!r}: expected NAME=INT or NAME=hex:BYTES")
    if value.startswith("hex:"):
        try:
            data = bytes.fromhex(value[4:])
        except ValueError:
            raise PokeError(f"--init {text!r}: bad hex bytes") from None
        if len(data) > SLOT:
            raise PokeError(f"--init {text!r}: over the {SLOT}-byte buffer")
        return name, data
    n = parse_int(value, f"--init {name}")
    if not -(2**63) <= n < 2**64:
        raise PokeError(f"--init {text!r}: does not fit in 64 bits")
    return name, (n & (2**64 - 1)).to_bytes(8, sys.byteorder)


class Scratch:
    """Named buffers, one SLOT each, all in one mapping."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(dict.fromkeys(names))
        self.region = Region(max(1, len(self.names)) * SLOT, fill=0)
        self.shown = dict.fromkeys(self.names, 8)

    def addr(self, o: Operand) -> int:
        return self.region.at(self.names.index(o.buf) * SLOT + o.offset)

    def show(self, title: str) -> None:
        print(title)
        for name in self.names:
            n = min(self.shown[name], SHOW_MAX)
            data = self.region.read(self.names.index(name) * SLOT, n)
            more = "..." if self.shown[name] > n else ""
            val = f" = {int.from_bytes(data[:8], sys.byteorder):#x}" if n >= 8 else ""
            print(f"  @{name}: {data.hex(' ')}{more}{val}")


def build(spec: OpSpec, s: Scratch) -> co.CpuOp:
    for o in spec.operands:
        s.shown[o.buf] = max(s.shown[o.buf], o.offset + spec.length)
    if spec.name == "mb":
        return co.mb()
    addrs = [s.addr(o) for o in spec.operands]
    if spec.name in SCALAR:
        assert spec.arg is not None
        return SCALAR[spec.name](addrs[0], spec.arg, spec.length)
    return DATA[spec.name](addrs[0], addrs[1], spec.length)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m harness.poke", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", type=int, help="target CPU (default: the current one)")
    p.add_argument("--init", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--repl", action="store_true", help="Python REPL with the helpers")
    p.add_argument("ops", nargs="*", help="ops, one per argument")
    return p.parse_args(argv)


REPL_BANNER = """cpu_opv REPL ({probe}).  Preloaded: co (harness.abi.cpu_opv), rseq, sched,
memory, Region.  Try:
  r = Region.pages(1); p = r.at(0)
  co.cpu_opv([co.add(p, 5, 8)], sched.getcpu()[0]); r.read(0, 8)"""


def repl(probe: int) -> int:
    ns = {"co": co, "rseq": rseq, "sched": sched, "memory": memory, "Region": Region}
    code.interact(banner=REPL_BANNER.format(probe=f"NR_CPU_OPS={probe}"), local=ns,
                  exitmsg="")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        specs = [parse_op(t) for t in args.ops]
        inits = [parse_init(t) for t in args.init]
        if not specs and not args.repl:
            raise PokeError("no ops given (see --help)")
        if len(specs) > co.CPU_OP_VEC_LEN_MAX:
            raise PokeError(f"{len(specs)} ops, at most {co.CPU_OP_VEC_LEN_MAX}")
        if args.cpu is not None and args.cpu < 0:
            raise PokeError(f"--cpu {args.cpu}: negative")
        used = {o.buf for s in specs for o in s.operands}
        for name, _ in inits:
            if name not in used:
                raise PokeError(f"--init: unknown buffer @{name} (no op uses it)")
    except PokeError as e:
        print(f"poke: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        probe = co.probe()   # before anything reaches syscall 463
    except co.ProbeError as e:
        print(f"poke: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.repl:
        return repl(probe)
    names = [n for n, _ in inits] + [o.buf for s in specs for o in s.operands]
    scratch = Scratch(names)
    for name, data in inits:
        scratch.region.write(scratch.names.index(name) * SLOT, data)
        scratch.shown[name] = max(scratch.shown[name], len(data))
    ops = [build(s, scratch) for s in specs]
    cpu = sched.getcpu()[0] if args.cpu is None else args.cpu
    try:
        co.validate_vector(ops)
        co.validate_cpu(cpu)
    except ValueError as e:
        print(f"poke: {e}", file=sys.stderr)
        return EXIT_USAGE
    scratch.show("before:")
    try:
        res = co.cpu_opv(ops, cpu)
    except co.CpuOpvError as e:
        scratch.show("after:")
        print(f"result: -1 {e.name} ({e.strerror})")
        return EXIT_FAILED
    scratch.show("after:")
    print(f"result: {res}")
    return EXIT_OK if res.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
