"""Scan a guest console log for signs that the kernel misbehaved.

A kernel warning is never a pass: any line below fails the boot with exit
status 2, whatever the tests said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What the kernel prints when something went wrong, by kind.  Each pattern
# is anchored on text the kernel itself emits (lib/bug.c, kernel/panic.c,
# lockdep, KASAN, KFENCE, the hung task and lockup detectors, RCU stall
# warnings, list debugging).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("oops", re.compile(r"\bOops\b|general protection fault|Unable to handle kernel")),
    ("bug", re.compile(r"\bBUG: |kernel BUG at ")),
    ("warning", re.compile(r"WARNING: (CPU: \d+|at |possible |suspicious |inconsistent )")),
    ("lockdep", re.compile(r"WARNING: .*lock|=+\s*\[ INFO: ")),
    ("kasan", re.compile(r"KASAN: |UBSAN: ")),
    ("hung", re.compile(r"INFO: task .* blocked for more than|rcu: INFO: .* stall")),
    # The DEBUG=1 kernel's detectors (kernel/watchdog.c, lib/list_debug.c);
    # KFENCE and the soft lockup detector print "BUG: " lines, caught above.
    ("lockup", re.compile(r"Watchdog detected hard LOCKUP on cpu")),
    ("list", re.compile(r"\blist_\w+ corruption\b")),
    ("trace", re.compile(r"^\s*Call Trace:")),
)

# printk's prefix: the timestamp, and with CONFIG_PRINTK_CALLER the caller
# id after it ("[    1.234567][    T1] "); only the one space after it goes,
# since what follows may be indented (KTAP nests by indentation).
PRINTK_PREFIX = re.compile(r"^\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])?\s?")


def strip_printk_prefix(line: str) -> str:
    return PRINTK_PREFIX.sub("", line, count=1)


@dataclass(frozen=True)
class Incident:
    kind: str
    lineno: int
    line: str

    def __str__(self) -> str:
        return f"{self.kind} at console line {self.lineno}: {self.line}"


def scan(text: str) -> list[Incident]:
    found = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_printk_prefix(raw)
        for kind, pattern in _PATTERNS:
            if pattern.search(line):
                found.append(Incident(kind, lineno, line.strip()))
                break
    return found

