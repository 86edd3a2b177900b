"""Read TAP 13/14 and KTAP (kselftest, pytest via our plugin, KUnit).

One parser for all three, in the spirit of kunit_parser.py but smaller:
results form a tree (KTAP subtests are indented by four spaces), and a
missing or short plan is itself a failure, so a crashed test program can
never look like a pass.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"   # the stream itself is broken: no plan, missing tests


@dataclass
class Result:
    name: str
    status: Status = Status.PASS
    reason: str = ""                       # SKIP/TODO reason or error text
    diagnostics: list[str] = field(default_factory=list)
    children: list[Result] = field(default_factory=list)

    def leaves(self) -> list[Result]:
        if not self.children:
            return [self]
        out: list[Result] = []
        for c in self.children:
            out.extend(c.leaves())
        return out


# Console lines carry a printk timestamp; strip it (and nothing else).
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_VERSION = re.compile(r"^(K?TAP) version (\d+)$")
_PLAN = re.compile(r"^1\.\.(\d+)(?:\s*#\s*(.*))?$")
_RESULT = re.compile(
    r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$",
    re.IGNORECASE)
_SUBTEST = re.compile(r"^#\s*Subtest:\s*(.*)$")
_BAIL = re.compile(r"^Bail out!\s*(.*)$")


def strip_timestamps(lines: Iterable[str]) -> list[str]:
    return [_TIMESTAMP.sub("", line.rstrip("\n")) for line in lines]


@dataclass
class _Line:
    indent: int
    text: str


def _prepare(lines: Iterable[str]) -> list[_Line]:
    out = []
    for raw in strip_timestamps(lines):
        stripped = raw.lstrip(" ")
        out.append(_Line((len(raw) - len(stripped)) // 4, stripped.rstrip()))
    return out


def _parse_block(lines: list[_Line], pos: int, indent: int,
                 name: str) -> tuple[Result, int]:
    """Parse one (sub)test stream at `indent`, returning its aggregate."""
    suite = Result(name)
    plan: int | None = None
    # A subtest block is closed by its parent's result line, possibly after
    # some diagnostics (KUnit prints "# name: pass:1 fail:0 ..." first).
    open_sub: Result | None = None
    while pos < len(lines):
        line = lines[pos]
        if line.indent > indent and (_VERSION.match(line.text) or _SUBTEST.match(line.text)
                                     or _PLAN.match(line.text)):
            open_sub, pos = _parse_block(lines, pos, line.indent, "")
            suite.children.append(open_sub)
            continue
        if line.indent < indent:
            break
        text = line.text
        if line.indent == indent:
            if m := _SUBTEST.match(text):
                # KTAP: a subtest names itself inside its own block.
                if not suite.children:
                    suite.name = m[1]
            elif m := _PLAN.match(text):
                plan = int(m[1])
                if plan == 0 and m[2] and m[2].upper().startswith("SKIP"):
                    suite.status, suite.reason = Status.SKIP, m[2][4:].strip()
            elif m := _RESULT.match(text):
                if open_sub is not None:
                    _apply_result(open_sub, m)
                    open_sub = None
                else:
                    child = Result(m[3] or f"test {m[2]}")
                    _apply_result(child, m)
                    suite.children.append(child)
            elif m := _BAIL.match(text):
                suite.status, suite.reason = Status.ERROR, f"bail out: {m[1]}"
                pos += 1
                break
            elif text.startswith("#"):
                (suite.children[-1] if suite.children else suite).diagnostics.append(text)
        pos += 1
    _finish(suite, plan, nested=indent > 0)
    return suite, pos


def _apply_result(res: Result, m: re.Match[str]) -> None:
    """Apply a result line; it can make a subtest worse, never better."""
    directive = (m[4] or "").upper()
    if m[3] and not res.name:
        res.name = m[3]
    if res.status in (Status.FAIL, Status.ERROR):
        return
    if directive == "SKIP":
        res.status, res.reason = Status.SKIP, (m[5] or "").strip()
    elif m[1].lower() == "not ok" and directive != "TODO":
        res.status = Status.FAIL


def _finish(suite: Result, plan: int | None, nested: bool) -> None:
    if suite.status in (Status.ERROR, Status.SKIP):
        return
    # KUnit's parameterised tests print no plan; their parent's result
    # line is what vouches for them.
    if plan is None and nested and suite.children:
        plan = len(suite.children)
    if plan is None:
        suite.status, suite.reason = Status.ERROR, "no test plan (1..N): the program did not finish"
    elif len(suite.children) < plan:
        suite.status = Status.ERROR
        suite.reason = f"planned {plan} tests, saw {len(suite.children)}: the program stopped early"
    elif any(c.status in (Status.FAIL, Status.ERROR) for c in suite.children):
        suite.status = Status.FAIL
    elif suite.children and all(c.status is Status.SKIP for c in suite.children):
        suite.status = Status.SKIP


def parse(text: str, name: str = "") -> Result:
    """Parse a whole TAP/KTAP document; garbage before the version is ignored."""
    lines = _prepare(text.splitlines())
    start = next((i for i, ln in enumerate(lines) if _VERSION.match(ln.text)), None)
    if start is None:
        return Result(name, Status.ERROR, "no TAP version line: the program produced no TAP")
    result, _ = _parse_block(lines, start + 1, lines[start].indent, name)
    result.name = name or result.name
    return result


def extract_ktap(console: str) -> str:
    """Cut KUnit's KTAP document out of a console log or dmesg.

    KUnit prints it at boot between other kernel messages; the document
    starts at the first top-level `KTAP version` line and its lines are the
    ones that look like (K)TAP at any indent.
    """
    lines = strip_timestamps(console.splitlines())
    start = next((i for i, ln in enumerate(lines) if ln.startswith("KTAP version")), None)
    if start is None:
        return ""
    keep = re.compile(r"^\s*(K?TAP version|1\.\.|ok |not ok |# |Bail out!)")
    return "\n".join(ln for ln in lines[start:] if keep.match(ln)) + "\n"
