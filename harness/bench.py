"""The micro-benchmark's report: cpu_opv_bench's JSON, from the guest, as a
table and as JSON under build/<arch>/.

The guest prints each case's median time per call and the median of its
ratio to getppid() in the same run; only the ratios mean something under
QEMU TCG, so they lead the table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

STAGE = "bench"

# What each case is, in the order of the table.
CASES = {
    "getppid": "getppid(), the reference",
    "probe": "cpu_opv probe flag (entry, exit)",
    "empty": "cpu_opv, 0 ops (flag and CPU checks)",
    "local_1op": "cpu_opv, 1 ADD, current CPU",
    "local_16op": "cpu_opv, 16 ADDs, current CPU",
    "local_max": "cpu_opv, 4216 bytes, current CPU",
    "remote_1op": "cpu_opv, 1 ADD, another CPU",
    "setaffinity_1op": "sched_setaffinity there, ADD, back",
}


def load(path: Path) -> dict[str, Any]:
    """The guest's JSON, checked for every case."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise HarnessError(STAGE, f"no usable benchmark output in {path}: {e}",
                           "see the console log: did cpu_opv_bench run?") from e
    missing = [c for c in CASES if c not in data.get("cases", {})]
    if missing:
        raise HarnessError(STAGE, f"{path} lacks the cases {', '.join(missing)}",
                           "rebuild the selftests (make selftests) and rerun")
    return data


def table(data: dict[str, Any], accel: str) -> str:
    runs, cpus = data.get("runs"), data.get("cpus")
    lines = [f"bench: medians of {runs} runs, {cpus} CPUs, {accel} "
             "(ratios to getppid() in the same run)",
             f"  {'case':<40} {'ratio':>8} {'ns/call':>10}"]
    for name, what in CASES.items():
        c = data["cases"][name]
        lines.append(f"  {what:<40} {c['ratio']:>8.2f} {c['ns']:>10.0f}")
    return "\n".join(lines)


def save(data: dict[str, Any], out: Path, accel: str, series: list[str]) -> None:
    """The guest's numbers plus what they were measured on."""
    record = {**data, "accel": accel, "series": series,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps(record, indent=2) + "\n")
