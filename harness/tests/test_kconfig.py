"""Config stage: fragments are parsed strictly and dropped options named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import arch, kconfig
from harness.errors import ConfigError, UserError

KCONFIG = """\
config SMP
\tbool "SMP"
config HOTPLUG_CPU
\tbool "hotplug"
\tdepends on SMP
config NR_CPUS
\tint "cpus"
\tdefault 1
menuconfig MODULES
\tbool "modules"
\tmodules
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "Kconfig").write_text(KCONFIG)
    (tmp_path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 107\n")
    return tmp_path


def test_fragment_syntax_error(tmp_path: Path) -> None:
    frag = tmp_path / "bad.config"
    frag.write_text("CONFIG_SMP=y\nSMP=y\n")
    with pytest.raises(UserError, match=r"bad.config:2: not a Kconfig line"):
        kconfig.parse_fragment(frag)


def test_fragment_forms(tmp_path: Path) -> None:
    frag = tmp_path / "ok.config"
    frag.write_text("# comment\n\nCONFIG_SMP=y\n# CONFIG_NR_CPUS is not set\nCONFIG_X=\"s\"\n")
    got = [(r.name, r.value) for r in kconfig.parse_fragment(frag)]
    assert got == [("SMP", "y"), ("NR_CPUS", "n"), ("X", '"s"')]


def _merged(tree: Path, tmp_path: Path,
            fragment: str) -> tuple[Any, Path, list[kconfig.Request]]:
    """The toy tree's Kconfig with `fragment` merged into an empty .config."""
    kconf = kconfig.load_kconfig(arch.get("x86_64"), tree)   # also: `modules` parses
    frag = tmp_path / "f.config"
    frag.write_text(fragment)
    reqs = kconfig.parse_fragment(frag)
    config = tmp_path / ".config"
    config.write_text("")
    kconfig._merge(kconf, config, reqs)
    return kconf, config, reqs


def test_dropped_option_names_dependency(tree: Path, tmp_path: Path) -> None:
    kconf, config, reqs = _merged(
        tree, tmp_path, "CONFIG_SMP=n\nCONFIG_HOTPLUG_CPU=y\nCONFIG_NR_CPUS=4\nCONFIG_NOPE=y\n")
    with pytest.raises(ConfigError) as e:
        kconfig._verify(kconf, config, reqs)
    msg = str(e.value)
    assert "CONFIG_HOTPLUG_CPU=y (f.config:2) is n: depends on SMP, which is n" in msg
    assert "CONFIG_NOPE (f.config:4): no such symbol" in msg
    assert "NR_CPUS" not in msg and "CONFIG_SMP" not in msg.replace("on SMP", "")


def test_later_fragment_overrides(tree: Path, tmp_path: Path) -> None:
    kconf = kconfig.load_kconfig(arch.get("x86_64"), tree)
    debug, bench = tmp_path / "debug.config", tmp_path / "bench.config"
    debug.write_text("CONFIG_SMP=y\nCONFIG_HOTPLUG_CPU=y\nCONFIG_NR_CPUS=4\n")
    bench.write_text("CONFIG_HOTPLUG_CPU=n\n")
    reqs = kconfig.requests_of([debug, bench])
    assert [(r.name, r.value, r.origin) for r in reqs] == [
        ("SMP", "y", "debug.config:1"), ("HOTPLUG_CPU", "n", "bench.config:1"),
        ("NR_CPUS", "4", "debug.config:3")]
    config = tmp_path / ".config"
    config.write_text("")
    kconfig._merge(kconf, config, reqs)
    kconfig._verify(kconf, config, reqs)   # no conflict between the two
    assert "# CONFIG_HOTPLUG_CPU is not set" in config.read_text()


def test_all_requested_survive(tree: Path, tmp_path: Path) -> None:
    kconfig._verify(*_merged(tree, tmp_path, "CONFIG_SMP=y\nCONFIG_HOTPLUG_CPU=y\n"
                             "CONFIG_NR_CPUS=4\n"))


def test_repo_fragments_parse() -> None:
    for frag in arch.FRAGMENT_DIR.glob("*.config"):
        assert kconfig.parse_fragment(frag), f"{frag} is empty"


def test_failed_config_leaves_no_stamp(tree: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A .config that failed verification is never reported as up to date."""
    objdir = tmp_path / "obj"
    objdir.mkdir()
    (objdir / ".config").write_text("")
    (objdir / kconfig.STAMP).write_text("stale\n")
    monkeypatch.setattr(kconfig, "run", lambda *a, **k: None)
    bad = tmp_path / "bad.config"
    bad.write_text("CONFIG_NOPE=y\n")
    with pytest.raises(ConfigError):
        kconfig.configure(arch.get("x86_64"), tree, objdir, "id", [bad])
    assert not (objdir / kconfig.STAMP).exists()


def test_stamp_is_checked_before_kconfig_is_parsed(tree: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    objdir = tmp_path / "obj"
    objdir.mkdir()
    (objdir / ".config").write_text("")   # what tinyconfig would leave
    monkeypatch.setattr(kconfig, "run", lambda *a, **k: None)
    monkeypatch.setattr(kconfig, "_verify", lambda *a: None)
    kconfig.configure(arch.get("x86_64"), tree, objdir, "id")
    assert (objdir / kconfig.STAMP).read_text().split()[1:] == [
        *kconfig.COMMON_FRAGMENTS, "x86_64.config"]   # the tree has no CPU_OPV

    def no_parse(*_: object) -> None:
        raise AssertionError("Kconfig parsed although nothing changed")
    monkeypatch.setattr(kconfig, "load_kconfig", no_parse)
    kconfig.configure(arch.get("x86_64"), tree, objdir, "id")
    assert "is up to date (vm.config, debug.config" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="parsed"):
        kconfig.configure(arch.get("x86_64"), tree, objdir, "another tree")
