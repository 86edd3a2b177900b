"""Guest root stage: a small root filesystem for a foreign architecture.

Host code (it runs apt and dpkg-deb on the host), so it lives with the
host stages.  The packages named in vm/guest/root-packages.txt are
downloaded by name for the architecture's Debian name with a private apt
state under the cache directory (the host's own apt configuration, its
dpkg architectures and package lists are never touched), then unpacked
with `dpkg-deb -x`: no maintainer script runs, nothing foreign executes
on the host.  The root is rebuilt only when its inputs change: the
package list, vm/guest/init, the architecture, or the repository path
(its mount point is made in the read-only root).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from harness import REPO
from harness.arch import ArchConfig
from harness.errors import InfraError
from harness.qemu import INIT
from harness.run import echo, run

STAGE = "guest-root"
VM = REPO / "vm"
PACKAGES = VM / "guest" / "root-packages.txt"
INIT_SRC = VM / "guest" / "init"
STAMP = ".cpu-opv-root.sha256"
# busybox applets linked into /bin where no Debian package provides the
# command: what vm/guest/init and the test scripts call.
APPLETS = ("mount", "umount", "poweroff", "reboot", "setsid", "dmesg", "ps",
           "taskset", "mkdir")
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def packages(path: Path = PACKAGES) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def digest(arch: ArchConfig, pkgs: list[str], repo: Path) -> str:
    h = hashlib.sha256()
    for part in (arch.debian_arch, str(repo), *pkgs):
        h.update(part.encode() + b"\0")
    h.update(INIT_SRC.read_bytes())
    return h.hexdigest()


def build(arch: ArchConfig, root: Path, cache: Path, repo: Path) -> Path:
    """Return `root`, (re)built if its inputs changed."""
    pkgs = packages()
    want = digest(arch, pkgs, repo)
    stamp = root / STAMP
    if stamp.is_file() and stamp.read_text().strip() == want:
        echo(f"guest-root: {root} is up to date ({len(pkgs)} packages)")
        return root
    echo(f"guest-root: {len(pkgs)} Debian {arch.debian_arch} packages -> {root}")
    apt = AptCache(cache / f"apt-{arch.debian_arch}", arch.debian_arch)
    debs = apt.download(pkgs)
    scratch = root.with_name(root.name + ".new")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for deb in debs:
        run(["dpkg-deb", "-x", deb, scratch], stage=STAGE, timeout=300, quiet=True)
    _finish(scratch, repo)
    (scratch / STAMP).write_text(want + "\n")
    shutil.rmtree(root, ignore_errors=True)
    scratch.rename(root)
    echo(f"guest-root: done, {len(debs)} packages unpacked")
    return root


def _finish(root: Path, repo: Path) -> None:
    """What dpkg's maintainer scripts and a base system would have made."""
    for d in ("proc", "sys", "dev", "tmp", "run", "root", "etc", "bin", "sbin"):
        (root / d).mkdir(exist_ok=True)
    (root / str(repo).lstrip("/")).mkdir(parents=True, exist_ok=True)
    for applet in APPLETS:
        link = root / "bin" / applet
        if not link.exists() and not link.is_symlink() and \
                not (root / "usr/bin" / applet).exists():
            link.symlink_to("busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    shutil.copy2(INIT_SRC, root / INIT.lstrip("/"))
    os.chmod(root / INIT.lstrip("/"), 0o755)


class AptCache:
    """apt-get with its own state and cache directory, for one architecture."""

    def __init__(self, top: Path, debian_arch: str) -> None:
        self.top = top
        self.arch = debian_arch

    def _options(self) -> list[str]:
        t = self.top
        return [
            "-o", f"APT::Architecture={self.arch}",
            "-o", f"APT::Architectures={self.arch}",
            "-o", f"Dir::State={t}/state",
            "-o", f"Dir::State::status={t}/state/status",
            "-o", f"Dir::Cache={t}/cache",
            "-o", f"Dir::Etc::SourceList={t}/sources.list",
            "-o", f"Dir::Etc::SourceParts={t}/sources.list.d",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
        ]

    def _setup(self) -> None:
        for d in ("state/lists/partial", "cache/archives/partial", "sources.list.d", "debs"):
            (self.top / d).mkdir(parents=True, exist_ok=True)
        (self.top / "state/status").touch()
        (self.top / "sources.list").write_text(binary_sources())
        # Deb822 sources (Debian 12's default) carry their keyring path.
        for f in sorted(APT_SOURCES[1].glob("*.sources")):
            text = deb_stanzas(f.read_text())
            if text:
                (self.top / "sources.list.d" / f.name).write_text(text)

    def download(self, pkgs: list[str]) -> list[Path]:
        self._setup()
        apt = ["apt-get", "-q", *self._options()]
        lists = self.top / "state/lists"
        if not any(lists.glob("*Packages*")):
            run([*apt, "update"], stage=STAGE, timeout=900)
        debs = self.top / "debs"
        want = {p: None for p in pkgs}
        missing = [p for p in want if not any(debs.glob(f"{p}_*_*.deb"))]
        if missing:
            try:
                run([*apt, "download", *missing], stage=STAGE, timeout=900, cwd=debs)
            except InfraError:
                # Stale lists name versions the mirror no longer has.
                run([*apt, "update"], stage=STAGE, timeout=900)
                run([*apt, "download", *missing], stage=STAGE, timeout=900, cwd=debs)
        found = []
        for p in want:
            match = sorted(debs.glob(f"{p}_*_*.deb"))
            if not match:
                raise InfraError(STAGE, f"apt-get download gave no .deb for {p} ({self.arch})",
                                 f"check the name in {PACKAGES}")
            found.append(match[-1])
        return found


def binary_sources(path: Path = APT_SOURCES[0]) -> str:
    """The one-line-style `deb` entries of the host's sources.list."""
    if not path.is_file():
        return ""
    return "".join(line + "\n" for line in path.read_text().splitlines()
                   if line.startswith("deb "))


def deb_stanzas(text: str) -> str:
    """The deb822 stanzas whose Types include `deb` (not only deb-src)."""
    keep = []
    for stanza in text.split("\n\n"):
        for line in stanza.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Types" and "deb" in value.split():
                keep.append(stanza.strip() + "\n")
    return "\n".join(keep)
