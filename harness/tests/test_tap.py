"""The (K)TAP parser on kselftest, pytest-plugin and KUnit shaped input."""

from __future__ import annotations

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
    assert report.count(r).failed >= 1


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
