"""Build stage: out of tree, with ccache, one progress line, the full log kept.

Only one kernel build runs at a time on a machine (they take every core):
the build holds an flock on build/.kernel-build.lock, which colleagues'
ad-hoc builds take too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness.arch import ArchConfig
from harness.errors import BuildError
from harness.kconfig import make_argv
from harness.run import echo, quote

STAGE = "build"
BASEDIR = Path(__file__).resolve().parent.parent
TIMEOUT_S = 90 * 60
_STEP = re.compile(r"^\s+(CC|AS|LD|AR|CPP|HOSTCC|OBJCOPY|GEN|SYSHDR|SYSTBL)\s")
_ERROR = re.compile(r"(error|Error \d+|undefined reference|No rule to make)", re.I)


def make_command(arch: ArchConfig, srctree: Path, objdir: Path) -> list[str]:
    cc = f"{arch.cross_compile}gcc"
    argv = make_argv(arch, srctree, objdir)
    if shutil.which("ccache"):
        argv.append(f"CC=ccache {cc}")
    # A fixed build identity keeps init/version.o, and so ccache, stable.
    argv += [f"-j{os.cpu_count() or 1}", "KBUILD_BUILD_USER=cpu-opv",
             "KBUILD_BUILD_HOST=harness", arch.make_target]
    return argv


@contextlib.contextmanager
def kernel_lock(lock: Path) -> Iterator[None]:
    """Hold the machine's kernel-build lock, waiting for it if need be.

    flock is per open file: a process that holds it and takes it again
    through this function deadlocks, so callers take it once around make.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as lockf:
        try:
            fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo(f"build: waiting for another kernel build to finish ({lock})")
            fcntl.flock(lockf, fcntl.LOCK_EX)
        yield


def build(arch: ArchConfig, srctree: Path, objdir: Path, lock: Path, log: Path) -> Path:
    argv = make_command(arch, srctree.resolve(), objdir.resolve())
    with kernel_lock(lock):
        _run_make(argv, log)
    image = objdir / arch.image
    if not image.is_file():
        raise BuildError(STAGE, f"make succeeded but {image} is missing",
                         f"see {log}")
    return image


def _run_make(argv: list[str], log: Path) -> None:
    echo(f"build: {quote(argv)}")
    echo(f"build: full log in {log}")
    tty = sys.stderr.isatty()
    start = last = time.monotonic()
    steps = 0
    errors: list[str] = []
    # CCACHE_BASEDIR makes the cache hit across clones of this repository:
    # ccache rewrites absolute paths below it to relative ones.
    env = {**os.environ, "LC_ALL": "C", "CCACHE_BASEDIR": str(BASEDIR)}
    with log.open("w") as logf, subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            logf.write(line)
            if _STEP.match(line):
                steps += 1
            elif _ERROR.search(line):
                errors.append(line.rstrip())
            now = time.monotonic()
            if now - start > TIMEOUT_S:
                proc.kill()
                raise BuildError(STAGE, f"timed out after {TIMEOUT_S // 60} minutes",
                                 f"see {log}")
            if tty and now - last >= 1:
                print(f"\rbuild: {steps} steps, {now - start:4.0f}s", end="",
                      file=sys.stderr, flush=True)
                last = now
            elif not tty and now - last >= 60:
                echo(f"build: {steps} steps, {now - start:.0f}s")
                last = now
        rc = proc.wait()
    if tty:
        print(file=sys.stderr)
    elapsed = time.monotonic() - start
    if rc != 0:
        shown = "\n    ".join(errors[-12:]) or "(no error line found)"
        raise BuildError(STAGE, f"make failed (exit {rc}) after {elapsed:.0f}s:\n    {shown}",
                         f"see the full log: {log}")
    echo(f"build: done, {steps} steps in {elapsed:.0f}s")
