"""Worker processes, the machine set-up they need, and CPU hotplug.

Each worker is a fork()ed process with a stream seed of its own: worker
0 has the run's seed, worker w a seed derived from it, so every worker
replays alone with `make fuzz SEED=<its seed> WORKERS=1`.  A worker's
affinity mask leaves out one CPU (chosen by its seed, never CPU 0): the
calls aimed there must fail with EINVAL.  A hotplug process takes CPUs
offline and back while the workers run; the ABI gives a call the same
result on an online and an offline CPU, so the model needs to know
nothing of it, and replays stay exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import select
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.abi import hotplug, sched
from harness.fuzz import layout as lay
from harness.fuzz.churn import CowChild, Splitter
from harness.fuzz.gen import Generator
from harness.fuzz.model import Cpus, Shadow
from harness.fuzz.run import Fuzzer, Guest, Mismatch

HUGE_PAGES_PER_WORKER = 2
COW_EVERY = 2000       # calls between two copy-on-write children
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"


def stream_seeds(seed: int, workers: int) -> list[int]:
    """Worker 0 runs `seed` itself; the others derived, 48-bit seeds."""
    def derive(w: int) -> int:
        return int.from_bytes(hashlib.sha256(f"{seed}/{w}".encode()).digest()[:6], "big")
    return [seed] + [derive(w) for w in range(1, workers)]


def split(calls: int, workers: int) -> list[int]:
    return [calls // workers + (1 if w < calls % workers else 0) for w in range(workers)]


def cpus_for(seed: int, possible: list[int]) -> Cpus:
    """The worker's affinity: every possible CPU but one picked by the seed."""
    cpus = sorted(possible)
    allowed = set(cpus)
    if len(cpus) >= 3:
        allowed.discard(cpus[1 + seed % (len(cpus) - 1)])
    return Cpus(frozenset(cpus), frozenset(allowed))


class Forks:
    """Every COW_EVERY calls: check the copy-on-write child forked last
    time, and fork a new one (by call count, so a replay forks at the same
    calls)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.child: CowChild | None = None
        self.checked = 0

    def __call__(self, fz: Fuzzer) -> Mismatch | None:
        if self.child is not None and fz.index - self.child.since < self.every:
            return None
        bad = self.finish(fz)
        self.child = CowChild(fz.shadow.layout, fz.shadow, fz.index)
        return bad

    def finish(self, fz: Fuzzer) -> Mismatch | None:
        if self.child is None:
            return None
        child, self.child = self.child, None
        diffs = child.check()
        self.checked += 1
        if not diffs:
            return None
        return Mismatch(fz.seed, fz.index - 1, None, "a fork()ed child's private memory as "
                        "it was at the fork", "changed: " + "; ".join(diffs[:4]), [],
                        f"a cpu_opv write of calls {child.since}..{fz.index - 1} reached "
                        "memory shared copy-on-write with a child")


def worker(seed: int, calls: int, deadline: float | None, ramfs: str | None,
           batch: int) -> dict[str, Any]:
    """Fuzz one stream in this process; return what happened, as JSON data."""
    cpus = cpus_for(seed, sched.possible_cpus())
    os.sched_setaffinity(0, cpus.allowed)
    built = lay.build(random.Random(f"cpu_opv-fuzz-fill:{seed}"), ramfs, str(os.getpid()))
    splitter = Splitter(built.layout, built.mapper)
    forks = Forks(COW_EVERY)
    try:
        shadow = Shadow(built.layout, built.contents)
        guest = Guest(built)
        fz = Fuzzer(seed, Generator(seed, built.layout, cpus), shadow, cpus, guest,
                    batch=batch, progress=60.0, between=forks)
        splitter.start()
        bad = fz.run(calls, deadline)
        bad = forks.finish(fz) or bad      # always: the child must not outlive us
        splitter.stop.set()
        splitter.join()
        if bad is None:
            hidden = guest.hidden(shadow)
            if hidden:
                bad = Mismatch(seed, fz.index - 1, None, "PROT_NONE pages unchanged",
                               "changed", hidden, "a PROT_NONE page changed during the run "
                               "(the call shown is not the culprit: replay the seed)")
        st = fz.stats
        return {"seed": seed, "calls": st.calls, "seconds": st.seconds,
                "layout": built.layout.describe(), "summary": st.summary(),
                "forbidden": sorted(cpus.possible - cpus.allowed),
                "churn": f"{splitter.splits} THP splits, {splitter.collapses} collapses, "
                         f"{forks.checked} copy-on-write children checked",
                "intents": dict(st.intents), "outcomes": dict(st.outcomes),
                "mismatch": None if bad is None else bad.lines()}
    finally:
        splitter.stop.set()
        built.mapper.close()


def fork(fn: Callable[[], dict[str, Any]]) -> tuple[int, int]:
    """Run fn() in a child; return (pid, fd to read its JSON answer from)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException:
            out = {"error": traceback.format_exc()}
        with contextlib.suppress(BaseException):
            os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    return pid, r


def collect(pid: int, fd: int) -> dict[str, Any]:
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    try:
        out: dict[str, Any] = json.loads(data)
    except ValueError:
        out = {"error": f"worker died (exit status {status:#x}) without an answer"}
    return out


# ---- CPU hotplug ----------------------------------------------------------------

def hotplug_loop(stop_fd: int, seed: int) -> dict[str, Any]:
    """Offline and online CPUs at random until stop_fd becomes readable;
    at least two CPUs stay online.  Every CPU is online again at the end.
    Says how many cycles ran and for how much of the time each CPU was
    offline (the calls aimed at it then ran on their caller's CPU)."""
    rng = random.Random(f"cpu_opv-fuzz-hotplug:{seed}")
    cpus = [c for c in sched.possible_cpus() if hotplug.can_offline(c)]
    cycles = failures = 0
    offline_s = dict.fromkeys(cpus, 0.0)
    since: dict[int, float] = {}
    start = time.monotonic()

    def toggle(cpu: int, online: bool) -> None:
        hotplug.set_online(cpu, online)
        if online:
            offline_s[cpu] += time.monotonic() - since.pop(cpu, time.monotonic())
        else:
            since[cpu] = time.monotonic()

    try:
        while not select.select([stop_fd], [], [], rng.uniform(0.05, 0.4))[0]:
            cpu = rng.choice(cpus)
            try:
                if hotplug.is_online(cpu):
                    if len(sched.online_cpus()) > 2:
                        toggle(cpu, False)
                else:
                    toggle(cpu, True)
                    cycles += 1
            except OSError:
                failures += 1
    finally:
        for cpu in cpus:
            with contextlib.suppress(OSError):
                if not hotplug.is_online(cpu):
                    toggle(cpu, True)
                    cycles += 1
    total = max(time.monotonic() - start, 1e-9)
    return {"cycles": cycles, "failures": failures, "cpus": cpus,
            "offline": {str(c): round(100 * t / total) for c, t in offline_s.items()}}


def can_hotplug() -> bool:
    return any(hotplug.can_offline(c) for c in sched.possible_cpus())


# ---- the machine ---------------------------------------------------------------------

@dataclass
class Setup:
    ramfs: str | None
    notes: list[str]


def _swap(path: str, value: Callable[[str], str]) -> Callable[[], None]:
    """Write value(old) to a sysfs/procfs file; return what puts it back."""
    with open(path) as f:
        old = f.read().strip()
    with open(path, "w") as f:
        f.write(value(old))

    def undo() -> None:
        with contextlib.suppress(OSError), open(path, "w") as f:
            f.write(old if "[" not in old else old.split("[")[1].split("]")[0])
    return undo


def _umount(path: str) -> None:
    subprocess.run(["umount", path], check=False)


@contextlib.contextmanager
def machine(workers: int) -> Iterator[Setup]:
    """Huge pages reserved, THP allowed on madvise, a ramfs mounted, for
    the while; what cannot be had is noted and its windows left out."""
    setup = Setup(None, [])
    undo: list[Callable[[], None]] = []
    try:
        try:
            undo.append(_swap(NR_HUGEPAGES, lambda old: str(
                int(old) + HUGE_PAGES_PER_WORKER * workers)))
        except (OSError, ValueError) as e:
            setup.notes.append(f"hugetlb pool: {e}")
        try:
            with open(THP_ENABLED) as f:
                if "[never]" in f.read():
                    undo.append(_swap(THP_ENABLED, lambda old: "madvise"))
        except OSError as e:
            setup.notes.append(f"THP: {e}")
        d = tempfile.mkdtemp(prefix="cpu_opv-fuzz-")
        undo.append(lambda: os.rmdir(d))
        mounted = subprocess.run(["mount", "-t", "ramfs", "none", d], capture_output=True,
                                 text=True, check=False)
        if mounted.returncode == 0:
            setup.ramfs = d
            undo.append(lambda: _umount(d))
        else:
            setup.notes.append(f"ramfs: {mounted.stderr.strip() or 'mount failed'}")
        yield setup
    finally:
        for fn in reversed(undo):
            with contextlib.suppress(OSError):
                fn()

