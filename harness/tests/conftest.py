"""Fixtures for the harness's own tests: fake kernel trees, no VM, no build."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ID = ["-c", "user.name=t", "-c", "user.email=t@localhost"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *ID, *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def fake_kernel(tmp_path: Path) -> Path:
    """A tiny git tree that looks like a kernel top directory."""
    tree = tmp_path / "linux"
    (tree / "kernel").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 107\n")
    (tree / "Kconfig").write_text("config RSEQ\n\tbool \"rseq\"\n")
    (tree / "kernel" / "rseq.c").write_text("".join(f"line {i}\n" for i in range(40)))
    git(tree, "init", "-q", "-b", "master")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "base")
    return tree


def make_patch(tree: Path, outdir: Path, path: str, old: str, new: str,
               subject: str) -> Path:
    """Commit an edit on a throwaway branch and export it with format-patch."""
    git(tree, "checkout", "-q", "-b", f"tmp-{subject}")
    f = tree / path
    f.write_text(f.read_text().replace(old, new))
    git(tree, "commit", "-q", "-am", subject)
    out = git(tree, "format-patch", "-1", "-o", str(outdir), "HEAD")
    git(tree, "checkout", "-q", "master")
    git(tree, "branch", "-q", "-D", f"tmp-{subject}")
    return Path(out)
