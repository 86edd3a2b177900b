"""Report stage: per-suite counts on the host, JUnit XML, the closing line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.tap import Result, Status


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.passed + other.passed, self.failed + other.failed,
                      self.skipped + other.skipped)


def count(result: Result) -> Counts:
    """Leaves are the test cases; a broken stream counts as one failure."""
    c = Counts()
    for leaf in result.leaves():
        if leaf.status is Status.PASS:
            c += Counts(passed=1)
        elif leaf.status is Status.SKIP:
            c += Counts(skipped=1)
        else:
            c += Counts(failed=1)
    # A suite whose own stream is broken (no plan, stopped early) is a failure
    # even when every test it printed passed.
    if result.status is Status.ERROR and result.children:
        c += Counts(failed=1)
    return c


def summary(suites: Sequence[Result]) -> tuple[str, Counts]:
    lines = []
    total = Counts()
    for s in suites:
        c = count(s)
        total += c
        extra = f" ({s.reason})" if s.reason and s.status is not Status.PASS else ""
        lines.append(f"  {s.name:<46} {c.passed:4d} passed {c.failed:4d} failed "
                     f"{c.skipped:4d} skipped{extra}")
        for leaf in s.leaves():
            if leaf.status in (Status.FAIL, Status.ERROR):
                lines.append(f"      FAIL {leaf.name} {leaf.reason}".rstrip())
    # The closing line, alone on a line: the form CI reads.
    lines.append(f"boot-test: {total.passed} passed, {total.failed} failed, "
                 f"{total.skipped} skipped")
    return "\n".join(lines), total


def _flatten(result: Result, prefix: str = "") -> list[tuple[str, Result]]:
    if not result.children:
        return [(prefix or result.name, result)]
    out = []
    for c in result.children:
        name = f"{prefix}.{c.name}" if prefix else c.name
        out.extend(_flatten(c, name))
    return out


def write_junit(suites: Sequence[Result], path: Path) -> None:
    root = ET.Element("testsuites")
    for s in suites:
        cases = _flatten(s) if s.children else [(s.name, s)]
        c = count(s)
        el = ET.SubElement(root, "testsuite", name=s.name, tests=str(len(cases)),
                           failures=str(c.failed), skipped=str(c.skipped))
        for name, leaf in cases:
            case = ET.SubElement(el, "testcase", classname=s.name, name=name)
            text = "\n".join(leaf.diagnostics)
            if leaf.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=leaf.reason)
            elif leaf.status in (Status.FAIL, Status.ERROR):
                ET.SubElement(case, "failure", message=leaf.reason or "failed").text = text
        if s.status is Status.ERROR and s.children:
            case = ET.SubElement(el, "testcase", classname=s.name, name="(stream)")
            ET.SubElement(case, "failure", message=s.reason)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)
