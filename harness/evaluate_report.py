"""make evaluate's Markdown: the tables of build/<arch>-eval/evaluation.md,
also printed at the end of the run.  Input: evaluate.record()'s dict."""

from __future__ import annotations

from typing import Any

from harness.evaluate import (
    CONDITIONS,
    SCHEMES,
    Cell,
    cost_rows,
    ctxsw_verdict,
    progress_rows,
    winner,
)


def ratio(value: float) -> str:
    """Three significant digits, no exponent: 0.00973, 5.92, 121."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 0.01:
        return f"{value:.3g}" if value < 1 else f"{value:.2f}"
    return f"{value:.2g}"


def rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k/s"
    return f"{value:.0f}/s"


def _cell(c: Cell | None, fmt: Any, best: bool) -> str:
    if c is None:
        return "—"
    if c.value is None:
        return "skipped"
    text = fmt(c.value)
    if best:
        text = f"**{text}**"
    return f"{text} ({c.note})" if c.note else text


def _table(rows: dict[str, dict[str, Cell]], fmt: Any, highest: bool,
           first: str, labels: dict[str, str] | None = None) -> list[str]:
    lines = [f"| {first} | " + " | ".join(SCHEMES.values()) + " | winner |",
             "|---|" + "---:|" * len(SCHEMES) + "---|"]
    for label, cells in rows.items():
        best = winner(cells, highest)
        row = [_cell(cells.get(s), fmt, s == best) for s in SCHEMES]
        name = (labels or {}).get(label, label)
        lines.append(f"| {name} | " + " | ".join(row) + f" | {SCHEMES.get(best or '', '—')} |")
    return lines


def skipped(rows: dict[str, dict[str, Cell]]) -> list[str]:
    """One line per scheme and reason a cell was skipped, naming the rows."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for label, cells in rows.items():
        for s, c in cells.items():
            if c.value is None:
                reasons.setdefault((s, c.note), []).append(label)
    return [f"* {SCHEMES[s]}, skipped ({why}): "
            f"{'every row' if len(where) == len(rows) else ', '.join(where)}"
            for (s, why), where in reasons.items()]


def cost_section(cost: dict[str, Any]) -> list[str]:
    rows = cost_rows(cost)
    lines = [f"### Cost per operation: ratio to one getppid() of the same run "
             f"(median of {cost['runs']} runs; lower is better)", ""]
    lines += _table(rows, ratio, False, "operation")
    lines += ["", "— : the scheme has no such path (rseq alone only retries; "
              "sched_setaffinity is always the slow way).", *skipped(rows)]
    return lines


def storm_signals(progress: dict[str, Any]) -> str:
    """How many of the storm's signals reached the thread, per second."""
    storm = progress["conditions"].get("storm", {})
    got = sorted(e["signals"] for e in storm.values() if "signals" in e)
    if not got:
        return "none delivered"
    return (f"{got[len(got) // 2] / float(progress['seconds']):.0f}/s delivered, median "
            "over the schemes; pending ones merge while the thread waits for the CPU")


def progress_section(progress: dict[str, Any]) -> list[str]:
    rows = progress_rows(progress)
    lines = [f"### Progress: increments of this CPU's counter per second, "
             f"{progress['seconds']:g} s each (higher is better)", "",
             f"Storm: a second thread on the same CPU running the same scheme, and "
             f"signals from a thread on another CPU, sent at {progress['signal_hz']}/s "
             f"({storm_signals(progress)}).  Hotplug: every other increment "
             f"aims at the CPU being taken offline and online again.  Slow path after "
             f"{progress['aborts_before_slow']} aborts in a row.", ""]
    lines += _table(rows, rate, True, "condition", CONDITIONS)
    lines += ["", *skipped(rows)]
    return lines


def ctxsw_section(with_opv: dict[str, Any] | None,
                  without: dict[str, Any] | None) -> list[str]:
    v = ctxsw_verdict(with_opv, without)
    lines = ["### Context switch: pipe ping-pong of two threads on one CPU", "",
             "| kernel | round trip / getppid() (median) | range over runs |",
             "|---|---:|---|"]
    for name, c in (("CONFIG_CPU_OPV=y", v.with_opv), ("CONFIG_CPU_OPV=n", v.without)):
        if c.value is None:
            lines.append(f"| {name} | not measured | |")
        else:
            lines.append(f"| {name} | {c.value:.2f} | {c.low:.2f} to {c.high:.2f} |")
    return [*lines, "", f"Verdict: {v}."]


def maxvec_section(maxvec: dict[str, Any]) -> list[str]:
    head = "### Longest preemption-off section, vectors at the 4216-byte limit"
    if "skip" in maxvec:
        return [head, "", f"Not measured: {maxvec['skip']}."]
    g = float(maxvec["getppid_ns"])
    tracer = ("the kernel also has the preemptoff tracer, not used (it times every "
              "section of the system)" if maxvec.get("preemptoff_tracer")
              else "the preemptoff tracer is not in this kernel")
    lines = [head, "", f"Source: {maxvec['source']} (preempt_off_ns: the vector's run "
             f"with preemption disabled); {tracer}.",
             "", "| target | calls | longest, ns | median, ns | longest / getppid() |",
             "|---|---:|---:|---:|---:|"]
    for name in ("local", "remote"):
        m = maxvec[name]
        lines.append(f"| {name} | {m['calls']} | {m['max_ns']:.0f} | {m['median_ns']:.0f} "
                     f"| {m['max_ns'] / g:.1f} |")
    return lines


def markdown(rec: dict[str, Any]) -> str:
    k = rec["kernels"]
    opv, plain = k.get("cpu_opv", {}), k.get("no_cpu_opv", {})
    lines = [f"## cpu_opv and its alternatives: {rec['arch']}, {rec['accel']}, "
             f"{rec['cpus']} guest CPUs, {rec['date']}", ""]
    if "cost" in opv:
        lines += [*cost_section(opv["cost"]), ""]
    if "progress" in opv:
        lines += [*progress_section(opv["progress"]), ""]
    lines += [*ctxsw_section(opv.get("ctxsw"), plain.get("ctxsw")), ""]
    if "maxvec" in opv:
        lines += [*maxvec_section(opv["maxvec"]), ""]
    return "\n".join(lines)
