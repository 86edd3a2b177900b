"""Our (K)TAP reader against kunit_parser.py, on the logs the kernel ships
for kunit's own tests (tools/testing/kunit/test_data/ in the 6.12 tree).

KUNIT below is kunit's answer for each log, recorded once by running the
6.12.107 tree's own parser (python3 3.11, cwd tools/testing/kunit):

    import io, kunit_parser, kunit_printer
    kunit_parser.stdout = kunit_printer.Printer(io.StringIO())
    t = kunit_parser.parse_run_tests(open(log, errors="replace").readlines())
    t.status.name, t.counts   # passed, failed, crashed, skipped, errors

Our reader is run the way the boot-test reads a console (tap.read_kunit).
It agrees when it counts the same passed, failed (kunit's failed plus
crashed: tests that never reported) and skipped tests, and reaches the same
kind of verdict.  DELIBERATE lists where it does not, and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import REPO, report, tap
from harness.tap import Status

CORPUS = REPO / "build/src/patched/tools/testing/kunit/test_data"

# log -> (kunit status, passed, failed, crashed, skipped, errors)
KUNIT: dict[str, tuple[str, int, int, int, int, int]] = {
    "test_config_printk_time.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_insufficient_memory.log": ("FAILURE_TO_PARSE_TESTS", 0, 0, 0, 0, 1),
    "test_interrupted_tap_output.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_is_test_passed-all_passed.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_is_test_passed-all_passed_nested.log": ("SUCCESS", 7, 0, 0, 0, 0),
    "test_is_test_passed-failure.log": ("FAILURE", 9, 1, 0, 0, 0),
    "test_is_test_passed-kselftest.log": ("SUCCESS", 2, 0, 0, 0, 0),
    "test_is_test_passed-missing_plan.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_is_test_passed-no_tests_no_plan.log": ("SUCCESS", 1, 0, 0, 0, 1),
    "test_is_test_passed-no_tests_run_no_header.log": ("FAILURE_TO_PARSE_TESTS", 0, 0, 0, 0, 1),
    "test_is_test_passed-no_tests_run_with_header.log": ("NO_TESTS", 0, 0, 0, 0, 1),
    "test_kernel_panic_interrupt.log": ("TEST_CRASHED", 8, 0, 2, 0, 3),
    "test_multiple_prefixes.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_output_isolated_correctly.log": ("SUCCESS", 2, 0, 0, 0, 0),
    "test_output_with_prefix_isolated_correctly.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_parse_attributes.log": ("SUCCESS", 1, 0, 0, 0, 0),
    "test_parse_ktap_output.log": ("SUCCESS", 3, 0, 0, 0, 0),
    "test_parse_subtest_header.log": ("SUCCESS", 1, 0, 0, 0, 0),
    "test_pound_no_prefix.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_pound_sign.log": ("SUCCESS", 10, 0, 0, 0, 0),
    "test_skip_all_tests.log": ("SKIPPED", 0, 0, 0, 5, 0),
    "test_skip_tests.log": ("SUCCESS", 4, 0, 0, 1, 0),
    "test_strip_hyphen.log": ("SUCCESS", 2, 0, 0, 0, 0),
}

# kunit's status -> the verdicts of ours that mean the same.
SAME_VERDICT: dict[str, set[Status]] = {
    "SUCCESS": {Status.PASS},
    "SKIPPED": {Status.SKIP},
    "FAILURE": {Status.FAIL},
    "TEST_CRASHED": {Status.FAIL, Status.ERROR},
    "NO_TESTS": {Status.ERROR},
    "FAILURE_TO_PARSE_TESTS": {Status.ERROR},
}

_NO_PLAN = ("no top-level plan (1..N): kunit accepts it, we do not, because a "
            "program that died before printing its plan would look the same")

# log -> (our status, our counts, why we differ from kunit on purpose)
DELIBERATE: dict[str, tuple[Status, report.Counts, str]] = {
    "test_is_test_passed-missing_plan.log": (Status.ERROR, report.Counts(10, 0, 0, 1), _NO_PLAN),
    "test_output_isolated_correctly.log": (Status.ERROR, report.Counts(2, 0, 0, 1), _NO_PLAN),
    "test_output_with_prefix_isolated_correctly.log": (
        Status.ERROR, report.Counts(10, 0, 0, 1), _NO_PLAN),
    "test_is_test_passed-no_tests_no_plan.log": (
        Status.FAIL, report.Counts(0, 0, 0, 1),
        "subtest 'case' announces itself, has no plan and runs nothing, yet its "
        "parent prints 'ok 1 - case': kunit counts that line as a pass (and an "
        "error); for us a test that ran nothing is an error, never a pass"),
}


def _corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"no kunit test_data in {CORPUS}: run `make patch` first "
                    "(it unpacks and patches the 6.12 tree)")
    return CORPUS


def agrees(name: str, ours: tap.TestResult) -> bool:
    status, p, f, c, s, _ = KUNIT[name]
    return _counts3(ours) == (p, f + c, s) and ours.status in SAME_VERDICT[status]


def _counts3(result: tap.TestResult) -> tuple[int, int, int]:
    c = report.count(result)
    return c.passed, c.failed, c.skipped


def _read(name: str) -> tap.TestResult:
    return tap.read_kunit((_corpus() / name).read_text(errors="replace"))


def test_corpus_is_the_recorded_one() -> None:
    assert sorted(p.name for p in _corpus().glob("*.log")) == sorted(KUNIT)


@pytest.mark.parametrize("name", sorted(KUNIT))
def test_log_reads_as_kunit_does(name: str) -> None:
    ours = _read(name)
    if name in DELIBERATE:
        status, counts, _ = DELIBERATE[name]
        assert (ours.status, report.count(ours)) == (status, counts)
        assert not agrees(name, ours)
    else:
        assert agrees(name, ours), (ours.status, report.count(ours), KUNIT[name])


def test_agreement_count() -> None:
    agreed = sum(agrees(n, _read(n)) for n in KUNIT)
    assert (agreed, len(KUNIT)) == (19, 23)
    assert agreed == len(KUNIT) - len(DELIBERATE)
