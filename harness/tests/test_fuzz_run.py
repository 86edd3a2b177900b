"""The fuzz loop catches a kernel that misbehaves, names the call, and
the call replays from its seed (harness/fuzz/run.py, with the fake kernel
of fuzz_fake.py standing in for the guest's)."""

from __future__ import annotations

import errno
from pathlib import Path

from harness import cli, tap
from harness.fuzz import __main__ as fuzz_main
from harness.fuzz.model import Shadow
from harness.fuzz.run import Mismatch
from harness.fuzz.vector import Call
from harness.tests.fuzz_fake import Hook, fuzzer

SEED = 11


def test_correct_kernel_passes() -> None:
    f = fuzzer(SEED)
    assert f.run(5000) is None
    assert f.stats.calls == 5000
    assert f.stats.outcomes["0"] and f.stats.outcomes["-1 EAGAIN"]


def _at(k: int, bug: Hook) -> Hook:
    """Misbehave on the k-th call, and again whenever that call comes back
    (as it does when the runner replays its batch)."""
    target: list[Call] = []

    def hook(n: int, call: Call, ret: int, err: int, mem: Shadow) -> tuple[int, int]:
        if n == k and not target:
            target.append(call)
        if target and call == target[0]:
            return bug(n, call, ret, err, mem)
        return ret, err
    return hook


def _first(seed: int, want: str) -> int:
    """The index of the first call of the seed whose outcome is `want`."""
    f = fuzzer(seed, batch=1)
    seen: list[int] = []

    def spy(n: int, call: Call, ret: int, err: int, mem: Shadow) -> tuple[int, int]:
        if not seen and (str(ret) if ret != -1 else errno.errorcode[err]) == want and n > 100:
            seen.append(n)
        return ret, err
    f.target.hook = spy  # type: ignore[attr-defined]
    f.run(3000)
    return seen[0]


def test_wrong_return_value_is_caught() -> None:
    k = _first(SEED, "0")
    bad = fuzzer(SEED, _at(k, lambda n, c, r, e, m: (1, 0))).run(10_000)
    assert bad is not None and bad.index == k
    assert (bad.expected, bad.actual) == ("0", "1")


def test_wrong_errno_is_caught() -> None:
    k = _first(SEED, "EAGAIN")
    bad = fuzzer(SEED, _at(k, lambda n, c, r, e, m: (-1, errno.EFAULT))).run(10_000)
    assert bad is not None and bad.index == k and bad.actual == "-1 EFAULT"


def _stray(n: int, call: Call, ret: int, err: int, mem: Shadow) -> tuple[int, int]:
    mem.bufs["anon"][0x2ff7] ^= 0x40          # a byte no operand of the call covers
    return ret, err


def test_stray_write_is_caught_and_named() -> None:
    """The batch's memory comparison finds it; the replay names the call."""
    k = _first(SEED, "0") + 5
    bad = fuzzer(SEED, _at(k, _stray), batch=64).run(10_000)
    assert bad is not None and bad.index == k, bad and bad.lines()
    assert bad.memory and bad.memory[0].window == "anon" and bad.memory[0].offset == 0x2ff7
    assert "after this call" in bad.note


def test_write_despite_error_is_caught() -> None:
    """'An error changes nothing.'"""
    k = _first(SEED, "EFAULT")
    bad = fuzzer(SEED, _at(k, _stray)).run(10_000)
    assert bad is not None and bad.index == k


def test_replay_reproduces_the_mismatch() -> None:
    k = _first(SEED, "0") + 17
    first = fuzzer(SEED, _at(k, _stray)).run(10_000)
    assert first is not None
    assert first.replay() == f"make fuzz SEED={SEED} N={k + 1} WORKERS=1"
    # `make fuzz SEED=11 N=k+1`: the same calls, batch size aside.
    again = fuzzer(SEED, _at(k, _stray), batch=7).run(k + 1)
    assert again is not None and again.index == first.index and again.call == first.call
    assert fuzzer(SEED, _at(k, _stray)).run(k) is None


def test_mismatch_fails_the_boot_test(tmp_path: Path) -> None:
    """results/fuzz/*.tap goes into the verdict: a mismatch is a failed test."""
    ok = {"seed": 1, "calls": 10, "summary": "s", "layout": "l", "forbidden": [2], "churn": "c",
          "intents": {"valid": 10}, "outcomes": {"0": 10}, "mismatch": None}
    bad = dict(ok, seed=2, mismatch=Mismatch(2, 5, None, "0", "1").lines())
    (tmp_path / "pytest").mkdir()
    (tmp_path / "pytest" / "m.tap").write_text("TAP version 13\n1..1\nok 1 - t\n")
    (tmp_path / "fuzz").mkdir()
    (tmp_path / "fuzz" / "fuzz.tap").write_text(
        "\n".join(fuzz_main.tap([ok, bad], None, "no hotplug")) + "\n")
    (tmp_path / ".config").write_text("")
    suites = cli.collect(tmp_path, "", tmp_path)
    fuzz = [s for s in suites if s.name == "fuzz:fuzz"]
    assert len(fuzz) == 1
    statuses = [leaf.status for leaf in fuzz[0].leaves()]
    assert statuses == [tap.Status.PASS, tap.Status.FAIL, tap.Status.SKIP]


def test_hotplug_line_is_tap() -> None:
    hp = {"cycles": 3, "failures": 0, "cpus": [1, 2, 3], "offline": {"1": 20, "2": 0}}
    text = "\n".join(fuzz_main.tap([], hp, "")) + "\n"
    leaves = tap.parse(text, "fuzz").leaves()
    assert [leaf.status for leaf in leaves] == [tap.Status.PASS]
    assert "3 offline/online cycles" in leaves[0].name
