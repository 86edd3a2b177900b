"""The entry point chooses exit codes: 0 pass, 1 test failure, 2 infrastructure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.errors import EXIT_INFRA, EXIT_PASS, EXIT_TEST_FAILED, BuildError


def _with_stage(monkeypatch: pytest.MonkeyPatch, fn: Any) -> None:
    monkeypatch.setitem(cli.STAGES, "kernel", fn)


def test_infra_error_is_2(monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    def fail(ctx: cli.Context) -> None:
        raise BuildError("build", "make failed (exit 2)", "see build.log")
    _with_stage(monkeypatch, fail)
    assert cli.main(["kernel"]) == EXIT_INFRA
    err = capsys.readouterr().err
    assert "FAILED in stage build: make failed" in err and "what to do: see build.log" in err


def test_unknown_arch_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kernel", "--arch", "sparc"]) == EXIT_INFRA
    assert "unknown ARCH='sparc'" in capsys.readouterr().err


def test_bad_stage_is_usage_error() -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2


def _results(tmp_path: Path, pytest_tap: str) -> Path:
    res = tmp_path / "results"
    (res / "pytest").mkdir(parents=True)
    (res / "pytest" / "test_rseq.tap").write_text(pytest_tap)
    (tmp_path / ".config").write_text("CONFIG_KUNIT=n\n")
    return res


def test_collect_reads_every_suite(tmp_path: Path) -> None:
    res = _results(tmp_path, "KTAP version 1\n1..2\nok 1 a\nnot ok 2 b\n")
    (res / "selftests" / "rseq").mkdir(parents=True)
    (res / "selftests" / "rseq" / "basic.tap").write_text("TAP version 13\n1..1\nok 1 x\n")
    suites = cli.collect(res, "", tmp_path)
    assert [s.name for s in suites] == ["pytest:test_rseq", "selftest:rseq/basic"]


def test_collect_missing_pytest_is_failure(tmp_path: Path) -> None:
    (tmp_path / ".config").write_text("CONFIG_KUNIT=y\n")
    suites = cli.collect(tmp_path / "nothing", "no ktap here", tmp_path)
    assert [s.status.value for s in suites] == ["error", "error"]


@pytest.mark.parametrize("tap,code", [
    ("KTAP version 1\n1..1\nok 1 a\n", EXIT_PASS),
    ("KTAP version 1\n1..1\nnot ok 1 a\n", EXIT_TEST_FAILED),
    ("KTAP version 1\n1..1\nok 1 a # SKIP nothing to do\n", EXIT_TEST_FAILED),
])
def test_boot_test_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              tap: str, code: int) -> None:
    from harness import boot

    def fake_boot(req: boot.BootRequest, command: str) -> boot.BootResult:
        (req.results / "pytest").mkdir(parents=True)
        (req.results / "pytest" / "t.tap").write_text(tap)
        return boot.BootResult(0, "cpu-opv-guest: done rc=0\n", 1.0)

    objdir = tmp_path / "build" / "x86_64" / "obj"
    objdir.mkdir(parents=True)
    (objdir / ".config").write_text("CONFIG_KUNIT=n\n")
    monkeypatch.setattr(cli, "stage_kernel", lambda ctx: tmp_path / "bzImage")
    monkeypatch.setattr(cli, "stage_selftests", lambda ctx: tmp_path / "selftests")
    monkeypatch.setattr(boot, "boot", fake_boot)
    monkeypatch.setattr(boot, "probe_kvm", lambda *a: False)
    assert cli.main(["boot-test", "--build-dir", str(tmp_path / "build")]) == code
