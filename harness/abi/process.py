"""Run a function in a fork()ed child and get its bytes back through a pipe.

Used to check that a child's writes (through cpu_opv) stay in the child's
copy-on-write pages.  The child never returns into pytest: it always _exit()s.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable


class ChildFailed(RuntimeError):
    pass


def in_child(fn: Callable[[], bytes]) -> bytes:
    """Run fn() in a forked child; return its bytes or raise ChildFailed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        status = 0
        try:
            out = b"ok:" + fn()
        except BaseException:
            out = b"err:" + traceback.format_exc().encode()
            status = 1
        try:
            os.write(w, out)
        finally:
            os._exit(status)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as f:
        while chunk := f.read():
            chunks.append(chunk)
    _, st = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if not data.startswith(b"ok:") or os.waitstatus_to_exitcode(st) != 0:
        raise ChildFailed(f"child exit {os.waitstatus_to_exitcode(st)}: "
                          + data.decode(errors="replace"))
    return data[3:]
