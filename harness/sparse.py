"""sparse (C=2) and W=1 on the C files the series adds or changes.

Only kernel/ and include/ count.  Each changed .c is rebuilt as its object
in the main build directory (`make ... C=2 W=1 kernel/cpu_opv.o`); a .c the
kernel compiles only through an `#include` in a sibling (kernel/sched/rt.c
in build_policy.c) is checked through that sibling.  Headers are not built
on their own, but a diagnostic that names one still counts.

Only diagnostics on a line the series adds or changes fail the check.
The rest of the kernel is not the series' doing, and neither are the old
lines of a file it changes: vanilla 6.12.107's kernel/sched/core.c alone
has 20 sparse diagnostics (__rcu address spaces, rq lock context
imbalance).  Those are counted, and left in the log.

The objects rebuilt with W=1 have a different command line, so the next
`make kernel` recompiles them once more (ccache makes that quick).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

from harness import build
from harness.arch import ArchConfig
from harness.errors import BuildError
from harness.run import echo, run
from harness.source import Tree, git

STAGE = "sparse"
TIMEOUT_S = 60 * 60
DIRS = ("kernel/", "include/")
# "path:line:col: warning: text" (gcc, sparse); the column is optional.
_DIAG = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+):(?:\d+:)? (?:warning|error): ")
_HUNK = re.compile(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@")
# kbuild's quiet line for each file sparse checks under C=2.
_CHECKED = re.compile(r"^\s+CHECK\s+(\S+)$", re.M)


@dataclass
class SparseResult:
    files: list[str]                 # changed files under kernel/ and include/
    objects: list[str]               # the objects rebuilt
    diagnostics: list[str] = field(default_factory=list)   # on the series' lines
    preexisting: list[str] = field(default_factory=list)   # on the files' old lines
    notes: list[str] = field(default_factory=list)


def changed_files(worktree: Path, base: str) -> list[str]:
    """Files the series adds or changes (not deletes) under DIRS."""
    out = git(worktree, "diff", "--name-only", "--diff-filter=d", f"{base}..HEAD",
              "--", *DIRS, quiet=True)
    return [line for line in out.splitlines() if line]


def added_lines(worktree: Path, base: str, files: Sequence[str]) -> dict[str, set[int]]:
    """The line numbers, in HEAD's version of each file, the series adds."""
    out = git(worktree, "diff", "-U0", "--no-color", f"{base}..HEAD", "--", *files,
              quiet=True)
    added: dict[str, set[int]] = {}
    current: set[int] = set()
    for line in out.splitlines():
        if line.startswith("+++ "):
            current = added.setdefault(line[4:].removeprefix("b/"), set())
        elif m := _HUNK.match(line):
            start, count = int(m[1]), int(m[2] if m[2] is not None else 1)
            current.update(range(start, start + count))
    return added


def _built_standalone(srctree: Path, c_file: str) -> bool:
    path = Path(c_file)
    makefile = srctree / path.parent / "Makefile"
    if not makefile.is_file():
        return False
    return re.search(rf"(?<![\w-]){re.escape(path.stem)}\.o\b",
                     makefile.read_text(errors="replace")) is not None


def _includer(srctree: Path, c_file: str) -> str | None:
    """The sibling .c that #includes c_file (kernel/sched's build_*.c)."""
    path = Path(c_file)
    pattern = re.compile(rf'^#include\s+"{re.escape(path.name)}"', re.M)
    for sibling in sorted((srctree / path.parent).glob("*.c")):
        rel = str(path.parent / sibling.name)
        if rel != c_file and pattern.search(sibling.read_text(errors="replace")) \
                and _built_standalone(srctree, rel):
            return rel
    return None


def objects_for(srctree: Path, files: Sequence[str]) -> tuple[list[str], list[str]]:
    """The objects to rebuild for the changed .c files, and notes on the rest."""
    objects: list[str] = []
    notes: list[str] = []
    for f in files:
        if not f.endswith(".c"):
            continue
        unit = f if _built_standalone(srctree, f) else _includer(srctree, f)
        if unit is None:
            notes.append(f"{f}: no Makefile builds it, nor a sibling that includes it: "
                         "not checked")
            continue
        obj = unit[:-2] + ".o"
        if obj not in objects:
            objects.append(obj)
    return objects, notes


def make_command(arch: ArchConfig, srctree: Path, objdir: Path,
                 objects: Sequence[str]) -> list[str]:
    return build.make_command(arch, srctree, objdir, ["C=2", "W=1", *objects])


def _names(path: str, srctree: Path, objdir: Path) -> set[str]:
    """The tree-relative names a diagnostic's path may stand for."""
    names = {path.removeprefix("./")}
    p = Path(path)
    full = Path(os.path.normpath(p if p.is_absolute() else objdir / p))
    if full.is_relative_to(srctree):
        names.add(str(full.relative_to(srctree)))
    return names


def diagnostics(output: str, added: Mapping[str, Set[int]], srctree: Path,
                objdir: Path) -> tuple[list[str], list[str]]:
    """The warnings and errors on the lines in `added`, with the indented
    lines that follow each (sparse's expected/got, gcc's source excerpt);
    and those on the other lines of the same files."""
    found: list[str] = []
    old: list[str] = []
    keep = False
    for line in output.splitlines():
        m = _DIAG.match(line)
        if m:
            lines = [added[n] for n in _names(m["path"], srctree, objdir) if n in added]
            keep = any(int(m["line"]) in ls for ls in lines)
            if keep:
                found.append(line)
            elif lines:
                old.append(line)
        elif keep and line[:1].isspace():
            found.append(line)
        else:
            keep = False
    return found, old


def check_objects(arch: ArchConfig, tree: Tree, objdir: Path, lock: Path,
                  log: Path) -> SparseResult:
    srctree, objdir = tree.worktree.resolve(), objdir.resolve()
    files = changed_files(srctree, tree.base)
    objects, notes = objects_for(srctree, files)
    result = SparseResult(files, objects, notes=notes)
    if not objects:
        return result
    argv = make_command(arch, srctree, objdir, objects)
    with build.kernel_lock(lock):
        proc = run(argv, stage=STAGE, timeout=TIMEOUT_S, check=False,
                   env=build.make_env())
    output = proc.stdout + proc.stderr
    log.write_text(output)
    echo(f"sparse: make output in {log}")
    result.diagnostics, result.preexisting = diagnostics(
        output, added_lines(srctree, tree.base, files), srctree, objdir)
    if proc.returncode != 0 and not result.diagnostics:
        tail = "\n    ".join(output.strip().splitlines()[-12:])
        raise BuildError(STAGE, f"make exit {proc.returncode}:\n    {tail}", f"see {log}")
    checked = {n for m in _CHECKED.finditer(proc.stdout)
               for n in _names(m[1], srctree, objdir)}
    for obj in objects:
        # kbuild silently skips an object its configuration does not build.
        if obj[:-2] + ".c" not in checked:
            result.notes.append(f"{obj}: not built in this configuration: not checked")
    return result


def format_result(result: SparseResult) -> str:
    if not result.files:
        return "sparse: the series changes no file under kernel/ or include/"
    lines = [f"sparse: C=2 W=1 on {' '.join(result.objects) or '(no object)'} "
             f"for {len(result.files)} changed files"]
    lines += [f"  note: {n}" for n in result.notes]
    if result.diagnostics:
        lines.append(f"sparse: {sum(bool(_DIAG.match(d)) for d in result.diagnostics)} "
                     "diagnostics on the series' lines:")
        lines += [f"  {d}" for d in result.diagnostics]
    else:
        lines.append("sparse: no warning on the series' lines")
    if result.preexisting:
        lines.append(f"sparse: {len(result.preexisting)} diagnostics on lines the series "
                     "does not change (there before it; not counted)")
    return "\n".join(lines)
