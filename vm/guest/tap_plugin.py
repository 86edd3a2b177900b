"""pytest plugin: write each test module's results as a KTAP file.

The host folds pytest suites, kselftests and KUnit into one report through
one (K)TAP parser (harness.tap); this plugin gives pytest that format.
Enable with `-p vm.guest.tap_plugin --tap-dir DIR`.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tap-dir", default=None,
                     help="write one KTAP file per test module into this directory")


class _Collector:
    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        # module -> test id -> (status, reason); insertion order is run order.
        self.results: dict[str, dict[str, tuple[str, str]]] = {}
        # Modules skipped as a whole at import (e.g. no cpu_opv in the kernel).
        self.module_skips: dict[str, str] = {}

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and report.nodeid.endswith(".py"):
            longrepr = report.longrepr
            msg = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.module_skips[Path(report.nodeid).stem] = msg.removeprefix("Skipped: ")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module, _, name = report.nodeid.partition("::")
        tests = self.results.setdefault(Path(module).stem, {})
        status, reason = tests.get(name, ("ok", ""))
        if report.skipped:
            longrepr = report.longrepr
            msg = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            status, reason = "skip", msg.removeprefix("Skipped: ")
        elif report.failed:
            # A failure in setup, call or teardown fails the test.
            status, reason = "fail", report.when
        tests[name] = (status, reason)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.outdir.mkdir(parents=True, exist_ok=True)
        for module, reason in self.module_skips.items():
            reason = " ".join(reason.split()).replace("#", "_")
            (self.outdir / f"{module}.tap").write_text(
                f"KTAP version 1\n1..0 # SKIP {reason}\n")
        for module, tests in self.results.items():
            lines = ["KTAP version 1", f"1..{len(tests)}"]
            for i, (name, (status, reason)) in enumerate(tests.items(), 1):
                name = name.replace("#", "_")
                reason = " ".join(reason.split()).replace("#", "_")
                if status == "skip":
                    lines.append(f"ok {i} {name} # SKIP {reason}")
                elif status == "fail":
                    lines += [f"not ok {i} {name}", f"# failed in {reason}"]
                else:
                    lines.append(f"ok {i} {name}")
            (self.outdir / f"{module}.tap").write_text("\n".join(lines) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    outdir = config.getoption("--tap-dir")
    if outdir:
        config.pluginmanager.register(_Collector(Path(outdir)), "cpu-opv-tap")
