"""The (K)TAP parser on kselftest, pytest-plugin and KUnit shaped input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import report, tap
from harness.tap import Status

DATA = Path(__file__).parent / "data"

KSELFTEST = """\
TAP version 13
1..4
# Starting 4 tests
ok 1 cpu_opv probe
not ok 2 cpu_opv add
# ret=-1 errno=EINVAL
ok 3 cpu_opv memcpy # SKIP needs CONFIG_CPU_OPV
ok 4 - dashed description
# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0
"""


def test_kselftest_counts() -> None:
    r = tap.parse(KSELFTEST, "prog")
    assert r.status is Status.FAIL
    assert report.count(r) == report.Counts(passed=2, failed=1, skipped=1)
    assert r.children[1].diagnostics == ["# ret=-1 errno=EINVAL"]
    assert r.children[2].reason == "needs CONFIG_CPU_OPV"
    assert r.children[3].name == "dashed description"


@pytest.mark.parametrize("text,why", [
    ("TAP version 13\n1..3\nok 1 a\nok 2 b\n", "planned 3"),
    ("TAP version 13\nok 1 a\n", "no test plan"),
    ("Segmentation fault\n", "no TAP version"),
    ("TAP version 13\n1..2\nok 1 a\nBail out! lost the CPU\n", "bail out"),
])
def test_broken_streams_never_pass(text: str, why: str) -> None:
    r = tap.parse(text, "prog")
    assert r.status is Status.ERROR
    assert why in r.reason
    c = report.count(r)
    assert c.failed + c.errors >= 1


def test_whole_program_skip() -> None:
    r = tap.parse("TAP version 13\n1..0 # SKIP CONFIG_CPU_OPV is not set\n", "prog")
    assert r.status is Status.SKIP
    assert r.reason == "CONFIG_CPU_OPV is not set"


KUNIT_CONSOLE = """\
[    0.512000] Run /init as init process
[    0.400000] KTAP version 1
[    0.400001] 1..1
[    0.400002]     KTAP version 1
[    0.400003]     # Subtest: cpu_opv
[    0.400004]     # module: cpu_opv
[    0.400005]     1..3
[    0.400006]     ok 1 cpu_opv_test_add
[    0.400007] random kernel message in between
[    0.400008]         KTAP version 1
[    0.400009]         # Subtest: cpu_opv_test_memcpy
[    0.400010]         ok 1 len=1
[    0.400011]         not ok 2 len=4096
[    0.400012]     # cpu_opv_test_memcpy: pass:1 fail:1 skip:0 total:2
[    0.400013]     not ok 2 cpu_opv_test_memcpy
[    0.400014]     ok 3 cpu_opv_test_mb # SKIP not on UP
[    0.400015] # cpu_opv: pass:1 fail:1 skip:1 total:3
[    0.400016] # Totals: pass:2 fail:1 skip:1 total:4
[    0.400017] not ok 1 cpu_opv
"""


def test_kunit_from_console_nested() -> None:
    r = tap.parse(tap.extract_ktap(KUNIT_CONSOLE), "kunit")
    assert r.status is Status.FAIL
    suite = r.children[0]
    assert suite.name == "cpu_opv"
    assert [c.name for c in suite.children] == [
        "cpu_opv_test_add", "cpu_opv_test_memcpy", "cpu_opv_test_mb"]
    params = suite.children[1]
    assert [(c.name, c.status) for c in params.children] == [
        ("len=1", Status.PASS), ("len=4096", Status.FAIL)]
    assert report.count(r) == report.Counts(passed=2, failed=1, skipped=1)


def test_no_ktap_in_console() -> None:
    assert tap.extract_ktap("[ 0.1] Linux version 6.12.107\n") == ""


@pytest.mark.parametrize("path", sorted(DATA.glob("*.tap")), ids=lambda p: p.name)
def test_recorded_streams_parse(path: Path) -> None:
    """Every recorded stream parses to what its name says it is."""
    r = tap.parse(path.read_text(), path.stem)
    expected = path.stem.rsplit("-", 1)[-1]
    assert r.status.value == expected, r.reason


def test_empty_plan_is_never_a_pass() -> None:
    """`1..0` ran nothing: without a SKIP reason that is an error."""
    r = tap.parse("TAP version 13\n1..0\n", "prog")
    assert r.status is Status.ERROR and "nothing ran" in r.reason
    assert report.count(r) == report.Counts(errors=1)
    skipped = tap.parse("TAP version 13\n1..0 # SKIP no cpu_opv\n", "prog")
    assert report.count(skipped) == report.Counts(skipped=1)


def test_printk_caller_ids_are_stripped() -> None:
    console = "".join(f"[    1.{i:06d}][    T1] {line}\n" for i, line in enumerate(
        ["Run /init", "KTAP version 1", "1..1", "    # Subtest: s", "    1..2",
         "    ok 1 a", "    ok 2 b", "ok 1 s"]))
    r = tap.read_kunit(console)
    assert (r.status, report.count(r)) == (Status.PASS, report.Counts(passed=2))


@pytest.mark.parametrize("indent", ["\t", "  ", "    "], ids=["tab", "2 spaces", "4 spaces"])
def test_nesting_by_any_indent(indent: str) -> None:
    text = "".join(f"{line}\n" for line in [
        "TAP version 14", "1..2",
        f"{indent}# Subtest: one", f"{indent}1..2", f"{indent}ok 1 a",
        f"{indent}{indent}# Subtest: params", f"{indent}{indent}ok 1 p=1",
        f"{indent}{indent}not ok 2 p=2", f"{indent}not ok 2 params",
        "not ok 1 one",
        f"{indent}# Subtest: two", f"{indent}1..1", f"{indent}ok 1 c # SKIP no",
        "ok 2 two # SKIP"])
    r = tap.parse(text, "kunit")
    assert [c.name for c in r.children] == ["one", "two"]
    assert report.count(r) == report.Counts(passed=2, failed=1, skipped=1)


def test_missing_tests_are_counted_as_failed() -> None:
    r = tap.parse("KTAP version 1\n1..3\nok 1 a\n", "prog")
    assert r.status is Status.ERROR
    assert report.count(r) == report.Counts(passed=1, failed=2)


def test_junit_counts_what_it_writes(tmp_path: Path) -> None:
    broken = tap.parse("TAP version 13\nok 1 a\nok 2 b\n", "prog")   # no plan
    path = tmp_path / "junit.xml"
    report.write_junit([broken], path, 1, "a test", "1 failed")
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
        assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases))
    prog = root.find("testsuite[@name='prog']")
    assert prog is not None and prog.get("tests") == "3"   # a, b and "(stream)"
