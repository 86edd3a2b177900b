"""`scripts/checkpatch.pl --strict` on every patch of the series, one line each.

Each patch file is checked on its own, as a file: checkpatch is never pointed
at a commit of the tree (`-g` on the vanilla import commit reads the whole
kernel and takes ~10 GB of RAM), so a series of ten patches takes seconds.

The verdict, per patch:

* every ERROR, WARNING and CHECK (reported under --strict) fails, unless
  the patch explains it on a line of its own in the commit message (or in
  the notes below `---`), before the diff:

      checkpatch: <reason>
          waives every CHECK of the patch (not its warnings or errors);
      checkpatch: TYPE[,TYPE...]: <reason>
          waives the findings of those types, as --show-types names them
          (e.g. `checkpatch: MACRO_ARG_REUSE: only constants`).  Errors
          too, by type only: checkpatch has false positives at that level,
          e.g. COMPLEX_MACRO on an asm operand list (rseq's param_test.c).

  The reason must not be empty: an exception nobody explained is a failure.
  Waived findings are still printed, marked as waived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InfraError
from harness.run import run

STAGE = "checkpatch"
TIMEOUT_S = 300
_FINDING = re.compile(r"^(ERROR|WARNING|CHECK):([A-Z0-9_]+): (.*)$")
_TOTAL = re.compile(r"^total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?"
                    r"\d+ lines checked$")
_WAIVER = re.compile(r"^checkpatch:[ \t]*(\S.*?)[ \t]*$", re.M)
_TYPES = re.compile(r"^([A-Z0-9_]+(?:\s*,\s*[A-Z0-9_]+)*)\s*:\s*(\S.*)$")


@dataclass(frozen=True)
class Finding:
    level: str       # ERROR, WARNING or CHECK
    type: str        # checkpatch's --show-types name
    message: str
    where: str       # "FILE: kernel/foo.c:12:" or the patch line, may be ""


@dataclass(frozen=True)
class Waiver:
    types: frozenset[str]   # empty: every CHECK of the patch
    reason: str

    def covers(self, f: Finding) -> bool:
        if not self.types:
            return f.level == "CHECK"
        return f.type in self.types


@dataclass
class PatchResult:
    name: str
    findings: list[Finding]
    waivers: list[Waiver] = field(default_factory=list)

    def waived(self, f: Finding) -> bool:
        return any(w.covers(f) for w in self.waivers)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not self.waived(f)]

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def count(self, level: str) -> int:
        return sum(f.level == level for f in self.findings)

    def line(self) -> str:
        if not self.findings:
            return f"{self.name}: ok"
        counts = (f"{self.count('ERROR')} errors, {self.count('WARNING')} warnings, "
                  f"{self.count('CHECK')} checks")
        waived = len(self.findings) - len(self.failures)
        verdict = "FAILED" if self.failed else "ok"
        note = f" ({waived} waived)" if waived else ""
        return f"{self.name}: {verdict}: {counts}{note}"


def is_cover_letter(patch: Path) -> bool:
    return patch.name.startswith("0000-")


def waivers(patch_text: str) -> list[Waiver]:
    """The `checkpatch:` lines of the commit message and notes (not the diff)."""
    header = patch_text.split("\ndiff --git ", 1)[0]
    found = []
    for m in _WAIVER.finditer(header):
        text = m[1]
        typed = _TYPES.match(text)
        if typed:
            types = frozenset(t.strip() for t in typed[1].split(","))
            found.append(Waiver(types, typed[2]))
        else:
            found.append(Waiver(frozenset(), text))
    return found


def parse(output: str, name: str) -> list[Finding]:
    """checkpatch's findings; its summary line must agree with them."""
    lines = output.splitlines()
    findings = []
    for i, line in enumerate(lines):
        m = _FINDING.match(line)
        if m:
            where = lines[i + 1].strip() if i + 1 < len(lines) else ""
            findings.append(Finding(m[1], m[2], m[3],
                                    where if where.startswith("#") else ""))
    totals = [_TOTAL.match(line) for line in lines]
    total = next((t for t in totals if t), None)
    if total is None:
        raise InfraError(STAGE, f"checkpatch printed no summary for {name}:\n    "
                         + "\n    ".join(lines[-10:]),
                         "run scripts/checkpatch.pl by hand on the patch to see why")
    want = (int(total[1]), int(total[2]), int(total[3] or 0))
    got = tuple(sum(f.level == lv for f in findings) for lv in ("ERROR", "WARNING", "CHECK"))
    if got != want:
        raise InfraError(STAGE, f"checkpatch's summary for {name} says {want} "
                         f"(errors, warnings, checks) but {got} were parsed",
                         "the output format changed: update harness/checkpatch.py")
    return findings


def check_patch(tree: Path, patch: Path) -> PatchResult:
    """Run checkpatch from `tree` (a kernel top directory) on one patch file."""
    proc = run(["perl", "scripts/checkpatch.pl", "--strict", "--show-types",
                "--color=never", str(patch.resolve())],
               stage=STAGE, timeout=TIMEOUT_S, cwd=tree, check=False)
    # Exit 1 just means "style problems"; anything else is checkpatch itself.
    if proc.returncode not in (0, 1):
        raise InfraError(STAGE, f"checkpatch exited {proc.returncode} on {patch.name}:\n"
                         f"    {proc.stderr.strip()[-500:]}")
    text = patch.read_text(errors="replace")
    return PatchResult(patch.name, parse(proc.stdout, patch.name), waivers(text))


def check_series(tree: Path, patches: list[Path]) -> list[PatchResult]:
    if not (tree / "scripts" / "checkpatch.pl").is_file():
        raise InfraError(STAGE, f"{tree} has no scripts/checkpatch.pl",
                         "run `make fetch` (or point KERNEL_SRC at a kernel tree)")
    return [check_patch(tree, p) for p in patches if not is_cover_letter(p)]


def format_results(results: list[PatchResult]) -> str:
    """One line per patch, then the findings of each patch that has any."""
    out = [r.line() for r in results]
    for r in results:
        for f in r.findings:
            mark = "waived " if r.waived(f) else ""
            out.append(f"  {r.name}: {mark}{f.level}:{f.type}: {f.message}"
                       + (f" [{f.where}]" if f.where else ""))
    return "\n".join(out)
