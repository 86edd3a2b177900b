"""Patch stage on fake trees: applies, refuses with the hunk, never touches
the user's checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import patch, source
from harness.errors import PatchError, UserError
from harness.tests.conftest import git, make_patch


def _series(patch_dir: Path, *names: str) -> None:
    (patch_dir / "series").write_text("# test series\n" + "".join(n + "\n" for n in names))


def test_applies_and_is_idempotent(fake_kernel: Path, tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    p = make_patch(fake_kernel, pdir, "kernel/rseq.c", "line 3\n", "line three\n", "edit")
    _series(pdir, p.name)
    tree = source.user_tree(fake_kernel, tmp_path / "src")
    head = patch.apply(tree, pdir)
    assert "line three" in (tree.worktree / "kernel/rseq.c").read_text()
    mtime = (tree.worktree / "kernel/rseq.c").stat().st_mtime_ns
    assert patch.apply(tree, pdir) == head
    # Nothing re-applied, so nothing would be rebuilt.
    assert (tree.worktree / "kernel/rseq.c").stat().st_mtime_ns == mtime


def test_empty_series_is_vanilla(fake_kernel: Path, tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    pdir.mkdir()
    _series(pdir)
    tree = source.user_tree(fake_kernel, tmp_path / "src")
    assert patch.apply(tree, pdir) == tree.base


def test_failing_patch_names_patch_and_hunk(fake_kernel: Path, tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    good = make_patch(fake_kernel, pdir, "kernel/rseq.c", "line 3\n", "line three\n", "good")
    bad = make_patch(fake_kernel, pdir, "kernel/rseq.c", "line 30\n", "line thirty\n", "bad")
    # Make the second patch's context wrong.
    (fake_kernel / "kernel/rseq.c").write_text(
        (fake_kernel / "kernel/rseq.c").read_text().replace("line 29\n", "changed\n"))
    git(fake_kernel, "commit", "-q", "-am", "move the context")
    _series(pdir, good.name, bad.name)
    tree = source.user_tree(fake_kernel, tmp_path / "src")
    with pytest.raises(PatchError) as e:
        patch.apply(tree, pdir)
    msg = str(e.value)
    assert bad.name in msg and "kernel/rseq.c" in msg
    # The worktree is left clean, with the patches that did apply.
    assert git(tree.worktree, "status", "--porcelain") == ""
    assert not (tree.worktree / ".git").is_dir()  # a worktree, not a clone


def test_missing_patch_file(tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    pdir.mkdir()
    _series(pdir, "0001-missing.patch")
    with pytest.raises(UserError, match=r"0001-missing\.patch does not exist"):
        patch.read_series(pdir)


def test_user_checkout_untouched(fake_kernel: Path, tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    p = make_patch(fake_kernel, pdir, "kernel/rseq.c", "line 3\n", "line three\n", "edit")
    _series(pdir, p.name)
    # The user has uncommitted work and a stash.
    (fake_kernel / "kernel/rseq.c").write_text("work in progress\n")
    (fake_kernel / "untracked.txt").write_text("mine\n")
    git(fake_kernel, "stash", "-q")
    (fake_kernel / "kernel/rseq.c").write_text("more work in progress\n")
    before = (git(fake_kernel, "status", "--porcelain"), git(fake_kernel, "stash", "list"),
              git(fake_kernel, "rev-parse", "--abbrev-ref", "HEAD"),
              git(fake_kernel, "rev-parse", "HEAD"))
    tree = source.user_tree(fake_kernel, tmp_path / "src")
    patch.apply(tree, pdir)
    after = (git(fake_kernel, "status", "--porcelain"), git(fake_kernel, "stash", "list"),
             git(fake_kernel, "rev-parse", "--abbrev-ref", "HEAD"),
             git(fake_kernel, "rev-parse", "HEAD"))
    assert before == after
    assert (fake_kernel / "kernel/rseq.c").read_text() == "more work in progress\n"
    assert "line three" in (tree.worktree / "kernel/rseq.c").read_text()


def test_kernel_src_not_a_kernel(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a Linux source tree"):
        source.user_tree(tmp_path, tmp_path / "src")


def test_changed_series_touches_only_changed_files(fake_kernel: Path, tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    (fake_kernel / "kernel" / "other.c").write_text("int x;\n")
    git(fake_kernel, "add", "-A")
    git(fake_kernel, "commit", "-q", "-m", "other")
    a = make_patch(fake_kernel, pdir, "kernel/rseq.c", "line 3\n", "line three\n", "a")
    _series(pdir, a.name)
    tree = source.user_tree(fake_kernel, tmp_path / "src")
    patch.apply(tree, pdir)
    rseq_c = tree.worktree / "kernel/rseq.c"
    before = rseq_c.stat().st_mtime_ns
    # A second patch on top, touching another file.
    git(fake_kernel, "checkout", "-q", "-b", "top")
    git(fake_kernel, "am", "-q", str(a))
    b = make_patch(fake_kernel, pdir, "kernel/other.c", "int x;\n", "int y;\n", "b")
    _series(pdir, a.name, b.name)
    patch.apply(tree, pdir)
    assert (tree.worktree / "kernel/other.c").read_text() == "int y;\n"
    assert rseq_c.stat().st_mtime_ns == before
