"""Bisectability: every prefix of the series configures and builds.

Prefix k is prefix k-1 plus `git am` of patch k, in one worktree of our own,
so between two builds only patch k's files change and make rebuilds only
what depends on them.  Prefix 0 is the vanilla kernel: not built.

The layout mirrors the main pipeline's one level down: the worktree is
build/series-check/src/patched and the objects go to
build/series-check/<arch>/obj.  Paths relative to the object directory are
then the same as the main build's, and with CCACHE_BASEDIR (harness.build)
ccache hits on every file the main build compiled: prefix 1 is not a cold
build.

A prefix that built is remembered (a hash of the base, the config fragments
and the patches up to it), so re-running after editing patch 7 builds from
prefix 7 on; and the worktree resumes at the longest prefix it still holds,
so the files of patches 1-6 keep their timestamps and are not rebuilt.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import build, kconfig, patch
from harness.arch import FRAGMENT_DIR, ArchConfig
from harness.digest import files_hash
from harness.errors import BuildError, CompileError, ConfigError, PatchError
from harness.run import echo
from harness.source import Tree, git

STAGE = "series-check"


@dataclass(frozen=True)
class PrefixResult:
    index: int          # 1-based: the prefix ends with this patch
    patch: str
    ok: bool
    seconds: float
    cached: bool = False
    why: str = ""       # the failing step's first error lines

    def line(self, total: int) -> str:
        head = f"[{self.index}/{total}] {self.patch}:"
        if self.cached:
            return f"{head} ok (built before, unchanged)"
        if self.ok:
            return f"{head} ok, {self.seconds:.0f}s"
        return f"{head} FAILED after {self.seconds:.0f}s\n    {self.why}"


def worktree(tree: Tree, path: Path, at: str) -> Path:
    """A detached worktree of tree.repo at path, reset to the commit `at`:
    no branch to clash with the main pipeline's, which may be checked out
    in build/src/patched."""
    if not (path / ".git").exists():
        git(tree.repo, "worktree", "prune", quiet=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        git(tree.repo, "worktree", "add", "-q", "-f", "--detach", str(path), tree.base)
    git(path, "am", "--abort", check=False, quiet=True)
    git(path, "reset", "-q", "--hard", at, quiet=True)
    return path


def _applied(state: Path, keys: Sequence[str]) -> list[str]:
    """The commits of the longest prefix the worktree already holds.

    Resuming there, instead of re-applying the series on the base, keeps
    the timestamps of the files those patches touched, so make does not
    rebuild their dependents (a patch to sched.h: the whole kernel).
    """
    recorded = dict(line.split() for line in state.read_text().splitlines()
                    if line) if state.exists() else {}
    commits: list[str] = []
    for key in keys:
        if key not in recorded:
            break
        commits.append(recorded[key])
    return commits


def config_salt(arch: ArchConfig, base: str, extra: Sequence[Path]) -> hashlib._Hash:
    """What a prefix's verdict depends on besides its patches."""
    return files_hash(f"{arch.name}\0{base}\0",
                      [*sorted(FRAGMENT_DIR.glob("*.config")), *extra])


def build_input(patch_file: Path) -> bytes:
    """The part of a patch a build depends on: its diff.  Renumbering the
    series ([PATCH 1/7] -> [PATCH 01/10]) or rewording a commit message
    must not make a built prefix build again."""
    text = patch_file.read_bytes()
    start = text.find(b"\ndiff --git ")
    return text if start < 0 else text[start:]


def _am(wt: Path, p: Path, base: str) -> None:
    why = patch.am(wt, p, STAGE)
    if why is not None:
        raise PatchError(STAGE, f"{p.name} does not apply: {why}",
                         f"rebase it onto {base[:12]} and regenerate patches/")


def _build_prefix(arch: ArchConfig, wt: Path, objdir: Path, lock: Path, log: Path,
                  extra: Sequence[Path], last: bool) -> None:
    head = git(wt, "rev-parse", "HEAD", quiet=True)
    # configure runs the kernel's make (tinyconfig, olddefconfig): it takes
    # the lock too, released before build.build takes it again.
    with build.kernel_lock(lock):
        # A fragment may ask for an option a later patch adds (the KUnit
        # test's): only the whole series must define every one of them.
        kconfig.configure(arch, wt, objdir, head, extra, missing_ok=not last)
    build.build(arch, wt, objdir, lock, log)


def build_prefixes(arch: ArchConfig, tree: Tree, patches: Sequence[Path], root: Path,
          lock: Path, extra: Sequence[Path] = ()) -> list[PrefixResult]:
    """Build every prefix in order; stop at the first that fails."""
    arch_dir = root / arch.name
    objdir = arch_dir / "obj"
    arch_dir.mkdir(parents=True, exist_ok=True)
    verified_file = arch_dir / "verified-prefixes"
    verified = set(verified_file.read_text().split()) if verified_file.exists() else set()
    h = config_salt(arch, tree.base, extra)
    keys = []
    for p in patches:
        h.update(build_input(p))
        keys.append(h.hexdigest())
    # Which prefix the worktree holds: one "key commit" line per patch.
    state = root / "src" / "applied-prefixes"
    path = root / "src" / tree.worktree.name
    commits = _applied(state, keys) if (path / ".git").exists() else []
    if commits and git(path, "cat-file", "-t", commits[-1], check=False,
                       quiet=True) != "commit":
        commits = []
    wt = worktree(tree, path, commits[-1] if commits else tree.base)
    state.write_text("".join(f"{k} {c}\n" for k, c in zip(keys, commits, strict=False)))
    results: list[PrefixResult] = []
    for k, (p, key) in enumerate(zip(patches, keys, strict=True), 1):
        if k > len(commits):
            _am(wt, p, tree.base)
            with state.open("a") as f:
                f.write(f"{key} {git(wt, 'rev-parse', 'HEAD', quiet=True)}\n")
        if key in verified:
            results.append(PrefixResult(k, p.name, True, 0.0, cached=True))
            echo(results[-1].line(len(patches)))
            continue
        echo(f"series-check: [{k}/{len(patches)}] building with {p.name} applied")
        start = time.monotonic()
        try:
            _build_prefix(arch, wt, objdir, lock, arch_dir / f"prefix-{k:02d}.log", extra,
                          last=k == len(patches))
        except (BuildError, CompileError, ConfigError) as e:
            why = "\n    ".join(str(e).splitlines()[:14])
            results.append(PrefixResult(k, p.name, False, time.monotonic() - start, why=why))
            echo(results[-1].line(len(patches)))
            break
        results.append(PrefixResult(k, p.name, True, time.monotonic() - start))
        echo(results[-1].line(len(patches)))
        with verified_file.open("a") as f:
            f.write(key + "\n")
    return results


def format_prefixes(results: Sequence[PrefixResult], total: int) -> str:
    lines = [r.line(total) for r in results]
    built = len(results)
    if built < total and results and not results[-1].ok:
        lines.append(f"series-check: stopped at prefix {built}; "
                     f"{total - built} later prefixes not built")
    return "\n".join(lines)
