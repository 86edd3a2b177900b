"""The kernel source the series is applied to: ours or the user's.

Either the vanilla tarball, unpacked once into a git repository of our own
(build/src/vanilla, tag v<version>), or KERNEL_SRC.  The series is always
applied in a separate git worktree on a branch of ours, so a user's
checkout, branch, index and uncommitted changes are never touched.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import fetch
from harness.errors import UserError
from harness.run import echo, run

STAGE = "fetch"
BRANCH = "cpu-opv/boot-test"
# Commits made by the harness (the vanilla import, `git am`) need an
# identity even on a machine where git has none configured.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cpu-opv harness", "GIT_AUTHOR_EMAIL": "cpu-opv@localhost",
    "GIT_COMMITTER_NAME": "cpu-opv harness", "GIT_COMMITTER_EMAIL": "cpu-opv@localhost",
}


@dataclass(frozen=True)
class Tree:
    repo: Path       # the git repository that holds `base`
    base: str        # the commit the series applies to
    worktree: Path   # where the series is applied and the kernel built from
    branch: str = BRANCH  # ours, checked out in `worktree` (one per worktree)


def git(repo: Path, *args: str, timeout: float = 600, check: bool = True,
        quiet: bool = False) -> str:
    proc = run(["git", "-C", str(repo), *args], stage=STAGE, timeout=timeout,
               env=GIT_IDENTITY, check=check, quiet=quiet)
    return proc.stdout.strip()


def vanilla(src_root: Path, release: fetch.Release = fetch.LINUX) -> Tree:
    repo = src_root / "vanilla"
    tag = f"v{release.version}"
    if not (repo / ".git").exists():
        tarball = fetch.tarball(release)
        partial = src_root / "vanilla.partial-repo"
        if partial.exists():
            shutil.rmtree(partial)
        fetch.extract(tarball, partial, release)
        echo(f"fetch: importing {tag} into a git repository (one time)")
        _import(partial, repo, "vanilla", f"Linux {release.version}", tag)
    base = git(repo, "rev-parse", f"{tag}^{{commit}}", quiet=True)
    return Tree(repo, base, src_root / "patched")


def _import(partial: Path, repo: Path, branch: str, message: str, tag: str = "") -> None:
    """Commit the files of `partial` as the first commit of a new repository
    and move it to `repo`: a half-made repository never has the final name."""
    git(partial, "init", "-q", "-b", branch)
    git(partial, "add", "-A", quiet=True)
    git(partial, "commit", "-q", "-m", message, quiet=True)
    if tag:
        git(partial, "tag", tag)
    partial.rename(repo)


def user_tree(path: Path, src_root: Path) -> Tree:
    path = path.expanduser().resolve()
    if not (path / "Makefile").is_file() or not (path / "Kconfig").is_file():
        raise UserError(STAGE, f"KERNEL_SRC={path} is not a Linux source tree "
                        "(no Makefile and Kconfig at its top)",
                        "point KERNEL_SRC at the top of a kernel tree, or unset it")
    key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    inside = run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                 stage=STAGE, timeout=60, check=False, quiet=True)
    if inside.returncode == 0 and Path(inside.stdout.strip()) == path:
        dirty = git(path, "status", "--porcelain", "--untracked-files=no", quiet=True)
        if dirty:
            echo("fetch: note: KERNEL_SRC has uncommitted changes; the test tree is "
                 "built from its HEAD, without them")
        base = git(path, "rev-parse", "HEAD^{commit}", quiet=True)
        return Tree(path, base, src_root / f"user-{key}")
    # Not a git tree: take a copy we own and make it one.
    repo = src_root / f"copy-{key}"
    if not (repo / ".git").exists():
        partial = repo.with_name(repo.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        echo(f"fetch: copying {path} (not a git tree) into {repo}")
        run(["cp", "-a", "--reflink=auto", str(path), str(partial)], stage=STAGE, timeout=1800)
        _import(partial, repo, "base", f"Import of {path}")
    base = git(repo, "rev-parse", "HEAD^{commit}", quiet=True)
    return Tree(repo, base, src_root / f"copy-{key}-patched")


def ensure_worktree(tree: Tree) -> None:
    """Create the worktree on our branch, unless it is already there."""
    wt = tree.worktree
    if (wt / ".git").exists():
        return
    git(tree.repo, "worktree", "prune", quiet=True)
    wt.parent.mkdir(parents=True, exist_ok=True)
    # -B: the branch is ours (its name says so); an earlier run's worktree
    # directory may have been deleted while its branch stayed.
    git(tree.repo, "worktree", "add", "-q", "-f", "-B", tree.branch, str(wt), tree.base)
