"""Run external commands: echoed shell-quoted, always with a timeout."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from harness.errors import InfraError


def quote(argv: Sequence[str | Path]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


# A thread's echo() lines go here instead of stderr while it runs inside
# captured(): boot-test-all builds the next architecture in a thread of its
# own while a guest runs, and prints that build's lines when it reaches it.
_sink = threading.local()


def echo(line: str) -> None:
    lines: list[str] | None = getattr(_sink, "lines", None)
    if lines is not None:
        lines.append(line)
    else:
        print(line, file=sys.stderr, flush=True)


def capturing() -> bool:
    """Whether this thread's echo() lines are being kept for later."""
    return getattr(_sink, "lines", None) is not None


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """Keep this thread's echo() lines in the list yielded, for the while."""
    lines: list[str] = []
    _sink.lines = lines
    try:
        yield lines
    finally:
        _sink.lines = None


# ---- background work, below every guest ---------------------------------
#
# A thread inside background() starts its commands in a session of their
# own whose scheduler autogroup gets nice 19.  A per-thread nice value is
# not enough: with CONFIG_SCHED_AUTOGROUP (the default of Debian's
# kernels) each session is a scheduling group, and the guest's QEMU runs
# in a session of its own (boot.py), so a nice-19 build in the harness's
# session still took half the CPU.  Measured: the DEBUG=1 guest ran 2,111 s
# beside such a build, against 1,140-1,194 s alone.
_mode = threading.local()
_live: set[subprocess.Popen[str]] = set()
_live_lock = threading.Lock()
BACKGROUND_NICE = 19


@contextlib.contextmanager
def background() -> Iterator[None]:
    _mode.background = True
    try:
        yield
    finally:
        _mode.background = False


def in_background() -> bool:
    return bool(getattr(_mode, "background", False))


def popen(argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
    """subprocess.Popen, in a demoted session of its own inside background()."""
    if not in_background():
        return subprocess.Popen(list(argv), text=True, **kw)   # type: ignore[call-overload,no-any-return]
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(argv[0])
    # The shell writes the new session's autogroup nice value, then becomes
    # the command; where that write is refused the command just runs.
    wrapped = ["sh", "-c", f'echo {BACKGROUND_NICE} > /proc/self/autogroup 2>/dev/null; '
               'exec "$@"', "sh", *argv]
    proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
        wrapped, text=True, start_new_session=True, **kw)
    with _live_lock:
        _live.add(proc)
    return proc


def reap(proc: subprocess.Popen[str]) -> None:
    with _live_lock:
        _live.discard(proc)


def kill_background() -> None:
    """Kill what background threads are running: their sessions do not
    get a terminal's Ctrl-C."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def run(
    argv: Sequence[str | Path],
    *,
    stage: str,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run argv, echoing it first; raise InfraError on timeout or failure.

    `env` entries are added to the current environment, not substituted for
    it, so PATH and the like survive.
    """
    if not quiet:
        echo(f"  $ {quote(argv)}")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    args = [str(a) for a in argv]
    try:
        proc = popen(args, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        raise InfraError(stage, f"command not found: {argv[0]}",
                         "run `make setup` to install the host tools") from e
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as e:
        proc.kill()
        proc.communicate()
        raise InfraError(stage, f"timed out after {timeout:.0f}s: {quote(argv)}") from e
    finally:
        reap(proc)
    if check and proc.returncode != 0:
        tail = (err or out or "").strip().splitlines()[-15:]
        raise InfraError(stage, f"exit {proc.returncode}: {quote(argv)}\n    "
                         + "\n    ".join(tail))
    return subprocess.CompletedProcess(args, proc.returncode, out, err)
