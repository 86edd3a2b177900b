"""The entry point names who is to blame and chooses the exit code from it.

Each failure class is driven through the real stages (fetch from a fake
kernel tree, `git am`, build.build, boot.boot, the report) with fakes only
at the edges: `make`, `vng` and `apt-get` are shell scripts on PATH, and
Kconfig and the selftests build are skipped.  The table below is the one
in the README ("Exit status").
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import arch, boot, cli, kconfig
from harness.errors import EXIT_INFRA, EXIT_PASS, EXIT_TEST_FAILED, Blame
from harness.tests.conftest import git, make_patch

PASS_TAP = "KTAP version 1\n1..1\nok 1 a\n"
START = "echo 'Linux version 6.12.107'; echo 'cpu-opv-guest: start uptime=1.0 cpus=4'\n"
DONE = "echo 'cpu-opv-guest: done rc=0 uptime=2.0'\n"


@dataclass(frozen=True)
class Case:
    rc: int
    blame: Blame
    why: str                     # in the closing line, after the blame
    tap: str = PASS_TAP          # what the guest's pytest writes
    vng: str = START + DONE      # what the fake VM prints (and how it exits)
    make: str = ""               # what the fake make prints before `exit 2`
    patch: str = "good"          # "good", "bad" (does not apply) or "missing"
    kernel_src: bool = True      # False: the tarball, through a failing apt-get


CASES = {
    "passed": Case(EXIT_PASS, Blame.NOBODY, "2 passed, 0 failed"),
    "a test failed": Case(EXIT_TEST_FAILED, Blame.TEST, "0 passed, 2 failed",
                          tap="KTAP version 1\n1..1\nnot ok 1 a\n"),
    "only skips": Case(EXIT_TEST_FAILED, Blame.TEST, "no test passed",
                       tap="KTAP version 1\n1..1\nok 1 a # SKIP nothing to do\n"),
    "empty plan": Case(EXIT_TEST_FAILED, Blame.TEST, "0 passed, 0 failed, 0 skipped, 2 errors",
                       tap="KTAP version 1\n1..0\n"),
    "guest script failed": Case(
        EXIT_TEST_FAILED, Blame.TEST, "the guest script exited 1 though no result failed",
        vng=START + "echo 'cpu-opv-guest: done rc=1'; exit 1\n"),
    "patch does not apply": Case(EXIT_TEST_FAILED, Blame.SERIES, "patch: 0001-bad.patch "
                                 "does not apply", patch="bad"),
    "compile error": Case(EXIT_TEST_FAILED, Blame.SERIES, "build: make failed",
                          make="kernel/rseq.c:12:5: error: expected ';' before '}' token"),
    "kernel panic": Case(EXIT_TEST_FAILED, Blame.SERIES, "boot: the kernel reported 1 problem",
                         vng=START + "echo '[ 3.0] Kernel panic - not syncing: Oops'; exit 255\n"),
    "make killed": Case(EXIT_INFRA, Blame.HOST, "build: make failed",
                        make="make[2]: *** [Makefile:1] Killed"),
    "download failed": Case(EXIT_INFRA, Blame.HOST, "fetch: could not download",
                            kernel_src=False),
    "VM died": Case(EXIT_INFRA, Blame.HOST, "boot: the VM died while the guest script ran",
                    vng=START + "exit 255\n"),
    "never reached the script": Case(EXIT_INFRA, Blame.HOST, "boot: the guest never reached "
                                     "its script", vng="echo 'Linux version 6.12.107'; exit 0\n"),
    "missing patch file": Case(EXIT_INFRA, Blame.INPUT, "patch: ", patch="missing"),
}


def _script(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _setup(case: Case, fake_kernel: Path, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> list[str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    build_dir = tmp_path / "build"
    results = build_dir / "x86_64" / "results"
    image = build_dir / "x86_64" / "obj" / arch.get("x86_64").image
    # make: "builds" the image, or prints the given error and fails.
    _script(bindir, "make", f"echo '{case.make}'; exit 2\n" if case.make
            else f"mkdir -p {image.parent} && touch {image}\n")
    # The same TAP for the pytest suites and the C selftests, which must both
    # leave results (a run without either is an error, not a pass).
    _script(bindir, "vng", f"mkdir -p {results}/pytest {results}/selftests/rseq\n"
            f"printf '%s' '{case.tap}' > {results}/pytest/t.tap\n"
            f"printf '%s' '{case.tap}' > {results}/selftests/rseq/t.tap\n{case.vng}")
    _script(bindir, "apt-get", "echo 'E: no network'; exit 100\n")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CPU_OPV_CACHE", str(tmp_path / "cache"))

    def configure(a: arch.ArchConfig, srctree: Path, objdir: Path, *args: object,
                  **kw: object) -> Path:
        objdir.mkdir(parents=True, exist_ok=True)
        (objdir / ".config").write_text("CONFIG_KUNIT=n\n")
        return objdir / ".config"
    monkeypatch.setattr(kconfig, "configure", configure)
    monkeypatch.setattr(cli, "stage_selftests", lambda ctx: tmp_path / "selftests")
    monkeypatch.setattr(boot, "probe_kvm", lambda *a: False)

    pdir = tmp_path / "patches"
    p = make_patch(fake_kernel, pdir, "kernel/rseq.c", "line 3\n", "line three\n", case.patch)
    if case.patch == "bad":   # its context is gone from the tree
        (fake_kernel / "kernel/rseq.c").write_text("nothing alike\n")
        git(fake_kernel, "commit", "-q", "-am", "rewrite")
    (pdir / "series").write_text("0009-not-there.patch\n" if case.patch == "missing"
                                 else p.name + "\n")
    argv = ["boot-test", "--build-dir", str(build_dir), "--patches", str(pdir)]
    return argv + (["--kernel-src", str(fake_kernel)] if case.kernel_src else [])


@pytest.mark.parametrize("name", list(CASES))
def test_exit_code_and_blame(name: str, fake_kernel: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    monkeypatch.delenv("KERNEL_SRC", raising=False)
    argv = _setup(case, fake_kernel, tmp_path, monkeypatch)
    assert cli.main(argv) == case.rc
    closing = capsys.readouterr().err.strip().splitlines()[-1]
    assert closing.startswith(f"boot-test: exit {case.rc} after ")
    blame = "passed" if case.blame is Blame.NOBODY else f"blame: {case.blame.value}: "
    assert blame in closing and case.why in closing, closing
    junit = ET.parse(tmp_path / "build" / "x86_64" / "results" / "junit.xml").getroot()
    harness = junit.find("testsuite[@name='harness']")
    assert harness is not None
    props = {p.get("name"): p.get("value") for p in harness.iter("property")}
    assert props["blame"] == case.blame.value and props["exit_code"] == str(case.rc)
    assert (harness.find("testcase/error") is None) == (case.rc == EXIT_PASS)


def test_unknown_arch_is_your_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kernel", "--arch", "sparc"]) == EXIT_INFRA
    err = capsys.readouterr().err
    assert "unknown ARCH='sparc'" in err
    assert "blame: your input: " in err.strip().splitlines()[-1]


@pytest.mark.parametrize("words", ["-- x", "console='a b'", "a\\b"])
def test_bad_boot_append_is_your_input(words: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["boot-test", "--append", words]) == EXIT_INFRA
    err = capsys.readouterr().err
    assert "BOOT_APPEND: not a kernel parameter" in err
    assert "blame: your input: " in err.strip().splitlines()[-1]


def test_bad_stage_is_usage_error() -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2


def test_every_blame_has_an_exit_code() -> None:
    assert set(cli.EXIT_CODES) == set(Blame)
    assert {cli.Verdict(b).rc for b in (Blame.SERIES, Blame.TEST)} == {EXIT_TEST_FAILED}
    assert {cli.Verdict(b).rc for b in (Blame.HOST, Blame.INPUT)} == {EXIT_INFRA}


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
    assert [s.status.value for s in suites] == ["error", "error", "error"]
    assert any("the selftests did not run" in s.reason for s in suites)
