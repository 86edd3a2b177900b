"""make evaluate's plots: PNGs rendered on the host from the evaluation
record (build/<arch>-eval/evaluation.json), with matplotlib (a host-side
dependency in requirements.txt; nothing in the guest needs it).

    python -m harness.evaluate_plot build/x86_64-eval/evaluation.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The object API, not pyplot: no backend or display state, files only.
from matplotlib.figure import Figure

from harness.evaluate import CONDITIONS, SCHEMES, Cell, cost_rows, progress_rows


def _bars(ax: Any, rows: dict[str, dict[str, Cell]], labels: list[str]) -> None:
    """Grouped bars: one group per row, one bar per scheme that has a value."""
    width = 0.8 / len(SCHEMES)
    for i, (scheme, name) in enumerate(SCHEMES.items()):
        xs, ys = [], []
        for x, cells in enumerate(rows.values()):
            c = cells.get(scheme)
            if c is not None and c.value is not None and c.value > 0:
                xs.append(x + (i - len(SCHEMES) / 2 + 0.5) * width)
                ys.append(c.value)
        # One color per scheme in every plot, bars or none.
        ax.bar(xs, ys, width, label=name, color=f"C{i}")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    # Below the axes, where no bar is.
    ax.figure.legend(fontsize=8, ncols=4, loc="outside lower center")
    ax.grid(axis="y", which="both", alpha=0.3)


def plot_cost(rec: dict[str, Any], out: Path) -> Path:
    cost = rec["kernels"]["cpu_opv"]["cost"]
    rows = cost_rows(cost)
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    ax = fig.subplots()
    _bars(ax, rows, list(rows))
    ax.set_ylabel("time per operation / getppid() (log)")
    ax.set_title(f"cpu_opv and its alternatives: cost ({rec['arch']}, {rec['accel']}, "
                 f"median of {cost['runs']} runs)")
    path = out / "cost.png"
    fig.savefig(path, dpi=100)
    return path


def plot_progress(rec: dict[str, Any], out: Path) -> Path:
    progress = rec["kernels"]["cpu_opv"]["progress"]
    rows = progress_rows(progress)
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    ax = fig.subplots()
    _bars(ax, rows, [CONDITIONS[c] for c in rows])
    ax.set_ylabel("increments per second (log; a missing bar is 0 or skipped)")
    ax.set_title(f"cpu_opv and its alternatives: progress ({rec['arch']}, {rec['accel']})")
    path = out / "progress.png"
    fig.savefig(path, dpi=100)
    return path


def plot_ctxsw(rec: dict[str, Any], out: Path) -> Path | None:
    kernels = {"CONFIG_CPU_OPV=y": rec["kernels"].get("cpu_opv", {}).get("ctxsw"),
               "CONFIG_CPU_OPV=n": rec["kernels"].get("no_cpu_opv", {}).get("ctxsw")}
    names: list[str] = []
    mids: list[float] = []
    errs: list[list[float]] = [[], []]
    for name, data in kernels.items():
        c = data["cases"].get("ctxsw_roundtrip", {}) if data else {}
        if "ratio" not in c:
            continue
        names.append(name)
        mids.append(c["ratio"])
        errs[0].append(c["ratio"] - c["ratio_min"])
        errs[1].append(c["ratio_max"] - c["ratio"])
    if not names:
        return None
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.bar(names, mids, yerr=errs, capsize=6, color=["tab:orange", "tab:blue"][:len(names)])
    ax.set_ylabel("pipe round trip / getppid() (median, range)")
    ax.set_title(f"context switch cost ({rec['arch']}, {rec['accel']})", fontsize=10)
    fig.tight_layout()
    path = out / "ctxsw.png"
    fig.savefig(path, dpi=100)
    return path


def render(record_path: Path) -> list[Path]:
    """Every plot the record has data for, next to it."""
    rec = json.loads(record_path.read_text())
    out = record_path.parent
    opv = rec["kernels"].get("cpu_opv", {})
    paths = []
    if "cost" in opv:
        paths.append(plot_cost(rec, out))
    if "progress" in opv:
        paths.append(plot_progress(rec, out))
    ctx = plot_ctxsw(rec, out)
    if ctx is not None:
        paths.append(ctx)
    return paths


if __name__ == "__main__":
    for p in render(Path(sys.argv[1])):
        print(p)
