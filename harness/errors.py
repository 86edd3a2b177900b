"""Errors, split by blame, and the exit codes the entry point maps them to.

Only harness.cli chooses exit codes; every other module raises one of these.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_TEST_FAILED = 1
EXIT_INFRA = 2


class HarnessError(Exception):
    """Base class: carries the pipeline stage that failed and a hint."""

    exit_code = EXIT_INFRA

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


class InfraError(HarnessError):
    """A tool, download, build or boot failed: not a test verdict."""


class FetchError(InfraError):
    pass


class PatchError(InfraError):
    pass


class ConfigError(InfraError):
    pass


class BuildError(InfraError):
    pass


class BootError(InfraError):
    """The guest did not come back: timeout, panic, oops, BUG, WARNING."""
