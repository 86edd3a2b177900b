"""Report stage: per-suite counts on the host, JUnit XML, the closing line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.tap import Status, TestResult


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0     # broken streams: no plan, no TAP, 1..0 with no reason

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.passed + other.passed, self.failed + other.failed,
                      self.skipped + other.skipped, self.errors + other.errors)

    def __str__(self) -> str:
        return (f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped, "
                f"{self.errors} errors")


_FIELD = {Status.PASS: "passed", Status.FAIL: "failed", Status.SKIP: "skipped",
          Status.ERROR: "errors"}


def count(result: TestResult) -> Counts:
    """Leaves are the test cases; harness.tap puts every verdict on one."""
    totals = dict.fromkeys(_FIELD.values(), 0)
    for leaf in result.leaves():
        totals[_FIELD[leaf.status]] += 1
    return Counts(**totals)


def summary(suites: Sequence[TestResult]) -> tuple[str, Counts]:
    lines = []
    total = Counts()
    for s in suites:
        c = count(s)
        total += c
        extra = f" ({s.reason})" if s.reason and s.status is not Status.PASS else ""
        errors = f" {c.errors} errors" if c.errors else ""
        lines.append(f"  {s.name:<46} {c.passed:4d} passed {c.failed:4d} failed "
                     f"{c.skipped:4d} skipped{errors}{extra}")
        for leaf in s.leaves():
            if leaf.status in (Status.FAIL, Status.ERROR):
                lines.append(f"      {leaf.status.name} {leaf.name} {leaf.reason}".rstrip())
    lines.append(f"report: {total}")
    return "\n".join(lines), total


def _flatten(result: TestResult, prefix: str = "") -> list[tuple[str, TestResult]]:
    if not result.children:
        return [(prefix or result.name, result)]
    out = []
    for c in result.children:
        name = f"{prefix}.{c.name}" if prefix else c.name
        out.extend(_flatten(c, name))
    return out


def write_junit(suites: Sequence[TestResult], path: Path, exit_code: int,
                blame: str, why: str) -> None:
    """Every suite, then a "harness" suite that names the run's verdict:
    its exit code and who is to blame, as properties, and one case that
    fails with the reason when the run did not pass (also when no test
    ran at all: a build error still leaves a junit.xml)."""
    root = ET.Element("testsuites")
    for s in suites:
        _junit_suite(root, s.name, _flatten(s) if s.children else [(s.name, s)])
    verdict = TestResult("verdict", Status.PASS if exit_code == 0 else Status.ERROR,
                         f"blame: {blame}: {why}")
    el = _junit_suite(root, "harness", [("verdict", verdict)])
    props = ET.Element("properties")
    for name, value in (("exit_code", str(exit_code)), ("blame", blame), ("why", why)):
        ET.SubElement(props, "property", name=name, value=value)
    el.insert(0, props)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)


def _junit_suite(root: ET.Element, name: str,
                 cases: Sequence[tuple[str, TestResult]]) -> ET.Element:
    # The attributes count what is written below them, case by case.
    n = {status: sum(leaf.status is status for _, leaf in cases) for status in Status}
    el = ET.SubElement(root, "testsuite", name=name, tests=str(len(cases)),
                       failures=str(n[Status.FAIL]), errors=str(n[Status.ERROR]),
                       skipped=str(n[Status.SKIP]))
    for case_name, leaf in cases:
        case = ET.SubElement(el, "testcase", classname=name, name=case_name)
        text = "\n".join(leaf.diagnostics)
        if leaf.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=leaf.reason)
        elif leaf.status is Status.FAIL:
            ET.SubElement(case, "failure", message=leaf.reason or "failed").text = text
        elif leaf.status is Status.ERROR:
            ET.SubElement(case, "error", message=leaf.reason or "error").text = text
    return el
