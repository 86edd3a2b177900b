"""Config stage: tinyconfig + our fragments, merged and verified with kconfiglib.

The kernel's own `make olddefconfig` has the last word on the values; then
every option the fragments ask for is checked against the result, and the
ones Kconfig dropped are named, with the dependency that dropped them.  A
test kernel that silently lost an option lies about what it tests.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import kconfiglib

from harness.arch import FRAGMENT_DIR, ArchConfig
from harness.digest import files_digest
from harness.errors import ConfigError, UserError
from harness.run import echo, run

STAGE = "config"
# Fragments merged on every architecture, in this order, before the arch's.
COMMON_FRAGMENTS = ("vm.config", "debug.config", "rseq.config")
# Merged only when the tree defines the symbol named in the value, so that
# an empty series (a vanilla kernel) still configures.
CONDITIONAL_FRAGMENTS = {"cpu_opv.config": "CPU_OPV"}
STAMP = ".cpu-opv-config.sha256"

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Request:
    """One option a fragment asks for."""

    name: str      # without CONFIG_
    value: str     # "y", "n", "m", a number or a quoted string
    origin: str    # fragment:line, for the error message


def parse_fragment(path: Path) -> list[Request]:
    """Read a fragment; anything but an option or a comment is a user error."""
    requests = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        m = _SET.match(line)
        if m:
            requests.append(Request(m[1], m[2], f"{path.name}:{lineno}"))
            continue
        m = _UNSET.match(line)
        if m:
            requests.append(Request(m[1], "n", f"{path.name}:{lineno}"))
            continue
        if line and not line.startswith("#"):
            raise UserError(STAGE, f"{path}:{lineno}: not a Kconfig line: {raw!r}",
                            "write CONFIG_FOO=y, CONFIG_FOO=n or a # comment")
    return requests


def kconfig_env(arch: ArchConfig, srctree: Path) -> dict[str, str]:
    """The variables the top Makefile exports to Kconfig, for kconfiglib."""
    cc = f"{arch.cross_compile}gcc"
    try:
        cc_text = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError) as e:
        raise ConfigError(STAGE, f"cannot run {cc} --version",
                          "run `make setup` to install the compilers") from e
    return {
        "srctree": str(srctree),
        "ARCH": arch.kernel_arch,
        "SRCARCH": arch.kernel_arch,
        "HEADER_ARCH": arch.kernel_arch,
        "SUBARCH": "x86",
        "KERNELVERSION": kernel_version(srctree),
        "CC": cc,
        "LD": f"{arch.cross_compile}ld",
        "OBJCOPY": f"{arch.cross_compile}objcopy",
        "NM": f"{arch.cross_compile}nm",
        "CC_VERSION_TEXT": cc_text,
        "HOSTCC": "gcc",
        "HOSTCXX": "g++",
        "RUSTC": "rustc",
        "BINDGEN": "bindgen",
        "PAHOLE": "pahole",
        "CLANG_FLAGS": "",
        "USERCFLAGS": "",
        "USERLDFLAGS": "",
        "CROSS_COMPILE_COMPAT": "",
    }


def kernel_version(srctree: Path) -> str:
    fields = dict.fromkeys(("VERSION", "PATCHLEVEL", "SUBLEVEL"), "0")
    for line in (srctree / "Makefile").read_text().splitlines()[:10]:
        key, _, val = line.partition("=")
        if key.strip() in fields:
            fields[key.strip()] = val.strip()
    return "{VERSION}.{PATCHLEVEL}.{SUBLEVEL}".format(**fields)


class _Kconfig(kconfiglib.Kconfig):  # type: ignore[misc]
    """kconfiglib 14.1 predates the bare `modules` keyword (Linux 6.3+).

    It still understands the older spelling `option modules`, which means
    the same, so the one line that uses it is rewritten as it is read.
    """

    def _open(self, filename: str, mode: str) -> IO[str]:
        f: IO[str] = super()._open(filename, mode)
        if "r" not in mode:
            return f
        with f:
            text = f.read()
        return io.StringIO(re.sub(r"^(\s+)modules[ \t]*$", r"\1option modules",
                                  text, flags=re.M))


def load_kconfig(arch: ArchConfig, srctree: Path) -> Any:
    # kconfiglib reads its inputs from the environment, like the kernel's
    # conf does; put them there only for the duration of the parse.
    saved = dict(os.environ)
    os.environ.update(kconfig_env(arch, srctree.resolve()))
    try:
        return _Kconfig("Kconfig", warn=False)
    except kconfiglib.KconfigError as e:
        raise ConfigError(STAGE, f"kconfiglib cannot parse {srctree}/Kconfig: {e}") from e
    finally:
        os.environ.clear()
        os.environ.update(saved)


def fragments_for(arch: ArchConfig, kconf: Any,
                  extra: Sequence[Path] = ()) -> list[Path]:
    names = [*COMMON_FRAGMENTS, arch.fragment]
    names += [f for f, sym in CONDITIONAL_FRAGMENTS.items() if sym in kconf.syms]
    return _existing([FRAGMENT_DIR / n for n in names] + list(extra))


def candidate_fragments(arch: ArchConfig, extra: Sequence[Path] = ()) -> list[Path]:
    """Every fragment configure() may merge, known without parsing Kconfig.
    Which conditional ones it does merge depends only on the tree, and the
    tree's identity is part of the stamp too."""
    names = [*COMMON_FRAGMENTS, arch.fragment, *CONDITIONAL_FRAGMENTS]
    return _existing([FRAGMENT_DIR / n for n in names] + list(extra))


def _existing(paths: list[Path]) -> list[Path]:
    for p in paths:
        if not p.is_file():
            raise UserError(STAGE, f"config fragment {p} does not exist",
                            "check the file name (EXTRA_CONFIG=...)")
    return paths


def _symbol_value(kconf: Any, req: Request) -> str | None:
    sym = kconf.syms.get(req.name)
    if sym is None or not sym.nodes:
        return None
    value: str = sym.str_value
    return value


def _normalise(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def why_dropped(kconf: Any, req: Request) -> str:
    """A short reason for a mismatch, from the symbol's own dependencies."""
    sym = kconf.syms.get(req.name)
    if sym is None or not sym.nodes:
        return "no such symbol in this tree"
    dep = sym.direct_dep
    if kconfiglib.expr_value(dep) == 0:
        return f"depends on {kconfiglib.expr_str(dep)}, which is n"
    if sym.rev_dep is not kconf.n and kconfiglib.expr_value(sym.rev_dep):
        # Name only the selects that are active, not every possible one.
        active = [kconfiglib.expr_str(term)
                  for term in kconfiglib.split_expr(sym.rev_dep, kconfiglib.OR)
                  if kconfiglib.expr_value(term)]
        return f"selected by {' || '.join(active)}"
    if not sym.visibility and req.value != "n":
        return "has no prompt here: it cannot be set by a fragment"
    return "changed by olddefconfig"


def dropped(kconf: Any, requests: Sequence[Request]) -> list[str]:
    """Return one message per requested option the final .config lacks."""
    problems = []
    for req in requests:
        got = _symbol_value(kconf, req)
        want = _normalise(req.value)
        if got is None:
            problems.append(f"CONFIG_{req.name} ({req.origin}): no such symbol in this tree")
        elif got != want and not (want == "n" and got == ""):
            problems.append(f"CONFIG_{req.name}={req.value} ({req.origin}) "
                            f"is {got or 'unset'}: {why_dropped(kconf, req)}")
    return problems


def make_argv(arch: ArchConfig, srctree: Path, objdir: Path) -> list[str]:
    argv = ["make", "-C", str(srctree), f"O={objdir}", f"ARCH={arch.kernel_arch}"]
    if arch.cross_compile:
        argv.append(f"CROSS_COMPILE={arch.cross_compile}")
    return argv


def requests_of(frags: Sequence[Path]) -> list[Request]:
    """What the fragments ask for, in order. A later fragment overrides an
    earlier one (bench.config turns off the options of debug.config): the
    last request for an option wins, and only it is verified."""
    return list({r.name: r for f in frags for r in parse_fragment(f)}.values())


def configure(arch: ArchConfig, srctree: Path, objdir: Path, tree_id: str,
              extra: Sequence[Path] = (), missing_ok: bool = False) -> Path:
    """Produce objdir/.config; skipped when its inputs have not changed.

    missing_ok: options the tree does not define are not errors (a prefix
    of the series, before the patch that adds them: harness.series_check).
    """
    srctree, objdir = srctree.resolve(), objdir.resolve()
    objdir.mkdir(parents=True, exist_ok=True)
    stamp = objdir / STAMP
    # The stamp first: parsing the Kconfig tree takes about 2 s, and a
    # boot-test with nothing changed should not pay for it.
    want = files_digest(tree_id, candidate_fragments(arch, extra))
    config = objdir / ".config"
    recorded = stamp.read_text().split() if stamp.exists() else []
    if config.exists() and recorded[:1] == [want]:
        echo(f"config: {config} is up to date ({', '.join(recorded[1:])})")
        return config
    kconf = load_kconfig(arch, srctree)
    frags = fragments_for(arch, kconf, extra)
    echo(f"config: tinyconfig + {', '.join(f.name for f in frags)} -> {config}")
    requests = requests_of(frags)
    # .config is about to change: a failure below must not leave a stamp
    # that vouches for it.
    stamp.unlink(missing_ok=True)
    base = make_argv(arch, srctree, objdir)
    run([*base, "tinyconfig"], stage=STAGE, timeout=300)
    _merge(kconf, config, requests)
    run([*base, "olddefconfig"], stage=STAGE, timeout=300)
    if missing_ok:
        absent = [r for r in requests if _symbol_value(kconf, r) is None]
        if absent:
            echo("config: not in this tree yet, not checked: "
                 + ", ".join(f"CONFIG_{r.name}" for r in absent))
        requests = [r for r in requests if r not in absent]
    _verify(kconf, config, requests)
    stamp.write_text(" ".join([want, *(f.name for f in frags)]) + "\n")
    return config


def _merge(kconf: Any, config: Path, requests: Sequence[Request]) -> None:
    kconf.load_config(str(config), replace=True)
    for req in requests:
        sym = kconf.syms.get(req.name)
        if sym is not None and sym.nodes:
            sym.set_value(_normalise(req.value))
    kconf.write_config(str(config), header="")


def _verify(kconf: Any, config: Path, requests: Sequence[Request]) -> None:
    kconf.load_config(str(config), replace=True)
    problems = dropped(kconf, requests)
    if problems:
        raise ConfigError(
            STAGE,
            "Kconfig dropped requested options:\n    " + "\n    ".join(problems),
            "fix the fragment in kernel-config/ (add the missing dependency or "
            "remove the option)")
