"""Run external commands: echoed shell-quoted, always with a timeout."""

from __future__ import annotations

import contextlib
import os
import shlex
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
    try:
        proc = subprocess.run(
            [str(a) for a in argv],
            cwd=cwd,
            env=full_env,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise InfraError(stage, f"command not found: {argv[0]}",
                         "run `make setup` to install the host tools") from e
    except subprocess.TimeoutExpired as e:
        raise InfraError(stage, f"timed out after {timeout:.0f}s: {quote(argv)}") from e
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
        raise InfraError(stage, f"exit {proc.returncode}: {quote(argv)}\n    "
                         + "\n    ".join(tail))
    return proc
