"""The selftests patch of the series, generated from selftests/cpu-opv/.

selftests/cpu-opv/ is the one place the C selftests are edited; the series
as posted carries them as its last patch.  `make selftests-patch` writes
that patch (tools/testing/selftests/cpu-opv/ plus the kselftest TARGETS
line) on top of the kernel patches, and renumbers the series' subjects to
the new total.  `make check` regenerates it into a scratch file and fails
when patches/ holds a stale copy.

The output is deterministic: fixed author, dates and parent (git am keeps
the patches' own dates for committer dates), so an unchanged selftests/
gives a byte-identical patch.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from harness import REPO, patch, source
from harness.errors import UserError
from harness.run import echo, run

STAGE = "selftests-patch"
SOURCE_DIR = REPO / "selftests" / "cpu-opv"
SUBJECT = "selftests/cpu-opv: Add cpu_opv selftests"
SLUG = "selftests-cpu-opv-Add-cpu_opv-selftests.patch"
AUTHOR = "cpu-opv developers <cpu-opv@localhost>"
DATE = "Mon, 23 Nov 2026 12:00:00 +0000"
MESSAGE = f"""{SUBJECT}

Add the kselftests of cpu_opv(2):

- basic_cpu_opv_test: every op, flag, limit and errno of the ABI, one
  result line per case, failures printing the return value and the errno
  name; ENOSYS is a SKIP naming CONFIG_CPU_OPV.
- cpu_opv_param_test and run_param_test.sh: per-CPU counter, spinlock,
  list, array buffer and memcpy buffer with an rseq fast path (the helpers
  of ../rseq) and a cpu_opv slow path, with delay, yield, sleep and signal
  injection, a cpu_opv-only variant, and exact totals checked.
- single_step_test: a per-CPU increment single-stepped by a ptrace tracer
  never completes with rseq alone (every step aborts the critical
  section) and completes with the cpu_opv fallback.
- cpu-op.h/cpu-op.c: the cpu_opv helper library used by the tests.
- cpu_opv_bench and cpu_opv_eval (built, not run by the selftests): the
  cost of cpu_opv as ratios to getppid(), and cpu_opv measured against
  the alternatives proposed for it (rseq alone, a slow-path lock with
  membarrier, dual counters, atomics, sched_setaffinity); bench.h holds
  their shared timing code.

Two checkpatch findings are intended: RSEQ_INJECT_INPUT is pasted into
an asm operand list, as in rseq's param_test.c, so it starts with a comma
and cannot be parenthesised; cpu-op.c uses ENOSYS for what it means, the
cpu_opv system call itself missing.

checkpatch: COMPLEX_MACRO: asm operand lists, as in rseq's param_test.c
checkpatch: ENOSYS: the cpu_opv system call itself is missing
checkpatch: ARCH_DEFINES: rseq critical sections exist per architecture

Signed-off-by: {AUTHOR}
"""
MAINTAINERS_ENTRY = "CPU OPERATION VECTOR SYSTEM CALL (CPU_OPV)\n"
MAINTAINERS_LINE = "F:\ttools/testing/selftests/cpu-opv/\n"
_SUBJECT_NUM = re.compile(r"^(Subject: \[PATCH(?: v\d+)?) (\d+)/(\d+)\]", re.M)
# The version of the series, in every subject (git format-patch --subject-prefix).
SUBJECT_PREFIX = "PATCH v2"


def _is_selftests_patch(p: Path) -> bool:
    return p.name.endswith(SLUG)


def kernel_patches(patch_dir: Path) -> list[Path]:
    return [p for p in patch.read_series(patch_dir) if not _is_selftests_patch(p)]


def _copy_sources(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    # Only what git tracks in selftests/cpu-opv (no build leftovers).
    files = run(["git", "-C", str(REPO), "ls-files", "--", str(SOURCE_DIR)],
                stage=STAGE, timeout=60, quiet=True).stdout.split()
    if not files:
        raise UserError(STAGE, f"no tracked files in {SOURCE_DIR}",
                        "commit the selftests first (the patch is made from git)")
    for name in files:
        src = REPO / name
        target = dest / src.relative_to(SOURCE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _add_target(makefile: Path) -> None:
    text = makefile.read_text()
    if "TARGETS += cpu-opv\n" in text:
        return
    # Keep TARGETS sorted, as the kselftest Makefile does.
    text = text.replace("TARGETS += cpufreq\n", "TARGETS += cpu-opv\nTARGETS += cpufreq\n", 1)
    makefile.write_text(text)


def _add_maintainers(maintainers: Path) -> None:
    """List the selftests in the cpu_opv entry that the series adds."""
    text = maintainers.read_text()
    start = text.find(MAINTAINERS_ENTRY)
    if start < 0:
        raise UserError(STAGE, "the series adds no MAINTAINERS entry "
                        f"{MAINTAINERS_ENTRY.strip()!r}",
                        "keep the entry in the cpu_opv patch, or update MAINTAINERS_ENTRY")
    end = text.find("\n\n", start)
    entry = text[start:end + 1]
    if MAINTAINERS_LINE not in entry:
        text = text[:end + 1] + MAINTAINERS_LINE + text[end + 1:]
        maintainers.write_text(text)


def generate(patch_dir: Path, src_root: Path) -> tuple[str, int]:
    """Return (patch text, its number in the series)."""
    kernel = kernel_patches(patch_dir)
    base = source.vanilla(src_root)
    wt = src_root / "selftests-patch"
    tree = source.Tree(base.repo, base.base, wt, "cpu-opv/selftests-patch")
    # A throwaway directory of series files: the kernel patches only.
    scratch = src_root / "selftests-patch.kernel-patches"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for p in kernel:
        shutil.copy2(p, scratch / p.name)
    (scratch / "series").write_text("".join(p.name + "\n" for p in kernel))
    patch.apply(tree, scratch)
    _copy_sources(wt / "tools/testing/selftests/cpu-opv")
    _add_target(wt / "tools/testing/selftests/Makefile")
    _add_maintainers(wt / "MAINTAINERS")
    run(["git", "-C", str(wt), "add", "-A", "tools/testing/selftests", "MAINTAINERS"],
        stage=STAGE, timeout=120, quiet=True)
    name, _, email = AUTHOR.partition(" <")
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email.rstrip(">"),
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email.rstrip(">"),
           "GIT_AUTHOR_DATE": DATE, "GIT_COMMITTER_DATE": DATE}
    run(["git", "-C", str(wt), "commit", "-q", "-m", MESSAGE], stage=STAGE,
        timeout=120, env=env, quiet=True)
    number = len(kernel) + 1
    text = run(["git", "-C", str(wt), "format-patch", "-1", "-n",
                f"--subject-prefix={SUBJECT_PREFIX}",
                f"--start-number={number}", "--stdout", "HEAD"],
               stage=STAGE, timeout=120, quiet=True).stdout
    # Leave the scratch worktree at its base so the next run starts clean.
    run(["git", "-C", str(wt), "reset", "-q", "--hard", "HEAD~1"], stage=STAGE,
        timeout=120, quiet=True)
    return text, number


def _renumber(text: str, total: int) -> str:
    return _SUBJECT_NUM.sub(lambda m: f"{m[1]} {m[2]}/{total}]", text)


def write(patch_dir: Path, src_root: Path) -> Path:
    text, number = generate(patch_dir, src_root)
    out = patch_dir / f"{number:04d}-{SLUG}"
    for old in patch_dir.glob(f"*-{SLUG}"):
        if old != out:
            old.unlink()
    out.write_text(text)
    # Every patch and the cover letter say "n/total" with the new total.
    for p in sorted(patch_dir.glob("[0-9][0-9][0-9][0-9]-*.patch")):
        p.write_text(_renumber(p.read_text(), number))
    series = patch_dir / "series"
    lines = [ln for ln in series.read_text().splitlines() if not ln.strip().endswith(SLUG)]
    series.write_text("\n".join([*lines, out.name]) + "\n")
    echo(f"selftests-patch: wrote {out} and renumbered the series to {number} patches")
    return out


def problems(patch_dir: Path, src_root: Path) -> list[str]:
    """Return the problems: a missing, stale or misnumbered selftests patch."""
    text, number = generate(patch_dir, src_root)
    existing = [p for p in patch.read_series(patch_dir) if _is_selftests_patch(p)]
    if not existing:
        return [f"patches/series has no selftests patch (*-{SLUG})"]
    problems = []
    stale = _stale_files(existing[0], src_root / "selftests-patch")
    if stale:
        # Keep what would be generated, so the two can be compared.
        regenerated = src_root / "selftests-patch.regenerated"
        regenerated.write_text(text)
        problems.append(f"{existing[0].name} is stale: these files differ from "
                        f"selftests/cpu-opv: {', '.join(stale[:8])} "
                        f"(regenerated patch: {regenerated})")
    series = patch.read_series(patch_dir)
    if series[-1] != existing[0]:
        problems.append(f"{existing[0].name} must be the last patch of the series")
    for p in series:
        m = _SUBJECT_NUM.search(p.read_text())
        if m and int(m[3]) != number:
            problems.append(f"{p.name} says [PATCH {m[2]}/{m[3]}], the series has {number}")
    return problems


def _stale_files(existing: Path, wt: Path) -> list[str]:
    """Apply the committed patch on the kernel series and compare file by file.

    What matters is the content the patch adds, not its exact text (the
    commit line depends on the base's import commit).
    """
    why = patch.am(wt, existing, STAGE, quiet=True)
    if why is not None:
        return [f"(the patch does not apply: {why})"]
    try:
        dest = wt / "tools/testing/selftests/cpu-opv"
        want = set(run(["git", "-C", str(REPO), "ls-files", "--", str(SOURCE_DIR)],
                       stage=STAGE, timeout=60, quiet=True).stdout.split())
        want_rel = {str((REPO / n).relative_to(SOURCE_DIR)) for n in want}
        have_rel = {str(f.relative_to(dest)) for f in dest.rglob("*") if f.is_file()}
        stale = sorted(want_rel ^ have_rel)
        for rel in sorted(want_rel & have_rel):
            a, b = SOURCE_DIR / rel, dest / rel
            if a.read_bytes() != b.read_bytes() or (a.stat().st_mode & 0o111) != (
                    b.stat().st_mode & 0o111):
                stale.append(rel)
        return stale
    finally:
        run(["git", "-C", str(wt), "reset", "-q", "--hard", "HEAD~1"], stage=STAGE,
            timeout=120, quiet=True)
