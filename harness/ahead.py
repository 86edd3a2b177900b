"""Prepare the next architecture while this one's guest runs.

boot-test-all spends most of its time in TCG guests, which leave about a
third of a 2-core host idle (sampled from /proc/stat: 50-55% busy in the
pytest phase, 0-2% for the 43 s of single_step_test on ppc64le, about
70% for the DEBUG=1 guest), while a kernel build wants every core.  So
one thread of its own prepares each architecture (kernel, guest root,
selftests) in the order they boot, at the lowest CPU priority: the guest
running meanwhile keeps the cores it uses, the build gets what is left,
and the next guest starts as soon as its kernel is there.

Only one preparation runs at a time (they share the patched tree and
the machine's kernel-build lock), and each one's echo() lines are kept
and printed when boot-test-all reaches that architecture, so the log
reads in order.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from harness import run

K = TypeVar("K")
T = TypeVar("T")

# The builder's nice value: below every guest, so a guest runs as fast as
# it would alone.  A thread's nice value is its own on Linux, and the
# make and gcc it starts inherit it; run.background() also puts them in a
# demoted scheduler autogroup, without which nice would not reach across
# sessions.
NICE = 19


class Cancelled(Exception):
    """A preparation that never ran because the run was stopped."""


@dataclass
class Prepared(Generic[T]):
    """One preparation's outcome, and what it said."""

    value: T | None = None
    error: BaseException | None = None
    lines: list[str] = field(default_factory=list)
    waited_s: float = 0.0      # how long take() waited for it
    done: threading.Event = field(default_factory=threading.Event)

    def result(self) -> T:
        """The value, or the preparation's exception raised here."""
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


class Ahead(Generic[K, T]):
    """prepare(key) for every key, in order, in a background thread."""

    def __init__(self, keys: Sequence[K], prepare: Callable[[K], T], nice: int = NICE) -> None:
        self._keys = list(keys)
        self._prepare = prepare
        self._nice = nice
        self._slots = [Prepared[T]() for _ in self._keys]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="boot-test-all-prepare",
                                        daemon=True)

    def __enter__(self) -> Ahead[K, T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever has not started is not started: an interrupted or failed
        # run must not go on building in the background.  A build already
        # running is killed: its session of its own gets no Ctrl-C.
        self._stop.set()
        run.kill_background()

    def _work(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        except OSError:
            pass                     # a priority we may not set: the same work, slower
        for key, slot in zip(self._keys, self._slots, strict=True):
            if self._stop.is_set():
                slot.error = Cancelled(f"not prepared: the run stopped before {key}")
            else:
                with run.captured() as lines, run.background():
                    try:
                        slot.value = self._prepare(key)
                    except BaseException as e:    # handed to take()'s caller
                        slot.error = e
                slot.lines = lines
            slot.done.set()

    def ready(self, index: int) -> bool:
        return self._slots[index].done.is_set()

    def take(self, index: int) -> Prepared[T]:
        """The index-th preparation, once it is done (waiting if need be)."""
        slot = self._slots[index]
        start = time.monotonic()
        # In slices, so that Ctrl-C reaches the main thread while it waits.
        while not slot.done.wait(1.0):
            pass
        slot.waited_s = time.monotonic() - start
        return slot
