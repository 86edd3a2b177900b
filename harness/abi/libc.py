"""libc loaded once with errno capture, and a raw syscall() wrapper.

Raw syscalls rather than glibc wrappers: glibc 2.36 has no rseq() or
cpu_opv() wrapper, and its sched_getcpu() reads glibc's own rseq area, which
is one of the things under test.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import cache

from harness.abi import syscalls


def errno_name(err: int) -> str:
    """'EINVAL' for 22; 'errno 999' for numbers Python does not know."""
    return errno.errorcode.get(err, f"errno {err}")


class SyscallError(OSError):
    """A syscall returned -1; str() names the call, the errno and its name.

    .errno and .strerror are OSError's own (22, "Invalid argument"), so
    code that formats them itself does not print the call twice.
    """

    def __init__(self, err: int, call: str) -> None:
        super().__init__(err, os.strerror(err))
        self.call = call

    def __str__(self) -> str:
        return f"{self.call}: {self.name} ({self.strerror})"

    @property
    def name(self) -> str:
        return errno_name(self.errno or 0)


@cache
def libc() -> ctypes.CDLL:
    path = ctypes.util.find_library("c") or "libc.so.6"
    return ctypes.CDLL(path, use_errno=True)


Arg = int | ctypes.c_void_p | None


def _as_long(a: Arg) -> ctypes.c_long:
    # syscall(2) is variadic: every argument must be passed at the full
    # register width, or a negative int / a pointer arrives truncated.
    if a is None:
        return ctypes.c_long(0)
    if isinstance(a, ctypes.c_void_p):
        return ctypes.c_long(a.value or 0)
    return ctypes.c_long(a)


def raw_syscall(number: int, *args: Arg) -> tuple[int, int]:
    """Issue syscall `number`; return (return value, errno) without raising."""
    fn = libc().syscall
    fn.restype = ctypes.c_long
    ctypes.set_errno(0)
    ret = int(fn(ctypes.c_long(number), *(_as_long(a) for a in args)))
    return ret, (ctypes.get_errno() if ret == -1 else 0)


def syscall(name: str, *args: Arg, error: type[SyscallError] = SyscallError) -> int:
    """Call syscall `name` of this machine's table; raise `error` on -1."""
    ret, err = raw_syscall(syscalls.nr(name), *args)
    if ret == -1:
        raise error(err, name)
    return ret
