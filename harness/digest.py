"""Digests that decide whether a stage's inputs changed (stamps) or a
download is intact.  One recipe for "these files", so that a stamp written
by one stage means the same as another's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def files_hash(salt: str, paths: Iterable[Path]) -> hashlib._Hash:
    """sha256 of `salt`, then each file's name and content: renaming a
    file changes it too.  Returned open, for callers that add more."""
    h = hashlib.sha256(salt.encode())
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h


def files_digest(salt: str, paths: Iterable[Path]) -> str:
    return files_hash(salt, paths).hexdigest()


def file_sha256(path: Path) -> str:
    """One (large) file's sha256, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
