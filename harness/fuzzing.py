"""The host's side of the fuzzer: what the guest is asked to run, and
reading back what it wrote (the fuzzer itself, harness/fuzz/, runs in the
guest; host stages never import it).

Every boot-test ends with a bounded run (BOOT_TEST_CALLS, and more on the
DEBUG=1 kernel, cut short at BOOT_TEST_SECONDS); `make fuzz` runs the
fuzzer alone, as many calls as asked.  The seed is the time unless SEED
says otherwise; the guest prints it, and each failure the command that
replays it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from harness import tap

# Calls per boot-test, by kernel variant ("" the test kernel, "debug" DEBUG=1).
BOOT_TEST_CALLS = {"": 10_000, "debug": 100_000}
# The bounds leave room for a slow host: the debug kernel's 100,000 calls
# took 463 s on one run and would have needed 877 s on another (38 calls/s
# per worker instead of 72, same commit, same machine).
BOOT_TEST_SECONDS = {"": 300, "debug": 1200}


@dataclass(frozen=True)
class Spec:
    calls: int
    seed: int
    workers: int = 0          # 0: the guest's online CPUs - 1
    seconds: int = 0          # 0: no time bound

    def guest_arg(self) -> str:
        """One word for vm/guest/run-tests.sh (no spaces: the QEMU-booted
        guests get their arguments on the kernel command line)."""
        return f"{self.calls},{self.seed},{self.workers},{self.seconds}"


def spec(calls: int | None, seed: int | None, workers: int | None, seconds: int | None,
         variant: str) -> Spec:
    """SEED, N, WORKERS and FUZZ_TIME, or the boot-test's defaults."""
    return Spec(BOOT_TEST_CALLS.get(variant, 10_000) if calls is None else calls,
                int(time.time()) % 1_000_000 if seed is None else seed,
                workers or 0,
                BOOT_TEST_SECONDS.get(variant, 300) if seconds is None else seconds)


def collect(results: Path) -> list[tap.TestResult]:
    """results/fuzz/*.tap, or one ERROR result when there is none."""
    fdir = results / "fuzz"
    taps = sorted(fdir.glob("*.tap")) if fdir.is_dir() else []
    if not taps:
        return [tap.TestResult("fuzz", tap.Status.ERROR, "no fuzz results: the fuzzer did not run")]
    return [tap.parse(f.read_text(errors="replace"), f"fuzz:{f.stem}") for f in taps]


# Time the guest needs around a fuzz run: boot, the fuzzer's setup, and
# the workers finishing their last batch after the deadline.
GUEST_MARGIN = 300


def boot_test_timeout(fuzz: Spec | None, boot_timeout: int) -> int:
    """A boot-test's VM timeout: BOOT_TIMEOUT is the suites' share, and the
    fuzz run that ends the boot-test has its own bound on top, so a slow
    fuzzer stops itself with a verdict instead of the VM being killed."""
    return boot_timeout + (fuzz.seconds if fuzz is not None else 0)


def for_vm(fuzz: Spec, boot_timeout: int) -> tuple[Spec, int]:
    """make fuzz's run and the VM's timeout, made to agree: with no time
    bound the fuzzer stops itself before the VM would be declared hung (and
    says how many calls it made); with one past BOOT_TIMEOUT, the VM waits
    for it."""
    if fuzz.seconds <= 0:
        return dataclasses.replace(fuzz, seconds=max(60, boot_timeout - GUEST_MARGIN)), boot_timeout
    return fuzz, max(boot_timeout, fuzz.seconds + GUEST_MARGIN)
