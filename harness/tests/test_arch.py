"""The per-architecture data (vm/arch/<name>.toml): complete, and the only source.

Adding an architecture adds a data file and a Kconfig fragment; these tests
fail when either is missing, when an architecture that the README or the
CI workflow names has no data file, or when a data file is malformed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import REPO, boot, qemu
from harness import arch as arches
from harness.errors import UserError

# The README's ARCH row and the CI example's matrix list the architectures
# a user can pick; each must have its data.
README = REPO / "README.md"
WORKFLOW = REPO / ".github" / "workflows" / "boot-test.yml"


def test_every_arch_has_data_and_fragment() -> None:
    names = arches.names()
    assert names, "no vm/arch/*.toml"
    for name in names:
        a = arches.get(name)
        assert a.name == name
        assert a.fragment_path.is_file(), f"{name}: no kernel-config/{a.fragment}"
        assert a.abis, f"{name}: no [[abi]] for the layout test"
        assert a.host_packages, f"{name}: no host_packages"


def _readme_arches() -> set[str]:
    row = next(line for line in README.read_text().splitlines()
               if line.startswith("| `ARCH` |"))
    return set(re.findall(r"`([a-z0-9_]+)`", row.split("|")[3]))


def test_readme_arches_have_data() -> None:
    assert _readme_arches() == set(arches.names())


def test_ci_matrix_arches_have_data() -> None:
    m = re.search(r"arch:\s*\[([^\]]*)\]", WORKFLOW.read_text())
    assert m, f"no `arch: [...]` matrix in {WORKFLOW}"
    assert {a.strip() for a in m[1].split(",")} == set(arches.names())


def test_unknown_arch_names_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"(?s)unknown ARCH='sparc'.*x86_64"):
        arches.get("sparc")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "toy.toml"
    p.write_text(text)
    return p


TOY = """
name = "toy"
kernel_arch = "toy"
cross_compile = "toy-linux-gnu-"
machine = "toy"
image = "arch/toy/boot/Image"
make_target = "Image"
fragment = "toy.config"
debian_arch = "toy"
host_packages = ["qemu-system-toy"]
selftest_cflags = ""
[boot]
launcher = "qemu"
vng_arch = "toy"
qemu = "qemu-system-toy"
machine = ["-M", "virt"]
console = "ttyTOY0"
kvm_args = ["-accel", "kvm"]
[[abi]]
name = "toy"
cflags = []
u64_align = 8
"""


def test_load_a_complete_file(tmp_path: Path) -> None:
    a = arches.load(_write(tmp_path, TOY))
    assert (a.qemu_machine, a.virtio, a.abis[0].u64_align) == (("-M", "virt"), "device", 8)
    assert not a.native
    assert a.cross_compile == "toy-linux-gnu-"


@pytest.mark.parametrize("drop, message", [
    ('console = "ttyTOY0"\n', "console must be a string"),
    ('machine = ["-M", "virt"]\n', "launcher qemu needs boot.machine"),
    ('name = "toy"\n', "name must be a string"),
])
def test_a_missing_key_is_named(tmp_path: Path, drop: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        arches.load(_write(tmp_path, TOY.replace(drop, "", 1)))


def test_a_misnamed_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="expected 'toy'"):
        arches.load(_write(tmp_path, TOY.replace('name = "toy"', 'name = "other"')))


def test_qemu_command_comes_from_the_data(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.qemu.shutil.which", lambda name: f"/usr/bin/{name}")
    a = arches.get("powerpc")
    argv = qemu.command(a, tmp_path / "vmlinux", tmp_path / "root", tmp_path / "repo",
                        cpus=4, memory="2G", kvm=False, guest_argv=["/x/run", "a", "b"],
                        append=("isolcpus=3",))
    assert argv[0] == "/usr/bin/qemu-system-ppc64"
    assert argv[1:7] == ["-accel", "tcg", "-M", "pseries,x-vof=on", "-cpu", "power9"]
    assert "virtio-9p-pci,fsdev=cpu_opv_root,mount_tag=cpu_opv_root" in argv
    append = argv[argv.index("-append") + 1]
    assert append.startswith("console=hvc0 ")
    assert f"cpu_opv_repo={tmp_path / 'repo'}" in append
    # BOOT_APPEND's words are the kernel's: before the `--` that ends them.
    assert append.endswith("isolcpus=3 -- /x/run a b")


def test_vng_refuses_a_foreign_arch(tmp_path: Path) -> None:
    a = arches.get("x86_64")
    foreign = arches.ArchConfig(**{**a.__dict__, "machine": "not-this-host"})
    req = boot.BootRequest(foreign, tmp_path / "bzImage", tmp_path / "c.log", tmp_path)
    with pytest.raises(UserError, match="needs a not-this-host host"):
        boot.command(req, ["true"])
