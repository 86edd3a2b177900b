"""make evaluate's results: cpu_opv_eval's JSON, from the guest, as one
record, a Markdown report and the verdicts drawn from it.

The guest writes one JSON object per mode of cpu_opv_eval (cost,
progress, ctxsw, maxvec) on the cpu_opv kernel, and ctxsw again on a
kernel without CONFIG_CPU_OPV.  Costs are ratios to a getppid() measured
in the same run (under QEMU TCG only ratios compare); progress is in
operations per second, where what matters is whether a scheme makes any.
The tables are in evaluate_report.py; this module reads and judges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import Blame, HarnessError

STAGE = "evaluate"
# ctxsw first: on a freshly booted guest, as on the kernel without cpu_opv.
MODES = ("ctxsw", "cost", "progress", "maxvec")
# The modes run on the kernel without CONFIG_CPU_OPV.
PLAIN_MODES = ("ctxsw",)

# The contenders, in the order of every table's columns.
SCHEMES = {
    "rseq": "rseq alone",
    "cpu_opv": "rseq + cpu_opv",
    "lock": "rseq + lock + membarrier",
    "dual": "dual counter",
    "atomic_pcpu": "atomics, per-CPU data",
    "atomic_shared": "atomics, shared data",
    "setaffinity": "sched_setaffinity there and back",
}

# Rows of the cost table: what each scheme runs for it (a cost case of
# cpu_opv_eval).  A fast-path row is the common case, nothing aborting; a
# slow-path row is what a scheme does when its fast path cannot complete
# (rseq alone has none: it retries); sched_setaffinity is listed with the
# slow paths, as what callers do without one.
COST_ROWS: dict[str, dict[str, str]] = {
    "counter, fast path": {
        "rseq": "counter.rseq", "cpu_opv": "counter.cpu_opv_fast",
        "lock": "counter.lock_fast", "dual": "counter.dual_fast",
        "atomic_pcpu": "counter.atomic_pcpu", "atomic_shared": "counter.atomic_shared"},
    "counter, slow path": {
        "cpu_opv": "counter.cpu_opv_slow", "lock": "counter.lock_slow",
        "dual": "counter.dual_slow", "setaffinity": "counter.setaffinity"},
    "spinlock, fast path": {
        "rseq": "lock.rseq", "cpu_opv": "lock.cpu_opv_fast", "lock": "lock.lock_fast",
        "atomic_pcpu": "lock.atomic_pcpu", "atomic_shared": "lock.atomic_shared"},
    "spinlock, slow path": {
        "cpu_opv": "lock.cpu_opv_slow", "lock": "lock.lock_slow",
        "setaffinity": "lock.setaffinity"},
    "list push+pop, fast path": {
        "rseq": "list.rseq", "cpu_opv": "list.cpu_opv_fast", "lock": "list.lock_fast",
        "atomic_pcpu": "list.atomic_pcpu", "atomic_shared": "list.atomic_shared"},
    "list push+pop, slow path": {
        "cpu_opv": "list.cpu_opv_slow", "lock": "list.lock_slow",
        "setaffinity": "list.setaffinity"},
    "another CPU's counter, a thread busy there": {
        "cpu_opv": "remote.cpu_opv", "lock": "remote.lock", "dual": "remote.dual",
        "atomic_pcpu": "remote.atomic_pcpu", "atomic_shared": "remote.atomic_shared",
        "setaffinity": "remote.setaffinity"},
    # Only the schemes that go through that CPU's scheduler or interrupt it.
    "another CPU's counter, that CPU idle": {
        "cpu_opv": "remote_idle.cpu_opv", "lock": "remote_idle.lock",
        "setaffinity": "remote_idle.setaffinity"},
}

CONDITIONS = {
    "quiet": "alone on its CPU",
    "storm": "preemption storm",
    "single_step": "ptrace single-step",
    "hotplug": "another CPU hot-unplugged",
}


class EvalError(HarnessError):
    """cpu_opv_eval failed in the guest or printed no usable output."""

    blame = Blame.TEST


@dataclass(frozen=True)
class Cell:
    """One scheme's number in a row; None where it could not run."""

    value: float | None
    note: str = ""         # why there is no value, or what qualifies it
    low: float | None = None
    high: float | None = None


def load(results: Path, modes: tuple[str, ...]) -> dict[str, Any]:
    """Each mode's JSON from the guest's results directory, checked."""
    out: dict[str, Any] = {}
    for mode in modes:
        path = results / f"{mode}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            err = results / f"{mode}.err"
            said = err.read_text(errors="replace").strip()[-300:] if err.exists() else ""
            raise EvalError(STAGE, f"no usable {mode} output in {path}: {e}"
                               + (f"; it said: {said}" if said else ""),
                               "see the console log: did cpu_opv_eval run?") from e
        if not isinstance(data, dict) or data.get("mode") != mode:
            raise EvalError(STAGE, f"{path} is not cpu_opv_eval {mode} output")
        out[mode] = data
    missing = [c for row in COST_ROWS.values() for c in row.values()
               if "cost" in out and c not in out["cost"].get("cases", {})]
    if missing:
        raise EvalError(STAGE, f"the cost output lacks {', '.join(missing)}",
                           "rebuild the selftests and rerun")
    return out


def cost_cell(cases: dict[str, Any], case: str) -> Cell:
    c = cases.get(case)
    if not isinstance(c, dict):
        return Cell(None, "not measured")
    if "skip" in c:
        return Cell(None, str(c["skip"]))
    return Cell(float(c["ratio"]), "", c.get("ratio_min"), c.get("ratio_max"))


def cost_rows(cost: dict[str, Any]) -> dict[str, dict[str, Cell]]:
    """Row label -> scheme -> cell, for the schemes a row has."""
    cases = cost["cases"]
    return {label: {s: cost_cell(cases, case) for s, case in row.items()}
            for label, row in COST_ROWS.items()}


def winner(cells: dict[str, Cell], highest: bool = False) -> str | None:
    """The scheme with the lowest value (the highest with @highest)."""
    measured = {s: c.value for s, c in cells.items() if c.value is not None}
    if not measured:
        return None
    pick = max if highest else min
    return pick(measured, key=lambda s: measured[s])


def progress_cell(entry: dict[str, Any], quiet: dict[str, Any] | None) -> Cell:
    """ops/s; @quiet, the same scheme alone on its CPU, to compare with."""
    if "skip" in entry:
        return Cell(None, str(entry["skip"]))
    if "stuck" in entry:
        return Cell(None, f"STUCK: {entry['stuck']}")
    notes = []
    if entry.get("sum_ok") is False:
        notes.append("LOST INCREMENTS")
    if entry.get("refused"):
        tried = int(entry["refused"]) + int(entry.get("ops", 0))
        notes.append(f"{100 * int(entry['refused']) / tried:.0f}% refused")
    rate = float(entry["ops_per_s"])
    if quiet and "ops_per_s" in quiet and quiet["ops_per_s"]:
        notes.append(f"{100 * rate / float(quiet['ops_per_s']):.0f}% of quiet")
    return Cell(rate, ", ".join(notes))


def progress_rows(progress: dict[str, Any]) -> dict[str, dict[str, Cell]]:
    conds = progress["conditions"]
    quiet = conds.get("quiet", {})
    rows: dict[str, dict[str, Cell]] = {}
    for cond in CONDITIONS:
        entries = conds.get(cond, {})
        # Beside the quiet rate where a share of it means something.
        base = quiet if cond in ("storm", "hotplug") else {}
        rows[cond] = {s: progress_cell(entries[s], base.get(s)) for s in SCHEMES if s in entries}
    return rows


def lost_increments(progress: dict[str, Any]) -> list[str]:
    """'condition/scheme' for each run whose counters missed an increment,
    or whose threads did not stop (cpu_opv_eval gave up waiting)."""
    return [f"{cond}/{scheme}{' (stuck: ' + e['stuck'] + ')' if 'stuck' in e else ''}"
            for cond, entries in progress["conditions"].items()
            for scheme, e in entries.items() if e.get("sum_ok") is False or "stuck" in e]


@dataclass(frozen=True)
class CtxswVerdict:
    with_opv: Cell
    without: Cell
    measurable: bool | None    # None: one of the two was not measured

    def __str__(self) -> str:
        if self.measurable is None:
            return "not compared (a kernel was not measured)"
        a, b = self.with_opv.value, self.without.value
        assert a is not None and b is not None
        diff = f"{100 * (a - b) / b:+.1f}%"
        if self.measurable:
            return f"measurable difference: {diff} with CONFIG_CPU_OPV=y (ranges do not overlap)"
        return f"no measurable difference ({diff}, within the run-to-run range)"


def ctxsw_verdict(with_opv: dict[str, Any] | None,
                  without: dict[str, Any] | None) -> CtxswVerdict:
    """Measurable means the two kernels' ranges over the runs do not overlap."""
    a = cost_cell(with_opv["cases"], "ctxsw_roundtrip") if with_opv else Cell(None, "not run")
    b = cost_cell(without["cases"], "ctxsw_roundtrip") if without else Cell(None, "not run")
    if None in (a.value, b.value, a.low, a.high, b.low, b.high):
        return CtxswVerdict(a, b, None)
    assert a.low is not None and a.high is not None
    assert b.low is not None and b.high is not None
    return CtxswVerdict(a, b, a.low > b.high or b.low > a.high)


def record(runs: dict[str, dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON of build/<arch>-eval/evaluation.json: raw modes and verdicts."""
    cpu_opv, plain = runs.get("cpu_opv", {}), runs.get("no_cpu_opv", {})
    verdict = ctxsw_verdict(cpu_opv.get("ctxsw"), plain.get("ctxsw"))
    winners = {label: winner(cells) for label, cells in cost_rows(cpu_opv["cost"]).items()} \
        if "cost" in cpu_opv else {}
    if "progress" in cpu_opv:
        winners.update({f"progress: {c}": winner(cells, highest=True)
                        for c, cells in progress_rows(cpu_opv["progress"]).items()})
    return {**meta, "kernels": runs, "winners": winners, "ctxsw_verdict": str(verdict)}
