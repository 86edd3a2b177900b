"""make evaluate's reading, judging and reporting, on made-up guest output
of the shape cpu_opv_eval prints: no VM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import evaluate, evaluate_plot, evaluate_report
from harness.errors import Blame
from harness.evaluate import COST_ROWS, Cell


def case(ratio: float, spread: float = 0.1) -> dict[str, float]:
    return {"ns": ratio * 1000, "ratio": ratio,
            "ratio_min": ratio - spread, "ratio_max": ratio + spread}


def cost(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every cost case at ratio 1.0, then @overrides."""
    cases: dict[str, Any] = {"getppid": case(1.0, 0)}
    cases.update({c: case(1.0) for row in COST_ROWS.values() for c in row.values()})
    cases.update(overrides or {})
    return {"mode": "cost", "runs": 7, "cpus": 4, "home": 0, "other": 1, "cases": cases}


def entry(rate: float, **extra: Any) -> dict[str, Any]:
    return {"ops_per_s": rate, "refused": 0, "slow": 0, "aborts": 0, "ops": int(rate),
            "sum_ok": True, **extra}


def progress(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    conds = {c: {s: entry(1000.0) for s in evaluate.SCHEMES} for c in evaluate.CONDITIONS}
    for s in conds["storm"].values():
        s.update(signals=4000, signals_sent=20000)
    for c, schemes in (overrides or {}).items():
        conds[c].update(schemes)
    return {"mode": "progress", "seconds": 2.0, "signal_hz": 10000,
            "aborts_before_slow": 3, "home": 0, "conditions": conds}


def ctxsw(ratio: float, low: float, high: float) -> dict[str, Any]:
    return {"mode": "ctxsw", "runs": 7, "cpu_opv": True,
            "cases": {"getppid": case(1.0, 0),
                      "ctxsw_roundtrip": {"ns": 1.0, "ratio": ratio,
                                          "ratio_min": low, "ratio_max": high}}}


MAXVEC = {"mode": "maxvec", "source": "tracepoint cpu_opv:cpu_opv", "getppid_ns": 500.0,
          "local": {"calls": 200, "max_ns": 20000, "median_ns": 9000},
          "remote": {"calls": 200, "max_ns": 25000, "median_ns": 9500}}


def write(results: Path, data: dict[str, Any]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    for mode, d in data.items():
        (results / f"{mode}.json").write_text(json.dumps(d))


def test_load_reads_every_mode(tmp_path: Path) -> None:
    data = {"cost": cost(), "progress": progress(), "ctxsw": ctxsw(30, 29, 31),
            "maxvec": MAXVEC}
    write(tmp_path, data)
    assert evaluate.load(tmp_path, evaluate.MODES) == data


def test_load_blames_the_test_and_quotes_its_stderr(tmp_path: Path) -> None:
    write(tmp_path, {"cost": cost()})
    (tmp_path / "ctxsw.json").write_text('{"mode": "ctx')
    (tmp_path / "ctxsw.err").write_text("cpu_opv_eval: pipe: Too many open files\n")
    with pytest.raises(evaluate.EvalError) as e:
        evaluate.load(tmp_path, ("cost", "ctxsw"))
    assert e.value.blame is Blame.TEST
    assert "Too many open files" in e.value.message


def test_load_refuses_another_modes_output(tmp_path: Path) -> None:
    write(tmp_path, {"ctxsw": cost()})
    with pytest.raises(evaluate.EvalError, match="not cpu_opv_eval ctxsw"):
        evaluate.load(tmp_path, ("ctxsw",))


def test_load_names_a_missing_cost_case(tmp_path: Path) -> None:
    c = cost()
    del c["cases"]["remote.cpu_opv"]
    write(tmp_path, {"cost": c})
    with pytest.raises(evaluate.EvalError, match=r"remote\.cpu_opv"):
        evaluate.load(tmp_path, ("cost",))


def test_the_cheapest_scheme_wins_a_cost_row_and_a_skip_never_does() -> None:
    rows = evaluate.cost_rows(cost({
        "remote.cpu_opv": {"skip": "not a cpu_opv kernel"},
        "remote.dual": case(0.01, 0.001),
        "remote.lock": case(2.0)}))
    remote = rows["another CPU's counter, a thread busy there"]
    assert remote["cpu_opv"] == Cell(None, "not a cpu_opv kernel")
    assert "rseq" not in remote          # rseq cannot reach another CPU
    assert evaluate.winner(remote) == "dual"


def test_no_winner_when_nothing_was_measured() -> None:
    assert evaluate.winner({"rseq": Cell(None, "x"), "lock": Cell(None, "y")}) is None
    assert evaluate.winner({"rseq": Cell(0.0), "lock": Cell(5.0)}, highest=True) == "lock"


def test_progress_cells_compare_storm_and_hotplug_with_quiet() -> None:
    rows = evaluate.progress_rows(progress({
        "quiet": {"rseq": entry(2000.0)},
        "storm": {"rseq": entry(500.0)},
        "single_step": {"rseq": entry(0.0)},
        "hotplug": {"setaffinity": entry(800.0, refused=200)}}))
    assert rows["storm"]["rseq"] == Cell(500.0, "25% of quiet")
    assert rows["single_step"]["rseq"] == Cell(0.0)
    # entry() reports 800 ops: 200 refused of 1000 tried.
    assert rows["hotplug"]["setaffinity"].note == "20% refused, 80% of quiet"
    assert evaluate.winner(rows["single_step"], highest=True) != "rseq"


def test_lost_increments_are_named_and_fail_the_run() -> None:
    p = progress({"storm": {"cpu_opv": entry(10.0, sum_ok=False)}})
    assert evaluate.lost_increments(p) == ["storm/cpu_opv"]
    assert "LOST INCREMENTS" in evaluate.progress_rows(p)["storm"]["cpu_opv"].note


def test_a_stuck_run_is_shown_and_fails_the_run() -> None:
    p = progress({"hotplug": {"setaffinity": {"stuck": "a worker did not stop: thread 7"}}})
    assert evaluate.lost_increments(p) == [
        "hotplug/setaffinity (stuck: a worker did not stop: thread 7)"]
    cell = evaluate.progress_rows(p)["hotplug"]["setaffinity"]
    assert cell == Cell(None, "STUCK: a worker did not stop: thread 7")


@pytest.mark.parametrize(("with_opv", "without", "measurable", "said"), [
    (ctxsw(30.0, 28.0, 33.0), ctxsw(29.0, 27.0, 31.0), False, "no measurable difference"),
    (ctxsw(40.0, 38.0, 42.0), ctxsw(30.0, 28.0, 33.0), True, "+33.3% with CONFIG_CPU_OPV=y"),
    (ctxsw(30.0, 28.0, 33.0), None, None, "not compared"),
])
def test_ctxsw_difference_is_measurable_only_when_ranges_part(
        with_opv: dict[str, Any], without: dict[str, Any] | None,
        measurable: bool | None, said: str) -> None:
    v = evaluate.ctxsw_verdict(with_opv, without)
    assert v.measurable is measurable
    assert said in str(v)


def full_record() -> dict[str, Any]:
    opv = {"cost": cost({"counter.rseq": case(0.05, 0.01),
                         "remote.cpu_opv": {"skip": "not a cpu_opv kernel"}}),
           "progress": progress({"single_step": {"rseq": entry(0.0)}}),
           "ctxsw": ctxsw(30.0, 28.0, 33.0), "maxvec": MAXVEC}
    meta = {"arch": "x86_64", "accel": "QEMU TCG", "cpus": 4, "series": [], "date": "today"}
    return evaluate.record({"cpu_opv": opv, "no_cpu_opv": {"ctxsw": ctxsw(29, 27, 31)}},
                           meta)


def test_record_names_a_winner_per_row() -> None:
    rec = full_record()
    assert rec["winners"]["counter, fast path"] == "rseq"
    assert set(COST_ROWS) < set(rec["winners"])
    assert rec["winners"]["progress: single_step"] != "rseq"
    assert rec["ctxsw_verdict"].startswith("no measurable difference")


def test_markdown_bolds_winners_and_explains_gaps() -> None:
    text = evaluate_report.markdown(full_record())
    row = next(line for line in text.splitlines() if line.startswith("| counter, fast path"))
    assert "**0.05**" in row and row.endswith("| rseq alone |")
    assert "| — |" in row                          # sched_setaffinity has no fast path
    assert ("rseq + cpu_opv, skipped (not a cpu_opv kernel): "
            "another CPU's counter, a thread busy there") in text
    assert "| local | 200 | 20000 | 9000 | 40.0 |" in text
    assert "the preemptoff tracer is not in this kernel" in text
    assert "Verdict: no measurable difference" in text
    assert "sent at 10000/s (2000/s delivered" in text


@pytest.mark.parametrize(("value", "text"), [
    (0.00973, "0.0097"), (0.0512, "0.0512"), (5.918, "5.92"), (121.1, "121")])
def test_ratio_formatting(value: float, text: str) -> None:
    assert evaluate_report.ratio(value) == text


def test_plots_are_written_next_to_the_record(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(full_record()))
    pngs = evaluate_plot.render(path)
    assert [p.name for p in pngs] == ["cost.png", "progress.png", "ctxsw.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
