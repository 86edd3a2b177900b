"""The thread-pointer readers of harness/abi/tp.py are the instructions
their comments name: disassembled with each architecture's cross binutils
(installed by `make setup` from the data files).  The guest suites check
that what they read is right (test_rseq.py's glibc-area cases)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness import arch as arches
from harness.abi import tp

# objdump's -m and endianness for raw code of each architecture.
OBJDUMP_MACHINE = {"arm64": ["-m", "aarch64"], "arm": ["-m", "arm"],
                   "powerpc": ["-m", "powerpc:common64", "-EL"]}
EXPECTED = {
    "arm64": ["mrs\tx0, tpidr_el0", "ret"],
    "arm": ["mrc\t15, 0, r0, cr13, cr0, {3}", "bx\tlr"],
    "powerpc": ["mr      r3,r13", "blr"],
}


def test_every_foreign_arch_has_a_reader() -> None:
    foreign = {n for n in arches.names() if n != "x86_64"}
    assert foreign <= set(tp._READ_TP), f"no thread-pointer reader: {foreign - set(tp._READ_TP)}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reader_disassembles_to_what_it_says(name: str, tmp_path: Path) -> None:
    objdump = arches.get(name).cross_compile + "objdump"
    if shutil.which(objdump) is None:
        pytest.skip(f"{objdump} is not installed (make setup installs it)")
    words = tp._READ_TP[name]
    raw = tmp_path / "code.bin"
    raw.write_bytes(struct.pack("<" + "I" * len(words), *words))
    out = subprocess.run([objdump, "-D", "-b", "binary", *OBJDUMP_MACHINE[name], str(raw)],
                         capture_output=True, text=True, check=True).stdout
    insns = [line.split("\t", 2)[-1].strip() for line in out.splitlines()
             if line.startswith("   ") and ":\t" in line]
    assert insns == EXPECTED[name], out
