"""Console scanning: a kernel warning is never a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import console

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("line,kind", [
    ("[    3.1] Kernel panic - not syncing: Attempted to kill init!", "panic"),
    ("[    3.1] Oops: general protection fault, probably for non-canonical address",
     "oops"),
    ("[    3.1] BUG: sleeping function called from invalid context at mm/gup.c:1",
     "bug"),
    ("[    3.1] kernel BUG at kernel/cpu_opv.c:120!", "bug"),
    ("[    3.1] WARNING: CPU: 2 PID: 77 at kernel/cpu_opv.c:300 do_cpu_opv+0x1/0x2",
     "warning"),
    ("[    3.1] WARNING: possible circular locking dependency detected", "warning"),
    ("[    3.1] BUG: KASAN: slab-out-of-bounds in cpu_opv_run+0x10/0x20", "bug"),
    ("[   30.0] INFO: task python3:90 blocked for more than 30 seconds.", "hung"),
    ("[   30.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "hung"),
    ("[   30.0] rcu: INFO: rcu_preempt self-detected stall on CPU", "hung"),
    # The DEBUG=1 kernel's reports, in the words of the 6.12 sources.
    ("[   12.5] BUG: KFENCE: out-of-bounds read in cpu_opv_run_ops+0x4c/0x1a0", "bug"),
    ("[   12.5] BUG: KFENCE: use-after-free write in do_cpu_opv+0x1/0x2", "bug"),
    ("[   44.0] watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [python3:97]", "bug"),
    ("[   44.0] watchdog: Watchdog detected hard LOCKUP on cpu 2", "lockup"),
    ("[    9.9] list_add corruption. prev->next should be next (ffff8880), "
     "but was ffff8881. (prev=ffff8882).", "list"),
    ("[    9.9] BUG: scheduling while atomic: python3/97/0x00000002", "bug"),
    ("[    9.9] BUG: KASAN: use-after-free in cpu_opv_unpin+0x10/0x20", "bug"),
])
def test_incidents_found(line: str, kind: str) -> None:
    found = console.scan("ok line\n" + line + "\n")
    assert [(i.kind, i.lineno) for i in found] == [(kind, 2)]


@pytest.mark.parametrize("line", [
    "ok 3 test_warning_paths",
    "cpu-opv-guest: done rc=0",
    "[    0.1] rcu: Hierarchical RCU implementation.",
    "[    0.2] x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'",
])
def test_clean_lines(line: str) -> None:
    assert console.scan(line) == []


@pytest.mark.parametrize("path", sorted(DATA.glob("console-*.log")), ids=lambda p: p.name)
def test_recorded_consoles(path: Path) -> None:
    """Recorded guest consoles: `-clean` logs have no incident, others do."""
    found = console.scan(path.read_text(errors="replace"))
    if path.stem.endswith("-clean"):
        assert found == []
    else:
        assert found, "a failing console log was scanned as clean"
