"""Guest root builder and boot-test-all report, without apt or a VM."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import REPO, arch, boot, cli, guest_root, report
from harness.errors import Blame

SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
"""


def test_only_binary_stanzas_are_kept() -> None:
    kept = guest_root.deb_stanzas(SOURCES)
    assert kept.count("Types:") == 1 and "deb-src" not in kept


def test_package_list_ignores_comments(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("# head\nlibc6\n\npython3-minimal  # why\n")
    assert guest_root.packages(f) == ["libc6", "python3-minimal"]


def test_the_shipped_list_has_python_and_pytest() -> None:
    names = guest_root.packages()
    assert {"libc6", "python3.11-minimal", "libffi8", "python3-pytest", "bash"} <= set(names)
    assert len(names) == len(set(names))


def test_root_is_reused_until_an_input_changes(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    downloads: list[list[str]] = []

    def fake_download(self: guest_root.AptCache, pkgs: list[str]) -> list[Path]:
        downloads.append(pkgs)
        return []

    monkeypatch.setattr(guest_root.AptCache, "download", fake_download)
    a = arch.get("arm64")
    root = tmp_path / "root"
    guest_root.build(a, root, tmp_path / "cache", Path("/some/repo"))
    assert (root / "cpu-opv-init").stat().st_mode & 0o111
    assert (root / "some/repo").is_dir()
    assert (root / "bin/mount").readlink() == Path("busybox")
    guest_root.build(a, root, tmp_path / "cache", Path("/some/repo"))
    assert len(downloads) == 1
    guest_root.build(a, root, tmp_path / "cache", Path("/other/repo"))
    assert len(downloads) == 2


def test_guest_facts() -> None:
    text = ("x\ncpu-opv-guest: start uptime=6.15 cpus=4\n...\n"
            "cpu-opv-guest: done rc=0 uptime=306.15\n")
    f = boot.guest_facts(text)
    assert (f.boot_s, f.tests_s, f.cpus) == (6.15, 300.0, 4)
    assert boot.guest_facts("nothing") == boot.GuestFacts(None, None, None)


def test_all_table_shows_each_arch() -> None:
    table = cli.all_table([
        cli.Outcome("arm64", cli.PASSED, 900.0, 5.0, boot.GuestFacts(6.0, 300.0, 4),
                    report.Counts(500, 0, 9), wait_s=120.0),
        cli.Outcome("arm", cli.Verdict(Blame.HOST, "build: make failed")),
    ])
    lines = table.splitlines()
    assert lines[0].split()[2:6] == ["kernel", "root", "wait", "boot"]
    assert lines[1].split() == ["arm64", "0", "900s", "5s", "120s", "6s", "300s", "4", "500",
                                "0", "9"]
    assert "build: make failed" in lines[2]


def test_all_table_columns_line_up_under_a_long_arch_name() -> None:
    facts = boot.GuestFacts(32.0, 922.0, 4)
    table = cli.all_table([
        cli.Outcome("x86_64-debug", cli.PASSED, 511.0, 0.0, facts, report.Counts(575, 0, 6),
                    wait_s=530.0),
        cli.Outcome("arm", cli.PASSED, 1059.0, 4.0, facts, report.Counts(499, 0, 11)),
    ])
    head, *rows = table.splitlines()
    # Each heading ends where its numbers end.
    for word in ("exit", "kernel", "wait", "skipped"):
        end = head.index(word) + len(word)
        assert all(row[end - 1] != " " and (end == len(row) or row[end] == " ")
                   for row in rows), (word, table)


def _all_ctx(tmp_path: Path, debug_arches: frozenset[str]) -> cli.Context:
    return cli.Context(cli.Paths(tmp_path, arch.get("x86_64")), None, tmp_path, [], 1800,
                       debug_arches=debug_arches)


def test_boot_test_all_boots_the_debug_kernel_of_debug_arches(tmp_path: Path) -> None:
    # make test: x86_64 on its DEBUG=1 kernel, the others on their test kernel.
    ctx = _all_ctx(tmp_path, frozenset({"x86_64"}))
    x86 = cli.all_context(ctx, "x86_64")
    assert x86.paths.arch_dir == tmp_path / "x86_64-debug"
    assert any(f.name == "debug-heavy.config" for f in x86.extra_config)
    assert x86.fuzz is not None and x86.fuzz.calls == 100_000
    a64 = cli.all_context(ctx, "arm64")
    assert a64.paths.arch_dir == tmp_path / "arm64"
    assert not any("debug-heavy" in f.name for f in a64.extra_config)
    assert a64.fuzz is not None and a64.fuzz.calls == 10_000


def test_boot_test_all_refuses_an_unknown_debug_arch(tmp_path: Path) -> None:
    verdict = cli._run_stage(cli.stage_boot_test_all, _all_ctx(tmp_path, frozenset({"sparc"})))
    assert verdict.rc == 2 and "DEBUG_ARCHES: unknown architecture sparc" in verdict.why


def test_init_makes_the_repo_mountpoint_after_the_tmpfs_that_would_hide_it() -> None:
    # A clone in /root/cpu-opv: the guest root has that directory, but
    # init's tmpfs on /root hid it, and the 9p mount failed (seen in a
    # fresh Debian 12 chroot, 2026-12-04).
    lines = (REPO / "vm/guest/init").read_text().splitlines()
    last_tmpfs = max(i for i, line in enumerate(lines)
                     if line.startswith("mount -t tmpfs"))
    mkdir = lines.index('mkdir -p "$cpu_opv_repo" 2>/dev/null')
    ninep = next(i for i, line in enumerate(lines) if line.startswith("mount -t 9p"))
    assert last_tmpfs < mkdir < ninep
