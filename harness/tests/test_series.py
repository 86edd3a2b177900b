"""The series' own checks on fake trees and recorded output: checkpatch's
verdict and waivers, series-check's prefix-by-prefix builds (make faked),
and sparse's object mapping and diagnostic filter.  No kernel is built."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import arch as arches
from harness import build, checkpatch, cli, kconfig, series_check, source, sparse
from harness.arch import ArchConfig
from harness.errors import EXIT_PASS, EXIT_TEST_FAILED, BuildError, ConfigError, InfraError
from harness.tests.conftest import git

DATA = Path(__file__).parent / "data"
X86 = arches.get("x86_64")


def stacked_series(tree: Path, pdir: Path,
                   edits: Sequence[tuple[str, str, str, str]]) -> list[Path]:
    """Commit each (path, old, new, subject) on top of the last; format-patch
    them all into pdir with a series file.  `old` empty: create the file."""
    git(tree, "checkout", "-q", "-b", "series")
    for path, old, new, subject in edits:
        f = tree / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f.read_text().replace(old, new) if old else new)
        git(tree, "add", path)
        git(tree, "commit", "-q", "-m", subject)
    out = git(tree, "format-patch", "-o", str(pdir), "master..series")
    git(tree, "checkout", "-q", "master")
    patches = [Path(p) for p in out.splitlines()]
    (pdir / "series").write_text("".join(p.name + "\n" for p in patches))
    return patches


# --- checkpatch ---------------------------------------------------------------

def test_parse_recorded_output() -> None:
    text = (DATA / "checkpatch-style-problems.txt").read_text()
    found = checkpatch.parse(text, "0002.patch")
    assert [(f.level, f.type) for f in found] == [
        ("WARNING", "FILE_PATH_CHANGES"), ("CHECK", "MACRO_ARG_REUSE"),
        ("WARNING", "BRACES"), ("CHECK", "COMPARISON_TO_NULL"), ("WARNING", "SPACING")]
    assert found[1].where == "#21: FILE: kernel/thing.c:2:"
    assert found[0].where == "#15:"


def test_parse_clean_output() -> None:
    text = ("total: 0 errors, 0 warnings, 0 checks, 103 lines checked\n\n"
            "x.patch has no obvious style problems and is ready for submission.\n")
    assert checkpatch.parse(text, "x.patch") == []


@pytest.mark.parametrize("text", [
    "Can't open x.patch\n",
    "ERROR:MISSING_SIGN_OFF: Missing Signed-off-by: line(s)\n\n"
    "total: 0 errors, 0 warnings, 0 checks, 3 lines checked\n",
])
def test_parse_refuses_what_it_cannot_account_for(text: str) -> None:
    with pytest.raises(InfraError):
        checkpatch.parse(text, "x.patch")


HEADER = "Subject: [PATCH] kernel: Add a thing\n\nAdd a thing.\n\n{waiver}\n" \
         "Signed-off-by: A <a@b>\n---\n kernel/thing.c | 9 +\n\n" \
         "diff --git a/kernel/thing.c b/kernel/thing.c\n+checkpatch: BRACES: in the diff\n"


def _result(waiver: str) -> checkpatch.PatchResult:
    findings = checkpatch.parse((DATA / "checkpatch-style-problems.txt").read_text(), "p")
    return checkpatch.PatchResult("p", findings,
                                  checkpatch.waivers(HEADER.format(waiver=waiver)))


def test_unexplained_findings_fail() -> None:
    r = _result("")
    assert r.failed and len(r.failures) == 5
    assert r.line() == "p: FAILED: 0 errors, 3 warnings, 2 checks"


def test_bare_waiver_covers_checks_only() -> None:
    r = _result("checkpatch: the macro is only used with constants")
    assert {f.level for f in r.failures} == {"WARNING"}
    assert r.line().endswith("(2 waived)")


def test_typed_waiver_covers_warnings_of_those_types() -> None:
    r = _result("checkpatch: FILE_PATH_CHANGES, BRACES,SPACING: MAINTAINERS comes "
                "in patch 5\ncheckpatch: CHECKs are fine here")
    assert not r.failed
    assert r.line() == "p: ok: 0 errors, 3 warnings, 2 checks (5 waived)"
    assert "waived CHECK:MACRO_ARG_REUSE" in checkpatch.format_results([r])


def test_waivers_are_read_before_the_diff_only_and_need_a_reason() -> None:
    assert checkpatch.waivers(HEADER.format(waiver="checkpatch:   ")) == []
    w = checkpatch.waivers(HEADER.format(waiver="checkpatch: BRACES: style"))
    assert w == [checkpatch.Waiver(frozenset({"BRACES"}), "style")]


def test_errors_are_waived_only_by_type() -> None:
    err = checkpatch.Finding("ERROR", "COMPLEX_MACRO", "Macros with complex values", "")
    bare = checkpatch.Waiver(frozenset(), "asm operand list")
    assert checkpatch.PatchResult("p", [err], [bare]).failed
    typed = checkpatch.Waiver(frozenset({"COMPLEX_MACRO"}), "asm operand list")
    assert not checkpatch.PatchResult("p", [err], [typed]).failed


FAKE_CHECKPATCH = r"""
open(my $log, '>>', 'checkpatch-argv.log'); print $log "@ARGV\n"; close($log);
my $f = $ARGV[-1]; open(my $fh, '<', $f) or die; my $t = join('', <$fh>);
if ($t =~ /NULL/) {
    print "CHECK:COMPARISON_TO_NULL: Comparison to NULL could be written \"!a\"\n";
    print "#24: FILE: kernel/rseq.c:5:\n+\tif (a == NULL) {\n\n";
    print "total: 0 errors, 0 warnings, 1 checks, 9 lines checked\n";
    exit 1;
}
print "total: 0 errors, 0 warnings, 0 checks, 9 lines checked\n";
"""


@pytest.fixture
def checkpatch_tree(fake_kernel: Path) -> Path:
    (fake_kernel / "scripts").mkdir()
    (fake_kernel / "scripts" / "checkpatch.pl").write_text(FAKE_CHECKPATCH)
    git(fake_kernel, "add", "scripts")
    git(fake_kernel, "commit", "-q", "-m", "fake checkpatch")
    return fake_kernel


def test_check_series_one_run_per_patch_no_git_mode(checkpatch_tree: Path,
                                                    tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    patches = stacked_series(checkpatch_tree, pdir, [
        ("kernel/rseq.c", "line 3\n", "line three\n", "kernel: Clean"),
        ("kernel/rseq.c", "line 4\n", "if (a == NULL)\n", "kernel: Style"),
    ])
    cover = pdir / "0000-cover-letter.patch"
    cover.write_text("Subject: [PATCH 0/2] cover\n")
    results = checkpatch.check_series(checkpatch_tree, [cover, *patches])
    assert [(r.name, r.failed) for r in results] == [(patches[0].name, False),
                                                     (patches[1].name, True)]
    argv = (checkpatch_tree / "checkpatch-argv.log").read_text().splitlines()
    assert len(argv) == 2
    assert all(a.startswith("--strict") and " -g" not in a and "--git" not in a
               for a in argv)


def _cli(tree: Path, pdir: Path, tmp_path: Path, stage: str) -> int:
    return cli.main([stage, "--kernel-src", str(tree), "--patches", str(pdir),
                     "--build-dir", str(tmp_path / "build")])


def test_cli_checkpatch_exit_codes(checkpatch_tree: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    pdir = tmp_path / "patches"
    stacked_series(checkpatch_tree, pdir, [
        ("kernel/rseq.c", "line 4\n", "if (a == NULL)\n", "kernel: Style")])
    assert _cli(checkpatch_tree, pdir, tmp_path, "checkpatch") == EXIT_TEST_FAILED
    assert "0001-kernel-Style.patch: FAILED: 0 errors, 0 warnings, 1 checks" \
        in capsys.readouterr().out
    series = (pdir / "0001-kernel-Style.patch").read_text()
    (pdir / "0001-kernel-Style.patch").write_text(
        series.replace("\n---\n", "\ncheckpatch: as upstream spells it\n---\n", 1))
    assert _cli(checkpatch_tree, pdir, tmp_path, "checkpatch") == EXIT_PASS


def test_cli_empty_series_passes_without_a_tree(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pdir = tmp_path / "patches"
    pdir.mkdir()
    (pdir / "series").write_text("# nothing yet\n")

    def no_fetch(ctx: cli.Context) -> source.Tree:
        raise AssertionError("an empty series needs no kernel tree")
    monkeypatch.setattr(cli, "stage_fetch", no_fetch)
    for stage in ("checkpatch", "series-check"):
        assert _cli(tmp_path / "none", pdir, tmp_path, stage) == EXIT_PASS
    assert "checkpatch: no patches" in capsys.readouterr().err


# --- series-check -------------------------------------------------------------

class FakeBuild:
    """Stands in for kconfig.configure + build.build: records what each
    prefix's tree looked like, and fails the prefixes it is told to."""

    def __init__(self, fail_at: Sequence[int] = ()) -> None:
        self.fail_at = set(fail_at)
        self.builds: list[dict[str, Any]] = []
        self.configured: list[tuple[str, bool]] = []

    def configure(self, arch: ArchConfig, srctree: Path, objdir: Path, tree_id: str,
                  extra: Sequence[Path] = (), missing_ok: bool = False) -> Path:
        self.configured.append((tree_id, missing_ok))
        return objdir / ".config"

    def build(self, arch: ArchConfig, srctree: Path, objdir: Path, lock: Path,
              log: Path) -> Path:
        rseq, other = srctree / "kernel/rseq.c", srctree / "kernel/other.c"
        self.builds.append({
            "rseq": rseq.read_text(),
            "other": other.read_text() if other.exists() else None,
            "other_mtime": other.stat().st_mtime_ns if other.exists() else None,
            "srctree": srctree, "objdir": objdir,
        })
        if len(self.builds) in self.fail_at:
            raise BuildError("build", "make failed (exit 2) after 3s:\n    "
                             "kernel/rseq.c:4:1: error: expected ';'", f"see {log}")
        return objdir / arch.image


@pytest.fixture
def three_patches(fake_kernel: Path, tmp_path: Path) -> list[Path]:
    return stacked_series(fake_kernel, tmp_path / "patches", [
        ("kernel/other.c", "", "int other;\n", "kernel: Add other.c"),
        ("kernel/rseq.c", "line 3\n", "line three\n", "rseq: Three"),
        ("kernel/rseq.c", "line 30\n", "line thirty\n", "rseq: Thirty"),
    ])


def _series_check(fake_kernel: Path, tmp_path: Path, patches: list[Path],
                  fake: FakeBuild,
                  monkeypatch: pytest.MonkeyPatch) -> list[series_check.PrefixResult]:
    monkeypatch.setattr(kconfig, "configure", fake.configure)
    monkeypatch.setattr(build, "build", fake.build)
    tree = source.user_tree(fake_kernel, tmp_path / "build" / "src")
    return series_check.build_prefixes(X86, tree, patches, tmp_path / "build" / "series-check",
                              tmp_path / "build" / ".kernel-build.lock")


def test_every_prefix_is_built_incrementally(fake_kernel: Path, tmp_path: Path,
                                             three_patches: list[Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBuild()
    results = _series_check(fake_kernel, tmp_path, three_patches, fake, monkeypatch)
    assert [(r.index, r.patch, r.ok) for r in results] == [
        (i, p.name, True) for i, p in enumerate(three_patches, 1)]
    b = fake.builds
    assert len(b) == 3 and len({tree_id for tree_id, _ in fake.configured}) == 3
    # Only the whole series must define every option the fragments ask for.
    assert [missing_ok for _, missing_ok in fake.configured] == [True, True, False]
    assert b[0]["other"] == "int other;\n" and "line three" not in b[0]["rseq"]
    assert "line three" in b[1]["rseq"] and "line thirty" not in b[1]["rseq"]
    assert "line three" in b[2]["rseq"] and "line thirty" in b[2]["rseq"]
    # Patch 1's file is not rewritten by patches 2 and 3: make would not
    # rebuild what depends on it.
    assert b[0]["other_mtime"] == b[1]["other_mtime"] == b[2]["other_mtime"]
    # Its own worktree and object directory, laid out like the main ones.
    sc = tmp_path / "build" / "series-check"
    assert b[0]["srctree"].parent == sc / "src" and b[0]["objdir"] == sc / "x86_64" / "obj"
    # The user's tree is not touched.
    assert git(fake_kernel, "status", "--porcelain") == ""


def test_failed_prefix_stops_and_is_named(fake_kernel: Path, tmp_path: Path,
                                          three_patches: list[Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    results = _series_check(fake_kernel, tmp_path, three_patches, FakeBuild(fail_at=[2]),
                            monkeypatch)
    assert [r.ok for r in results] == [True, False]
    text = series_check.format_prefixes(results, 3)
    assert f"[2/3] {three_patches[1].name}: FAILED" in text
    assert "kernel/rseq.c:4:1: error: expected ';'" in text
    assert "stopped at prefix 2; 1 later prefixes not built" in text


def test_built_prefixes_are_remembered(fake_kernel: Path, tmp_path: Path,
                                       three_patches: list[Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first = FakeBuild()
    _series_check(fake_kernel, tmp_path, three_patches, first, monkeypatch)
    again = FakeBuild()
    results = _series_check(fake_kernel, tmp_path, three_patches, again, monkeypatch)
    assert again.builds == [] and all(r.cached for r in results)
    # Editing the last patch rebuilds only the last prefix, on the whole series.
    last = three_patches[2]
    last.write_text(last.read_text().replace("+line thirty", "+line 30 again"))
    edited = FakeBuild()
    results = _series_check(fake_kernel, tmp_path, three_patches, edited, monkeypatch)
    assert [r.cached for r in results] == [True, True, False]
    assert len(edited.builds) == 1 and "line 30 again" in edited.builds[0]["rseq"]
    # The worktree resumed at prefix 2 instead of re-applying the series on
    # the base: patch 1's file kept its timestamp, so nothing is rebuilt for it.
    assert edited.builds[0]["other_mtime"] == first.builds[0]["other_mtime"]


def test_rewording_a_patch_keeps_its_prefix_built(
        fake_kernel: Path, tmp_path: Path, three_patches: list[Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _series_check(fake_kernel, tmp_path, three_patches, FakeBuild(), monkeypatch)
    for p in three_patches:
        p.write_text(p.read_text().replace("Subject: [PATCH ", "Subject: [PATCH v2 ")
                     .replace("\n---\n", "\nA better commit message.\n---\n", 1))
    again = FakeBuild()
    results = _series_check(fake_kernel, tmp_path, three_patches, again, monkeypatch)
    assert again.builds == [] and all(r.cached for r in results)


def test_resume_falls_back_to_the_base(fake_kernel: Path, tmp_path: Path,
                                       three_patches: list[Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _series_check(fake_kernel, tmp_path, three_patches, FakeBuild(fail_at=[3]), monkeypatch)
    state = tmp_path / "build" / "series-check" / "src" / "applied-prefixes"
    state.write_text(state.read_text().replace(state.read_text().split()[-1], "0" * 40))
    retry = FakeBuild()
    results = _series_check(fake_kernel, tmp_path, three_patches, retry, monkeypatch)
    assert [r.cached for r in results] == [True, True, False] and results[-1].ok
    assert "line thirty" in retry.builds[0]["rseq"] and "line three" in retry.builds[0]["rseq"]


def test_configure_tolerates_options_a_later_patch_adds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Kconfig").write_text('config SMP\n\tbool "SMP"\n')
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 107\n")
    frag = tmp_path / "cpu_opv.config"
    frag.write_text("CONFIG_SMP=y\nCONFIG_CPU_OPV_KUNIT_TEST=y\n")
    monkeypatch.setattr(kconfig, "fragments_for", lambda *a: [frag])

    def make(argv: Sequence[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
        if argv[-1] == "tinyconfig":
            (tmp_path / "obj" / ".config").write_text("")
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setattr(kconfig, "run", make)
    with pytest.raises(ConfigError, match=r"CONFIG_CPU_OPV_KUNIT_TEST .*no such symbol"):
        kconfig.configure(X86, tmp_path, tmp_path / "obj", "full series")
    kconfig.configure(X86, tmp_path, tmp_path / "obj", "prefix 1", missing_ok=True)
    assert "not in this tree yet, not checked: CONFIG_CPU_OPV_KUNIT_TEST" \
        in capsys.readouterr().err
    assert "CONFIG_SMP=y" in (tmp_path / "obj" / ".config").read_text()


def test_cli_series_check_failure_is_1(fake_kernel: Path, tmp_path: Path,
                                       three_patches: list[Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kconfig, "configure", FakeBuild().configure)
    monkeypatch.setattr(build, "build", FakeBuild(fail_at=[1]).build)
    assert _cli(fake_kernel, tmp_path / "patches", tmp_path, "series-check") \
        == EXIT_TEST_FAILED


# --- sparse -------------------------------------------------------------------

@pytest.fixture
def sparse_tree(tmp_path: Path) -> Path:
    top = tmp_path / "src"
    files = {
        "kernel/Makefile": "obj-y = fork.o\nobj-$(CONFIG_CPU_OPV) += cpu_opv.o\n",
        "kernel/sched/Makefile": "obj-y += core.o\nobj-y += build_policy.o\n",
        "kernel/sched/build_policy.c": '#include "sched.h"\n#include "rt.c"\n',
        "kernel/sched/score.c": "",
    }
    for name, text in files.items():
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(text)
    return top


def test_objects_for_changed_files(sparse_tree: Path) -> None:
    files = ["kernel/cpu_opv.c", "kernel/sched/rt.c", "kernel/sched/core.c",
             "include/linux/cpu_opv.h", "kernel/sched/score.c", "kernel/sched/sched.h"]
    objects, notes = sparse.objects_for(sparse_tree, files)
    assert objects == ["kernel/cpu_opv.o", "kernel/sched/build_policy.o",
                       "kernel/sched/core.o"]
    assert notes == ["kernel/sched/score.c: no Makefile builds it, nor a sibling "
                     "that includes it: not checked"]


def test_make_command_has_sparse_and_w1(sparse_tree: Path, tmp_path: Path) -> None:
    argv = sparse.make_command(X86, sparse_tree, tmp_path / "obj", ["kernel/cpu_opv.o"])
    assert argv[-3:] == ["C=2", "W=1", "kernel/cpu_opv.o"]
    assert f"O={tmp_path / 'obj'}" in argv


def _output(top: Path) -> str:
    return (f"{top}/kernel/cpu_opv.c:12:5: warning: symbol 'x' was not declared. "
            "Should it be static?\n"
            f"{top}/kernel/fork.c:99:1: warning: pre-existing, not ours\n"
            "    got something\n"
            f"{top}/include/linux/cpu_opv.h:3:9: error: incompatible types\n"
            "    expected int\n"
            "    got long\n"
            "../../src/kernel/sched/core.c:7:1: warning: no previous prototype [-Wmissing-"
            "prototypes]\n"
            "    7 | void f(void)\n"
            f"{top}/kernel/sched/core.c: note: in included file:\n"
            f"{top}/arch/x86/include/linux/cpu_opv.h:1:1: warning: same name, other file\n")


def test_diagnostics_on_the_series_lines_only(sparse_tree: Path, tmp_path: Path) -> None:
    objdir = tmp_path / "x86_64" / "obj"
    added = {"kernel/cpu_opv.c": set(range(1, 100)), "include/linux/cpu_opv.h": {3},
             "kernel/sched/core.c": {7, 8}, "kernel/fork.c": {98}}
    found, old = sparse.diagnostics(_output(sparse_tree), added, sparse_tree, objdir)
    # fork.c changed, but not its line 99: there before the series.
    assert old == [f"{sparse_tree}/kernel/fork.c:99:1: warning: pre-existing, not ours"]
    assert found == [
        f"{sparse_tree}/kernel/cpu_opv.c:12:5: warning: symbol 'x' was not declared. "
        "Should it be static?",
        f"{sparse_tree}/include/linux/cpu_opv.h:3:9: error: incompatible types",
        "    expected int", "    got long",
        "../../src/kernel/sched/core.c:7:1: warning: no previous prototype "
        "[-Wmissing-prototypes]",
        "    7 | void f(void)",
    ]


def test_added_lines(fake_kernel: Path) -> None:
    base = git(fake_kernel, "rev-parse", "HEAD")
    rseq = fake_kernel / "kernel/rseq.c"
    rseq.write_text(rseq.read_text().replace("line 3\n", "three\n")
                    .replace("line 9\n", "").replace("line 20\n", "line 20\na\nb\n"))
    (fake_kernel / "kernel/new.c").write_text("1\n2\n")
    git(fake_kernel, "add", "-A")
    git(fake_kernel, "commit", "-q", "-m", "series")
    added = sparse.added_lines(fake_kernel, base, ["kernel/rseq.c", "kernel/new.c"])
    # line 3 is the 4th line; after deleting "line 9", "line 20" is line 20.
    assert added == {"kernel/rseq.c": {4, 21, 22}, "kernel/new.c": {1, 2}}


def test_changed_files_under_kernel_and_include(fake_kernel: Path) -> None:
    base = git(fake_kernel, "rev-parse", "HEAD")
    (fake_kernel / "include/linux").mkdir(parents=True)
    (fake_kernel / "include/linux/cpu_opv.h").write_text("#define X 1\n")
    (fake_kernel / "kernel/cpu_opv.c").write_text("int x;\n")
    (fake_kernel / "Kconfig").write_text("# changed, but not kernel/ nor include/\n")
    git(fake_kernel, "rm", "-q", "kernel/rseq.c")
    git(fake_kernel, "add", "-A")
    git(fake_kernel, "commit", "-q", "-m", "series")
    assert sparse.changed_files(fake_kernel, base) == ["include/linux/cpu_opv.h",
                                                        "kernel/cpu_opv.c"]


def _fake_make(stdout: str, stderr: str, rc: int, calls: list[list[str]]) -> Any:
    def run(argv: Sequence[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append([str(a) for a in argv])
        return subprocess.CompletedProcess(argv, rc, stdout, stderr)
    return run


def _sparse_tree_git(fake_kernel: Path) -> source.Tree:
    base = git(fake_kernel, "rev-parse", "HEAD")
    (fake_kernel / "kernel/Makefile").write_text("obj-y = rseq.o cpu_opv.o\n")
    (fake_kernel / "kernel/cpu_opv.c").write_text("int x;\n")
    rseq = fake_kernel / "kernel/rseq.c"
    rseq.write_text(rseq.read_text().replace("line 3\n", "int y;\n"))
    git(fake_kernel, "add", "-A")
    git(fake_kernel, "commit", "-q", "-m", "series")
    return source.Tree(fake_kernel, base, fake_kernel)


def test_check_runs_make_under_the_lock(fake_kernel: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _sparse_tree_git(fake_kernel)
    top = fake_kernel.resolve()
    calls: list[list[str]] = []
    stdout = f"  CHECK   {top}/kernel/cpu_opv.c\n"
    ours = f"{top}/kernel/cpu_opv.c:1:5: warning: symbol 'x' was not declared."
    old = f"{top}/kernel/rseq.c:10:1: warning: context imbalance"
    stderr = f"{ours}\n{top}/kernel/rseq.c:4:1: warning: new in rseq\n{old}\n"
    held: list[bool] = []
    real_run = _fake_make(stdout, stderr, 0, calls)

    def run(argv: Sequence[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
        # The lock is held: a second, non-blocking taker would fail.
        fd = os.open(tmp_path / "lock", os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        finally:
            os.close(fd)
        result: subprocess.CompletedProcess[str] = real_run(argv, **kw)
        return result
    monkeypatch.setattr(sparse, "run", run)
    result = sparse.check_objects(X86, tree, tmp_path / "obj", tmp_path / "lock", tmp_path / "log")
    assert held == [True]
    assert calls[0][-4:] == ["C=2", "W=1", "kernel/cpu_opv.o", "kernel/rseq.o"]
    assert result.diagnostics == [ours, f"{top}/kernel/rseq.c:4:1: warning: new in rseq"]
    assert result.preexisting == [old]
    assert result.notes == ["kernel/rseq.o: not built in this configuration: not checked"]
    text = sparse.format_result(result)
    assert "2 diagnostics on the series' lines" in text
    assert "1 diagnostics on lines the series does not change" in text


def test_make_failure_elsewhere_is_a_build_error(fake_kernel: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _sparse_tree_git(fake_kernel)
    monkeypatch.setattr(sparse, "run", _fake_make("", "make: *** no rule\n", 2, []))
    with pytest.raises(BuildError, match="no rule"):
        sparse.check_objects(X86, tree, tmp_path / "obj", tmp_path / "lock", tmp_path / "log")
