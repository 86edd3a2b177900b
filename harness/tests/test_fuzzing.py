"""The host's side of the fuzzer (harness/fuzzing.py)."""

from __future__ import annotations

from pathlib import Path

from harness import fuzzing, tap


def test_boot_test_defaults() -> None:
    assert fuzzing.spec(None, 5, None, None, "debug") == fuzzing.Spec(100_000, 5, 0, 1200)
    assert fuzzing.spec(None, 5, None, None, "").calls == 10_000
    s = fuzzing.spec(123, None, 2, 0, "")
    assert s.calls == 123 and s.workers == 2 and s.seconds == 0 and s.seed >= 0


def test_guest_arg_is_one_word() -> None:
    """QEMU-booted guests get their arguments on the kernel command line."""
    arg = fuzzing.Spec(100_000, 42, 3, 600).guest_arg()
    assert arg == "100000,42,3,600" and not any(c.isspace() for c in arg)


def test_no_results_is_an_error(tmp_path: Path) -> None:
    [r] = fuzzing.collect(tmp_path)
    assert r.status is tap.Status.ERROR


def test_make_fuzz_stops_before_the_vm_timeout() -> None:
    """Unbounded, the fuzzer would run past BOOT_TIMEOUT and the VM be
    declared hung with no verdict written (seen: FUZZ_TIME=2100, 1800)."""
    unbounded = fuzzing.Spec(1_000_000, 1)
    spec, timeout = fuzzing.for_vm(unbounded, 1800)
    assert (spec.seconds, timeout) == (1500, 1800)
    longer, timeout = fuzzing.for_vm(fuzzing.Spec(1_000_000, 1, 0, 2100), 1800)
    assert (longer.seconds, timeout) == (2100, 2400)
    short, timeout = fuzzing.for_vm(fuzzing.Spec(10, 1, 0, 60), 1800)
    assert (short.seconds, timeout) == (60, 1800)


def test_boot_test_vm_waits_for_the_fuzz_bound_on_top() -> None:
    """The debug boot-test's suites took about 570 s and its fuzz run up to
    its bound; with the bound inside BOOT_TIMEOUT a slow host would see the
    VM killed as hung instead of the fuzzer's own verdict."""
    debug = fuzzing.spec(None, 1, None, None, "debug")
    assert fuzzing.boot_test_timeout(debug, 1800) == 1800 + 1200
    assert fuzzing.boot_test_timeout(fuzzing.spec(None, 1, None, None, ""), 1800) == 2100
    assert fuzzing.boot_test_timeout(None, 1800) == 1800
