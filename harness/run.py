"""Run external commands: echoed shell-quoted, always with a timeout."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import InfraError


def quote(argv: Sequence[str | Path]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


def echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
