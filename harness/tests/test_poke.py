"""Host tests of harness.poke: parser, messages, exit codes; no syscall 463.

Where main() gets past parsing, cpu_opv.probe and cpu_opv.call are replaced
by fakes, so these tests run on any kernel (463 is setxattrat on the host).
"""

from __future__ import annotations

import sys

import pytest

from harness import poke
from harness.abi import cpu_opv as co


@pytest.mark.parametrize(("text", "want"), [
    ("add u64 @a 5", poke.OpSpec("add", 8, (poke.Operand("a", 0),), 5)),
    ("add u8 @a -1", poke.OpSpec("add", 1, (poke.Operand("a", 0),), -1)),
    ("xor 4 @buf+0x10 0xff", poke.OpSpec("xor", 4, (poke.Operand("buf", 16),), 255)),
    ("lshift u16 @a 15", poke.OpSpec("lshift", 2, (poke.Operand("a", 0),), 15)),
    ("cmpeq u64 @a @b", poke.OpSpec("cmpeq", 8, (poke.Operand("a", 0), poke.Operand("b", 0)),
                                    None)),
    ("memcpy 4096 @d @s+100", poke.OpSpec("memcpy", 4096,
                                          (poke.Operand("d", 0), poke.Operand("s", 100)), None)),
    ("mb", poke.OpSpec("mb", 0, (), None)),
])
def test_parse_op(text: str, want: poke.OpSpec) -> None:
    assert poke.parse_op(text) == want


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty op"),
    ("frob u64 @a 1", "unknown op 'frob'"),
    ("add u3 @a 1", "impossible length 'u3'"),
    ("add 3 @a 1", "impossible length '3'"),
    ("or 16 @a 1", "impossible length '16'"),
    ("cmpeq 0 @a @b", "impossible length '0'"),
    ("memcpy 4097 @a @b", "impossible length '4097'"),
    ("add u64 a 1", "'a' is not a buffer"),
    ("add u64 @1a 1", "'@1a' is not a buffer"),
    ("add u64 @a 0xZZ", "bad number '0xZZ'"),
    ("add u64 @a+zz 1", "bad number 'zz'"),
    ("add u64 @a+9000 1", "outside its"),
    ("lshift u8 @a 8", "shift by 8 impossible"),
    ("rshift u64 @a -1", "shift by -1 impossible"),
    ("add u64 @a", "expected 'add TYPE @p N'"),
    ("cmpeq u64 @a", "expected 'cmpeq LEN @x @y'"),
    ("mb 1", "mb takes no arguments"),
])
def test_parse_op_errors(text: str, message: str) -> None:
    with pytest.raises(poke.PokeError, match=message):
        poke.parse_op(text)


@pytest.mark.parametrize(("text", "want"), [
    ("a=5", ("a", (5).to_bytes(8, sys.byteorder))),
    ("@b=-1", ("b", b"\xff" * 8)),
    ("c=hex:deadbeef", ("c", bytes.fromhex("deadbeef"))),
])
def test_parse_init(text: str, want: tuple[str, bytes]) -> None:
    assert poke.parse_init(text) == want


@pytest.mark.parametrize(("text", "message"), [
    ("a", "expected NAME=INT"), ("1a=3", "expected NAME=INT"),
    ("a=zz", "bad number"), ("a=hex:xyz", "bad hex"), ("a=0x1ffffffffffffffff", "64 bits"),
])
def test_parse_init_errors(text: str, message: str) -> None:
    with pytest.raises(poke.PokeError, match=message):
        poke.parse_init(text)


def _no_syscall(*_: object) -> int:
    raise AssertionError("a syscall was attempted on bad input")


@pytest.mark.parametrize(("argv", "message"), [
    (["frob u64 @a 1"], "poke: unknown op 'frob'"),
    (["add u7 @a 1"], "impossible length"),
    (["--init", "z=1", "add u64 @a 1"], "unknown buffer @z"),
    (["--init", "a=bad", "add u64 @a 1"], "bad number"),
    (["--cpu", "-1", "add u64 @a 1"], "negative"),
    ([], "no ops given"),
    (["mb"] * 17, "17 ops, at most 16"),
])
def test_main_bad_input_exits_2_before_any_syscall(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], message: str) -> None:
    monkeypatch.setattr(co, "probe", _no_syscall)
    monkeypatch.setattr(co, "call", _no_syscall)
    assert poke.main(argv) == poke.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_main_not_cpu_opv_kernel(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def probe() -> int:
        raise co.NotCpuOpvKernel("not a cpu_opv kernel: test")
    monkeypatch.setattr(co, "probe", probe)
    monkeypatch.setattr(co, "call", _no_syscall)
    assert poke.main(["add u64 @a 1"]) == poke.EXIT_USAGE
    assert "not a cpu_opv kernel" in capsys.readouterr().err


def test_main_real_host_probe_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    # On this host 463 is not cpu_opv: the real probe must stop poke.
    try:
        co.probe()
    except co.ProbeError:
        assert poke.main(["--cpu", "0", "add u64 @a 1"]) == poke.EXIT_USAGE
        assert "cpu_opv" in capsys.readouterr().err
    else:
        pytest.skip("running on a cpu_opv kernel")


@pytest.mark.parametrize(("ret", "code", "line"), [
    (0, poke.EXIT_OK, "result: 0 (all ops ran)"),
    (2, poke.EXIT_FAILED, "result: compare #2 failed (op index 1: compare_eq(len=8"),
])
def test_main_prints_before_after_and_result(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        ret: int, code: int, line: str) -> None:
    monkeypatch.setattr(co, "probe", lambda: co.NR_CPU_OPS)
    monkeypatch.setattr(co, "call", lambda *_: ret)
    monkeypatch.setattr(co, "validate_cpu", lambda _: None)
    argv = ["--cpu", "0", "--init", "a=0x11", "add u64 @a 5", "cmpeq u64 @a @b"]
    assert poke.main(argv) == code
    out = capsys.readouterr().out
    assert "before:" in out and "after:" in out
    assert "@a: 11 00 00 00 00 00 00 00 = 0x11" in out
    assert "@b: 00" in out
    assert line in out


def test_main_errno_result(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    def call(*_: object) -> int:
        raise co.CpuOpvError(22, "cpu_opv")
    monkeypatch.setattr(co, "probe", lambda: co.NR_CPU_OPS)
    monkeypatch.setattr(co, "call", call)
    monkeypatch.setattr(co, "validate_cpu", lambda _: None)
    assert poke.main(["--cpu", "0", "add u64 @a 5"]) == poke.EXIT_FAILED
    assert "result: -1 EINVAL (Invalid argument)\n" in capsys.readouterr().out


def test_syscall_error_says_each_thing_once() -> None:
    e = co.CpuOpvError(22, "cpu_opv")
    assert (e.errno, e.name, e.strerror) == (22, "EINVAL", "Invalid argument")
    assert str(e) == "cpu_opv: EINVAL (Invalid argument)"
