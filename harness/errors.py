"""Errors, split by blame: who a failure is to be put on.

Every module raises one of these; only harness.cli turns a blame into an
exit code (0 passed, 1 what is under test failed, 2 the machinery failed
or the input was bad), so the mapping is written down once, there.
"""

from __future__ import annotations

import enum

EXIT_PASS = 0
EXIT_TEST_FAILED = 1
EXIT_INFRA = 2


class Blame(enum.Enum):
    """Who to look at first; the value is what the closing line says."""

    NOBODY = "nobody"            # it passed
    SERIES = "the series"        # patches/: does not apply, does not build,
                                 # or its kernel panics or warns in the guest
    TEST = "a test"              # a test (or a test program) failed
    HOST = "the host"            # download, tools, QEMU, a VM that died or hung
    INPUT = "your input"         # an option, a path, a file the user gave


class HarnessError(Exception):
    """Base class: carries the pipeline stage that failed and a hint."""

    blame = Blame.HOST

    def __init__(self, stage: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.stage}: {self.message}"
        if self.hint:
            text += f"\n  what to do: {self.hint}"
        return text


class UserError(HarnessError):
    """The user's input is wrong (unknown arch, bad path, bad option)."""

    blame = Blame.INPUT


class InfraError(HarnessError):
    """A tool, download or the VM failed: not a verdict on the series."""


class FetchError(InfraError):
    pass


class ConfigError(InfraError):
    pass


class BuildError(InfraError):
    """The build machinery failed (timeout, an image make did not leave)."""


class BootError(InfraError):
    """The VM died, hung, or never reached the guest script."""


class SeriesError(HarnessError):
    """What is under test failed before any test could judge it."""

    blame = Blame.SERIES


class PatchError(SeriesError):
    """A patch of the series does not apply."""


class CompileError(SeriesError):
    """make failed on the patched tree."""


class GuestKernelError(SeriesError):
    """The kernel under test printed a panic, oops, BUG or WARNING."""
