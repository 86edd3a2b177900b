"""Read TAP 13/14 and KTAP (kselftest, pytest via our plugin, KUnit).

One parser for all three, in the spirit of kunit_parser.py but smaller:
results form a tree, and a missing or short plan is itself a failure, so a
crashed test program can never look like a pass.  Nesting is read from
indentation relative to the enclosing block (four spaces in KTAP, a tab or
two spaces in older KUnit and kselftest output), and lines that are not
(K)TAP at all (kernel messages printed in between) are skipped.

Every verdict ends up on a leaf: a test that did not report (its program
stopped early) is a FAIL leaf, and a stream broken in another way (no plan,
`Bail out!`, `1..0` with no SKIP reason) gets an ERROR leaf "(stream)" unless
it already has one, so counting leaves counts everything
(harness/tests/test_tap_kunit_corpus.py compares the counts with kunit's).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.console import strip_printk_prefix


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"   # the stream itself is broken: no plan, nothing ran


@dataclass
class TestResult:
    name: str
    status: Status = Status.PASS
    reason: str = ""                       # SKIP/TODO reason or error text
    diagnostics: list[str] = field(default_factory=list)
    children: list[TestResult] = field(default_factory=list)

    def leaves(self) -> list[TestResult]:
        if not self.children:
            return [self]
        out: list[TestResult] = []
        for c in self.children:
            out.extend(c.leaves())
        return out


STREAM_CASE = "(stream)"
_VERSION = re.compile(r"^(K?TAP) version (\d+)$")
_PLAN = re.compile(r"^1\.\.(\d+)(?:\s*#\s*(.*))?$")
_RESULT = re.compile(
    r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$",
    re.IGNORECASE)
_SUBTEST = re.compile(r"^#\s*Subtest:\s*(.*)$")
_BAIL = re.compile(r"^Bail out!\s*(.*)$")
_SYNTAX = (_VERSION, _PLAN, _RESULT, _SUBTEST, _BAIL)
# What the kernel prints once KUnit's document is over (kunit_parser's
# KTAP_END): the boot going on without a root, or halting.
_KTAP_END = re.compile(
    r"^\s*(List of all partitions:|Kernel panic - not syncing: VFS:|reboot: System halted)")


@dataclass
class _Line:
    indent: int      # columns, tabs expanded: compared, never divided
    text: str


def _prepare(lines: Iterable[str]) -> list[_Line]:
    """The (K)TAP lines, printk prefixes stripped, other lines dropped."""
    out = []
    for raw in lines:
        line = strip_printk_prefix(raw.rstrip()).expandtabs(8)
        text = line.lstrip(" ")
        if text.startswith("#") or any(p.match(text) for p in _SYNTAX):
            out.append(_Line(len(line) - len(text), text))
    return out


def _starts_block(text: str) -> bool:
    return bool(_VERSION.match(text) or _SUBTEST.match(text) or _PLAN.match(text))


def _parse_block(lines: list[_Line], pos: int, indent: int, name: str,
                 nested: bool) -> tuple[TestResult, int]:
    """Parse one (sub)test stream at `indent`, returning its aggregate."""
    suite = TestResult(name)
    plan: int | None = None
    # A subtest block is closed by its parent's result line, possibly after
    # some diagnostics (KUnit prints "# name: pass:1 fail:0 ..." first).
    open_sub: TestResult | None = None
    while pos < len(lines):
        line = lines[pos]
        if line.indent > indent and _starts_block(line.text):
            open_sub, pos = _parse_block(lines, pos, line.indent, "", True)
            suite.children.append(open_sub)
            continue
        if line.indent < indent:
            break
        text = line.text
        if _VERSION.match(text):
            # The block's own header, or (after it started) the next document.
            if plan is not None or suite.children:
                break
        elif m := _SUBTEST.match(text):
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
                child = TestResult(m[3] or f"test {m[2]}")
                _apply_result(child, m)
                suite.children.append(child)
        elif m := _BAIL.match(text):
            suite.status, suite.reason = Status.ERROR, f"bail out: {m[1]}"
            pos += 1
            break
        else:
            (suite.children[-1] if suite.children else suite).diagnostics.append(text)
        pos += 1
    _finish(suite, plan, nested)
    return suite, pos


def _apply_result(res: TestResult, m: re.Match[str]) -> None:
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


def _finish(suite: TestResult, plan: int | None, nested: bool) -> None:
    if suite.status is Status.SKIP:
        return
    if suite.status is not Status.ERROR:
        _judge(suite, plan, nested)
    if suite.status is Status.ERROR and suite.children and not any(
            leaf.status in (Status.FAIL, Status.ERROR) for leaf in suite.leaves()):
        # Every test it printed passed, yet the stream is broken: the
        # breakage is a case of its own, so it is counted and reported.
        suite.children.append(TestResult(STREAM_CASE, Status.ERROR, suite.reason))


def _judge(suite: TestResult, plan: int | None, nested: bool) -> None:
    seen = len(suite.children)
    # KUnit's parameterised tests print no plan; their parent's result
    # line is what vouches for them.
    if plan is None and nested and seen:
        plan = seen
    if plan is None:
        suite.status, suite.reason = (
            Status.ERROR, "no test plan (1..N): the program did not finish")
    elif plan == 0:
        # kselftest says "1..0 # SKIP why"; a bare 1..0 ran nothing and
        # says nothing about why, which is never a pass.
        suite.status, suite.reason = (
            Status.ERROR, "plan 1..0 and no SKIP reason: nothing ran")
    elif seen < plan:
        suite.status = Status.ERROR
        suite.reason = f"planned {plan} tests, saw {seen}: the program stopped early"
        # Each test that never reported is a failed test (kunit_parser
        # counts them as crashed).
        suite.children += [
            TestResult(f"test {k} (did not report)", Status.FAIL, suite.reason)
            for k in range(seen + 1, plan + 1)]
    elif any(c.status in (Status.FAIL, Status.ERROR) for c in suite.children):
        suite.status = Status.FAIL
    elif suite.children and all(c.status is Status.SKIP for c in suite.children):
        suite.status = Status.SKIP


def parse(text: str, name: str = "") -> TestResult:
    """Parse a whole TAP/KTAP document; anything before its version line,
    and a second document after it, is ignored."""
    lines = _prepare(text.splitlines())
    start = next((i for i, ln in enumerate(lines) if _VERSION.match(ln.text)), None)
    if start is None:
        return TestResult(name, Status.ERROR,
                          "no TAP version line: the program produced no TAP")
    result, _ = _parse_block(lines, start + 1, lines[start].indent, name, False)
    result.name = name or result.name
    return result


def extract_ktap(console: str) -> str:
    """Cut KUnit's KTAP document out of a console log or dmesg.

    Like kunit_parser: from the first `KTAP version` or `TAP version` line
    (after the printk prefix, at any indent) to the end of the log or to
    the kernel's first message after the tests (_KTAP_END).  Kernel
    messages in between stay: parse() skips them.
    """
    lines = [strip_printk_prefix(ln) for ln in console.splitlines()]
    start = next((i for i, ln in enumerate(lines) if _VERSION.match(ln.strip())), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if _KTAP_END.match(lines[i])),
               len(lines))
    return "\n".join(lines[start:end]) + "\n"


def read_kunit(console: str, name: str = "kunit") -> TestResult:
    """KUnit's results from a console log or dmesg; an ERROR without any."""
    ktap = extract_ktap(console)
    if not ktap:
        return TestResult(name, Status.ERROR, "no KTAP on the console: did KUnit run?")
    return parse(ktap, name)
