"""Fetch stage: checksum, cache, and a clear message when the download fails."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness import fetch
from harness.errors import FetchError


def _release(payload: bytes) -> fetch.Release:
    return fetch.Release("6.12.107", "6.12.107-1~deb12u1", "linux.tar.xz",
                         hashlib.sha256(payload).hexdigest(), "linux-6.12-6.12.107")


def _no_download(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(args, 100, "", "E: Unable to find a source package")


def test_cached_tarball_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPU_OPV_CACHE", str(tmp_path))
    (tmp_path / "linux.tar.xz").write_bytes(b"tarball")
    monkeypatch.setattr(fetch, "run", _no_download)
    assert fetch.tarball(_release(b"tarball")) == tmp_path / "linux.tar.xz"


def test_missing_tarball_download_fails(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPU_OPV_CACHE", str(tmp_path))
    monkeypatch.setattr(fetch, "run", _no_download)
    with pytest.raises(FetchError) as e:
        fetch.tarball(_release(b"tarball"))
    text = str(e.value)
    assert text.startswith("fetch: could not download linux.tar.xz")
    assert "make setup" in text and "KERNEL_SRC" in text and str(tmp_path) in text


def test_corrupt_tarball_is_kept_aside(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPU_OPV_CACHE", str(tmp_path))
    (tmp_path / "linux.tar.xz").write_bytes(b"truncated")
    monkeypatch.setattr(fetch, "run", _no_download)
    with pytest.raises(FetchError):
        fetch.tarball(_release(b"tarball"))
    assert (tmp_path / "linux.tar.xz.corrupt").read_bytes() == b"truncated"
