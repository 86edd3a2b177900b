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
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness import REPO
from harness.arch import ArchConfig
from harness.errors import BuildError, CompileError
from harness.kconfig import make_argv
from harness.run import capturing, echo, popen, quote, reap

STAGE = "build"
TIMEOUT_S = 90 * 60
_STEP = re.compile(r"^\s+(CC|AS|LD|AR|CPP|HOSTCC|OBJCOPY|GEN|SYSHDR|SYSTBL)\s")
_ERROR = re.compile(r"(error|Error \d+|undefined reference|No rule to make)", re.I)
# What only the code being compiled can be blamed for: a compiler's or the
# linker's diagnostic on a source file.  make failing without one (a tool
# missing, the disk full, make killed) is the host's.
_SOURCE_ERROR = re.compile(
    r"^[^\s:]+:\d+(?::\d+)?: (?:fatal )?error: |undefined reference to|multiple definition of")


def make_command(arch: ArchConfig, srctree: Path, objdir: Path,
                 targets: Sequence[str] = ()) -> list[str]:
    """The kernel's make, out of tree, with ccache and every CPU; `targets`
    default to the architecture's image."""
    cc = f"{arch.cross_compile}gcc"
    argv = make_argv(arch, srctree, objdir)
    if shutil.which("ccache"):
        argv.append(f"CC=ccache {cc}")
    # A fixed build identity keeps init/version.o, and so ccache, stable.
    argv += [f"-j{os.cpu_count() or 1}", "KBUILD_BUILD_USER=cpu-opv",
             "KBUILD_BUILD_HOST=harness", *(targets or [arch.make_target])]
    return argv


def make_env() -> dict[str, str]:
    """What make_command's make runs with, on top of the environment."""
    # CCACHE_BASEDIR makes the cache hit across clones of this repository:
    # ccache rewrites absolute paths below it to relative ones.
    return {"LC_ALL": "C", "CCACHE_BASEDIR": str(REPO)}


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
    # A build whose lines are kept for later (boot-test-all's next
    # architecture) must not draw on the terminal either.
    tty = sys.stderr.isatty() and not capturing()
    start = last = time.monotonic()
    steps = 0
    errors: list[str] = []
    env = {**os.environ, **make_env()}
    with log.open("w") as logf, popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as proc:
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
    reap(proc)
    if tty:
        print(file=sys.stderr)
    elapsed = time.monotonic() - start
    if rc != 0:
        shown = "\n    ".join(errors[-12:]) or "(no error line found)"
        message = f"make failed (exit {rc}) after {elapsed:.0f}s:\n    {shown}"
        if any(_SOURCE_ERROR.search(e) for e in errors):
            raise CompileError(STAGE, message, f"fix the code; the full log: {log}")
        raise BuildError(STAGE, message + "\n    (no compiler error: the build machinery failed)",
                         f"see the full log: {log}")
    echo(f"build: done, {steps} steps in {elapsed:.0f}s")
