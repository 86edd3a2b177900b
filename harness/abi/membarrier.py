"""membarrier(2): the query and the commands the tests use (uapi values)."""

from __future__ import annotations

from harness.abi.libc import syscall

CMD_QUERY = 0
CMD_GLOBAL = 1 << 0
CMD_GLOBAL_EXPEDITED = 1 << 1
CMD_REGISTER_GLOBAL_EXPEDITED = 1 << 2
CMD_PRIVATE_EXPEDITED = 1 << 3
CMD_REGISTER_PRIVATE_EXPEDITED = 1 << 4
CMD_PRIVATE_EXPEDITED_RSEQ = 1 << 7
CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ = 1 << 8


def membarrier(cmd: int, flags: int = 0, cpu_id: int = 0) -> int:
    return syscall("membarrier", cmd, flags, cpu_id)


def supported() -> int:
    """Bit mask of the commands this kernel supports."""
    return membarrier(CMD_QUERY)
