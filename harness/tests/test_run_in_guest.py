"""vm/guest/run-selftests.sh honours each directory's kselftest settings
file (timeout=N), on the host with toy programs: no VM needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness import REPO

SCRIPT = REPO / "vm" / "guest" / "run-selftests.sh"


def _program(out: Path, suite: str, name: str, body: str, settings: str | None) -> str:
    d = out / suite
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("#!/bin/sh\n" + body)
    (d / name).chmod(0o755)
    if settings is not None:
        (d / "settings").write_text(settings)
    return f"{suite}:{name}\n"


def test_settings_timeout_per_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    listing = (_program(out, "strict", "slow", "exec sleep 30\n", "# kselftest\ntimeout=1\n")
               + _program(out, "unlimited", "slow", "exec sleep 30\n", "timeout=0\n")
               + _program(out, "roomy", "quick", "echo hello\n", "timeout=300\n")
               + _program(out, "plain", "quick", "echo hello\n", None))
    (out / "kselftest-list.txt").write_text(listing)
    # TIMEOUT is the bound where no settings file sets one (timeout=0 too).
    env = {**os.environ, "TIMEOUT": "2", "PROFILE": "quick"}
    proc = subprocess.run(["bash", str(SCRIPT), str(out), str(tmp_path / "res")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    status = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()
              if not line.startswith("#")}
    assert status == {"strict/slow": "TIMEOUT", "unlimited/slow": "TIMEOUT",
                      "roomy/quick": "PASS", "plain/quick": "PASS"}
    assert (tmp_path / "res" / "strict" / "slow.rc").read_text().strip() == "124"
