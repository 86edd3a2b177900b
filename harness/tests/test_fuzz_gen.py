"""The fuzzer's generator: deterministic for a seed, and covering every
class of input the issue asks for (harness/fuzz/gen.py)."""

from __future__ import annotations

from collections import Counter

from harness.abi import cpu_opv as co
from harness.fuzz import layout as lay
from harness.fuzz.gen import Generator
from harness.fuzz.model import Shadow, errors, predict
from harness.fuzz.vector import Call, encode, operands
from harness.fuzz.workers import cpus_for, split, stream_seeds
from harness.tests.fuzz_fake import CPUS, contents

LAYOUT = lay.plan()


def calls(seed: int, n: int) -> list[Call]:
    g = Generator(seed, LAYOUT, CPUS)
    return [g.next() for _ in range(n)]


def test_same_seed_same_calls() -> None:
    a, b = calls(7, 3000), calls(7, 3000)
    assert a == b
    assert [encode(c.ops) for c in a] == [encode(c.ops) for c in b]


def test_other_seed_other_calls() -> None:
    assert calls(7, 50) != calls(8, 50)


def test_state_round_trip() -> None:
    """What the runner uses to replay a batch."""
    g = Generator(3, LAYOUT, CPUS)
    for _ in range(100):
        g.next()
    state = g.getstate()
    first = [g.next() for _ in range(200)]
    g.setstate(state)
    assert [g.next() for _ in range(200)] == first


def test_coverage() -> None:
    """Every op type, length class, flag, CPU class, memory kind and
    defect shows up within 20,000 calls of one seed."""
    seen: Counter[str] = Counter()
    shadow = Shadow(LAYOUT, contents(LAYOUT, 5))
    for c in calls(5, 20_000):
        encode(c.ops)           # every field fits its C type
        seen[c.intent] += 1
        seen[f"flags {c.flags}"] += 1
        if c.cpu in CPUS.possible - CPUS.allowed:
            seen["cpu disallowed"] += 1
        elif c.cpu < 0 or c.cpu not in CPUS.possible:
            seen["cpu out of range"] += 1
        if sum(op.length for op in c.ops) == co.CPU_OP_VEC_DATA_LEN_MAX and len(c.ops) == 16:
            seen["full vector"] += 1
        for op in c.ops:
            seen[f"op {op.kind}"] += 1
            seen[f"len {op.length}"] += 1
            for addr, _, ef in operands(op):
                kind = LAYOUT.kind_at(addr)
                area = LAYOUT.area_at(addr)
                seen[f"kind {kind.value if kind else None}"] += 1
                seen[f"area {area.name if area else 'beyond'}"] += 1
                if ef:
                    seen["expect_fault"] += 1
                if addr // lay.PAGE != (addr + op.length - 1) // lay.PAGE:
                    seen["page crossing"] += 1
        if c.intent == "valid":
            assert errors(c, LAYOUT, CPUS) is None, c
            seen[f"ret {predict(c, shadow, CPUS).ret and 'stopped'}"] += 1
    want = [f"op {k}" for k in range(co.NR_CPU_OPS)] + [
        "len 1", "len 2", "len 4", "len 8", "len 4096", "len 0", "len 3",
        "flags 1", "flags 2", "flags 3", "cpu disallowed", "cpu out of range", "full vector",
        "page crossing", "expect_fault", "short-opcnt", "probe", "bad-flags", "bad-several",
        "ret 0", "ret stopped"]
    want += [f"bad-{d}" for d in ("opcnt", "cpu", "vector", "op", "len", "bits", "total",
                                  "fault")]
    want += [f"kind {k.value}" for k in lay.Kind]
    want += [f"area {w.name}" for w in LAYOUT.areas if w.name != "vector"]
    missing = [w for w in want if not seen[w]]
    assert not missing, missing


def test_streams() -> None:
    seeds = stream_seeds(42, 3)
    assert seeds[0] == 42 and len(set(seeds)) == 3 and seeds == stream_seeds(42, 3)
    assert split(10, 3) == [4, 3, 3] and sum(split(100_001, 4)) == 100_001


def test_affinity_keeps_cpu0() -> None:
    for seed in range(20):
        c = cpus_for(seed, [0, 1, 2, 3])
        assert 0 in c.allowed and len(c.allowed) == 3
