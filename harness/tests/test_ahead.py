"""boot-test-all builds the next architecture while a guest runs: the
builder thread, and the order and overlap it gives, without make or a VM."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from harness import ahead, arch, cli, report, run
from harness.errors import Blame, CompileError, InfraError
from harness.run import echo

WAIT = 10.0     # seconds a test waits for the other thread: a hang, not a pass


def test_prepares_in_order_in_one_niced_thread(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, int, int]] = []

    def prepare(key: str) -> str:
        tid = threading.get_native_id()
        seen.append((key, tid, os.getpriority(os.PRIO_PROCESS, tid)))
        echo(f"building {key}")
        return key.upper()

    with ahead.Ahead(["a", "b", "c"], prepare) as builder:
        got = [builder.take(i) for i in range(3)]
    assert [g.result() for g in got] == ["A", "B", "C"]
    assert [g.lines for g in got] == [["building a"], ["building b"], ["building c"]]
    assert [k for k, _, _ in seen] == ["a", "b", "c"]
    assert len({tid for _, tid, _ in seen}) == 1 and seen[0][1] != threading.get_native_id()
    assert all(nice == ahead.NICE for _, _, nice in seen)
    # Kept for the caller, not printed from the builder.
    assert "building" not in capsys.readouterr().err
    # The calling thread's own priority is untouched.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < ahead.NICE


def test_a_failed_preparation_is_raised_by_its_taker_and_the_next_go_on() -> None:
    def prepare(key: str) -> str:
        if key == "bad":
            raise CompileError("build", "make failed")
        return key

    with ahead.Ahead(["bad", "good"], prepare) as builder:
        bad, good = builder.take(0), builder.take(1)
    with pytest.raises(CompileError, match="make failed"):
        bad.result()
    assert good.result() == "good"


def test_the_next_is_prepared_while_the_caller_works() -> None:
    second_started = threading.Event()

    def prepare(key: int) -> int:
        if key == 1:
            second_started.set()
        return key

    with ahead.Ahead([0, 1], prepare) as builder:
        assert builder.take(0).result() == 0
        # The "guest" of item 0: item 1 is being prepared meanwhile.
        assert second_started.wait(WAIT)
        assert builder.take(1).result() == 1


def test_nothing_new_starts_after_the_run_stops() -> None:
    release = threading.Event()

    def prepare(key: int) -> int:
        release.wait(WAIT)
        return key

    with ahead.Ahead([0, 1, 2], prepare) as builder:
        pass                      # the run ends (an error, Ctrl-C) at once
    release.set()
    with pytest.raises(ahead.Cancelled):
        builder.take(2).result()


def test_boot_test_all_overlaps_builds_with_guests(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The DEBUG=1 architecture boots first; each next architecture builds
    while the guest before it runs; a build that fails is that
    architecture's verdict only; every build's lines come out in order."""
    names = arch.names()
    first = "x86_64"
    order = [first] + [n for n in names if n != first]
    started = {n: threading.Event() for n in order}
    events: list[str] = []
    failing = order[2]

    def prepare(ctx: cli.Context) -> cli.Prepared:
        name = ctx.paths.arch.name
        started[name].set()
        events.append(f"build {name}")
        echo(f"build: {name} kernel")
        if name == failing:
            raise CompileError("build", f"make failed for {name}")
        return cli.Prepared(tmp_path / name, None, 1.0, 0.0)

    def guest(ctx: cli.Context, built: cli.Prepared,
              suites: list[object]) -> cli.Verdict:
        name = ctx.paths.arch.name
        events.append(f"guest {name}")
        nxt = order.index(name) + 1
        if nxt < len(order):
            # The next architecture's build starts while this guest runs.
            assert started[order[nxt]].wait(WAIT), f"{order[nxt]} not built during {name}"
        events.append(f"guest {name} done")
        ctx.outcome = cli.Outcome(ctx.paths.arch_dir.name, cli.PASSED, built.kernel_s,
                                  built.root_s, None, report.Counts(1, 0, 0))
        return cli.PASSED

    monkeypatch.setattr(cli, "prepare", prepare)
    monkeypatch.setattr(cli, "_boot_test", guest)
    monkeypatch.setattr(report, "write_junit", lambda *a, **kw: None)
    ctx = cli.Context(cli.Paths(tmp_path, arch.get("x86_64")), None, tmp_path, [], 1800,
                      debug_arches=frozenset({first}))
    verdict = cli.stage_boot_test_all(ctx)

    assert verdict.blame is Blame.SERIES and verdict.why.startswith(f"{failing}: build:")
    for i, name in enumerate(order[:-1]):
        if name != failing:
            assert events.index(f"build {order[i + 1]}") < events.index(f"guest {name} done")
    assert f"guest {failing}" not in events
    err = capsys.readouterr()
    # Each build's lines under its own heading, in boot order.
    heads = [err.err.index(f"=== boot-test-all: {n}{'-debug' if n == first else ''}\n")
             for n in order]
    lines = [err.err.index(f"build: {n} kernel") for n in order]
    assert heads == sorted(heads) and lines == sorted(lines)
    assert all(h < b for h, b in zip(heads, lines, strict=True))
    table = err.out.splitlines()
    assert [row.split()[0] for row in table[1:]] == [
        f"{first}-debug", *order[1:]]


def test_background_commands_run_in_a_demoted_session_of_their_own() -> None:
    # nice alone does not reach across autogroups: QEMU runs in a session
    # of its own, so the build must be in one too, with the group's nice
    # value raised.
    # The child reports its own session and autogroup; Python rather than
    # ps(1), which a minimal Debian install (procps) does not have.
    probe = [sys.executable, "-c",
             "import os, pathlib; g = pathlib.Path('/proc/self/autogroup');"
             " print(g.read_text().strip() if g.exists() else '-', os.getsid(0))"]
    with run.background():
        got = run.run(probe, stage="t", timeout=10).stdout.split()
    assert int(got[-1]) != os.getsid(0)
    if os.path.exists("/proc/self/autogroup"):
        assert got[1:3] == ["nice", str(run.BACKGROUND_NICE)]
    plain = run.run(probe, stage="t", timeout=10).stdout.split()
    assert int(plain[-1]) == os.getsid(0)


def test_a_missing_command_in_the_background_says_make_setup() -> None:
    with run.background(), pytest.raises(InfraError, match="command not found"):
        run.run(["no-such-command-here"], stage="t", timeout=10)
