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


def _args_seen(tmp_path: Path, profile: str) -> dict[str, str]:
    """What each cpu-opv program was given under PROFILE, by toy programs
    that print their arguments."""
    out = tmp_path / profile
    listing = "".join(_program(out, "cpu-opv", name, 'echo "args:$*"\n', None)
                      for name in ("single_step_test", "mm_race_cpu_opv_test",
                                   "basic_cpu_opv_test"))
    (out / "kselftest-list.txt").write_text(listing)
    res = tmp_path / f"res-{profile}"
    proc = subprocess.run(["bash", str(SCRIPT), str(out), str(res)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PROFILE": profile})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = {}
    for tap_file in (res / "cpu-opv").glob("*.tap"):
        line = next(x for x in tap_file.read_text().splitlines() if "args:" in x)
        seen[tap_file.stem] = line.split("args:", 1)[1]
    return seen


def test_quick_profile_shortens_only_what_it_names(tmp_path: Path) -> None:
    # The quick profile (every boot-test) cuts single-stepping to 2,000
    # steps; make soak (full) runs the programs' own defaults.
    assert _args_seen(tmp_path, "quick") == {"single_step_test": "-s 2000",
                                             "mm_race_cpu_opv_test": "-t 8",
                                             "basic_cpu_opv_test": ""}
    assert _args_seen(tmp_path, "full") == {"single_step_test": "",
                                            "mm_race_cpu_opv_test": "-t 60",
                                            "basic_cpu_opv_test": ""}
