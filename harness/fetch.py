"""Fetch stage: the vanilla Linux tarball, verified and cached outside the tree.

Debian's archive carries the upstream tarball as the "orig" tarball of its
linux-6.12 source package (repacked without a few non-free files; builds are
unaffected).  A version that Debian lists is not always downloadable, so the
version is pinned to one that was, and its checksum with it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.digest import file_sha256
from harness.errors import FetchError
from harness.run import echo, run

STAGE = "fetch"


@dataclass(frozen=True)
class Release:
    version: str
    deb_version: str
    tarball: str
    sha256: str
    topdir: str


LINUX = Release(
    version="6.12.107",
    deb_version="6.12.107-1~deb12u1",
    tarball="linux-6.12_6.12.107.orig.tar.xz",
    sha256="a2526f1a6f7853219f6ca85caf4801682e2b75123601baf16f3ac6f9283c8e76",
    topdir="linux-6.12-6.12.107",
)


def cache_dir() -> Path:
    base = os.environ.get("CPU_OPV_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cpu-opv")
    return Path(base)


def tarball(release: Release = LINUX) -> Path:
    """Return the verified tarball, downloading it on first use."""
    cache = cache_dir()
    path = cache / release.tarball
    stamp = path.with_name(path.name + ".sha256-ok")
    if path.exists() and stamp.exists() and stamp.stat().st_mtime >= path.stat().st_mtime:
        return path
    if path.exists():
        if file_sha256(path) == release.sha256:
            stamp.touch()
            return path
        # Keep the bad file for inspection rather than deleting it.
        bad = path.with_name(path.name + ".corrupt")
        path.replace(bad)
        echo(f"fetch: {path} had the wrong checksum; moved it to {bad}")
    cache.mkdir(parents=True, exist_ok=True)
    echo(f"fetch: downloading Linux {release.version} ({release.tarball}) into {cache}")
    if shutil.which("apt-get") is None:
        raise FetchError(STAGE, "apt-get is not available to download the tarball",
                         f"put {release.tarball} (sha256 {release.sha256}) in {cache}, "
                         "or use KERNEL_SRC=/path/to/linux")
    run(["apt-get", "source", "--download-only", "--tar-only",
         f"linux-6.12={release.deb_version}"],
        stage=STAGE, timeout=1800, cwd=cache, check=False)
    if not path.exists():
        raise FetchError(
            STAGE, f"could not download {release.tarball} (linux-6.12={release.deb_version})",
            "run `make setup` (it enables Debian's deb-src entries), check the network, "
            f"or put the tarball in {cache}, or use KERNEL_SRC=/path/to/linux")
    got = file_sha256(path)
    if got != release.sha256:
        bad = path.with_name(path.name + ".corrupt")
        path.replace(bad)
        raise FetchError(STAGE, f"{release.tarball}: sha256 {got}, expected {release.sha256}",
                         f"the download is damaged; it was moved to {bad}: run again")
    stamp.touch()
    return path


def extract(path: Path, dest: Path, release: Release = LINUX) -> None:
    """Unpack into dest atomically: a half-unpacked tree is never left behind."""
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    echo(f"fetch: unpacking {path.name} into {dest}")
    # tar(1) is three times faster than the tarfile module on this tarball.
    proc = run(["tar", "-xf", path, "-C", tmp], stage=STAGE, timeout=900, check=False)
    if proc.returncode != 0 or not (tmp / release.topdir).is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        raise FetchError(STAGE, f"cannot unpack {path}: {proc.stderr.strip()[-300:]}",
                         f"delete {path} and run again to download it afresh")
    (tmp / release.topdir).rename(dest)
    tmp.rmdir()
