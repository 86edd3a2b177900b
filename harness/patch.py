"""Patch stage: apply patches/series with `git am` onto the base commit.

Re-applied only when the series or the base changed, in a scratch
worktree; the build tree then moves to the result with one `git reset
--hard`, which rewrites only the files that differ, so only their
dependents are rebuilt.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.digest import files_digest
from harness.errors import PatchError, UserError
from harness.run import echo, run
from harness.source import GIT_IDENTITY, Tree, ensure_worktree, git

STAGE = "patch"


def read_series(patch_dir: Path) -> list[Path]:
    series = patch_dir / "series"
    if not series.is_file():
        raise UserError(STAGE, f"{series} does not exist",
                        "create it: one patch file name per line (it may be empty)")
    patches = []
    for lineno, raw in enumerate(series.read_text().splitlines(), 1):
        name = raw.split("#", 1)[0].strip()
        if not name:
            continue
        path = patch_dir / name
        if not path.is_file():
            raise UserError(STAGE, f"{series}:{lineno}: {name} does not exist",
                            "fix the name in the series file or add the patch")
        patches.append(path)
    return patches


def _stamp_path(tree: Tree) -> Path:
    return tree.worktree.with_name(tree.worktree.name + ".series")


def series_digest(tree: Tree, patches: list[Path]) -> str:
    return files_digest(tree.base, patches)


def describe_failure(output: str) -> str:
    """Name the hunk that failed, from git am/apply's own words."""
    hunks = re.findall(r"error: patch failed: (\S+)", output)
    missing = re.findall(r"error: (\S+): does not exist in index", output)
    other = re.findall(r"error: (.*)", output)
    if hunks:
        return "hunk failed at " + ", ".join(hunks)
    if missing:
        return "file not in the tree: " + ", ".join(missing)
    return other[0] if other else output.strip()[-300:]


def am(worktree: Path, patch_file: Path, stage: str, quiet: bool = False) -> str | None:
    """`git am` one patch; None when it applied, else git's reason, with
    the half-applied state aborted so the worktree is usable again.

    Committer date = the patch's date: the same series on the same base
    always gives the same commits (the selftests patch's parent).
    """
    proc = run(["git", "-C", str(worktree), "am", "-q", "--committer-date-is-author-date",
                str(patch_file.resolve())],
               stage=stage, timeout=600, env=GIT_IDENTITY, check=False, quiet=quiet)
    if proc.returncode == 0:
        return None
    git(worktree, "am", "--abort", check=False, quiet=True)
    return describe_failure(proc.stdout + proc.stderr)


def apply(tree: Tree, patch_dir: Path) -> str:
    """Apply the series; return the resulting commit (the tree's identity)."""
    patches = read_series(patch_dir)
    ensure_worktree(tree)
    want = series_digest(tree, patches)
    stamp = _stamp_path(tree)
    head = git(tree.worktree, "rev-parse", "HEAD", quiet=True)
    if stamp.exists():
        recorded_digest, _, recorded_head = stamp.read_text().partition(" ")
        if recorded_digest == want and recorded_head.strip() == head:
            echo(f"patch: {len(patches)} patches already applied in {tree.worktree}")
            return head
    echo(f"patch: applying {len(patches)} patches from {patch_dir} onto "
         f"{tree.base[:12]}")
    stamp.unlink(missing_ok=True)
    result = _apply_in_scratch(tree, patches)
    # Move the build tree to the result in one step: git rewrites only the
    # files that differ, so a changed series rebuilds only what it touches.
    git(tree.worktree, "reset", "-q", "--hard", result, quiet=True)
    head = git(tree.worktree, "rev-parse", "HEAD", quiet=True)
    stamp.write_text(f"{want} {head}\n")
    return head



def _apply_in_scratch(tree: Tree, patches: list[Path]) -> str:
    """git am the series in a scratch worktree; return the resulting commit."""
    scratch = Tree(tree.repo, tree.base, tree.worktree.with_name(tree.worktree.name + ".am"),
                   tree.branch + "-am")
    ensure_worktree(scratch)
    wt = scratch.worktree
    git(wt, "am", "--abort", check=False, quiet=True)
    git(wt, "reset", "-q", "--hard", tree.base, quiet=True)
    for p in patches:
        why = am(wt, p, STAGE)
        if why is not None:
            raise PatchError(STAGE, f"{p.name} does not apply: {why}",
                             f"rebase {p.name} onto {tree.base[:12]} (try `git am -3` "
                             f"in {wt}) and regenerate patches/")
    return git(wt, "rev-parse", "HEAD", quiet=True)
