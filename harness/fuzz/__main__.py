"""python -m harness.fuzz: fuzz cpu_opv in this (guest) kernel, write TAP.

    python -m harness.fuzz --seed 1 --calls 100000 --workers 3 --tap results/fuzz/fuzz.tap

Exit status 0 when every call did what the ABI allows, 1 on a mismatch
(each one printed with the command that replays it), 2 when the kernel
has no cpu_opv and CPU_OPV_REQUIRED=1 says it must.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.abi import cpu_opv as co
from harness.abi import sched
from harness.fuzz import workers as wk
from harness.fuzz.run import BATCH

PREFIX = "cpu-opv-fuzz:"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=None, help="default: the time")
    p.add_argument("--calls", type=int, default=10_000, help="in all, over the workers")
    p.add_argument("--workers", type=int, default=0,
                   help="processes, each with a seed of its own (default: online CPUs - 1)")
    p.add_argument("--time", type=float, default=None,
                   help="stop after this many seconds even if fewer calls ran")
    p.add_argument("--batch", type=int, default=BATCH,
                   help="calls between two memory comparisons")
    p.add_argument("--tap", default=None, help="write TAP here")
    p.add_argument("--no-hotplug", action="store_true", help="leave the CPUs online")
    return p.parse_args(argv)


def _worker_tap(n: int, r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return [f"not ok {n} - worker failed"] + [f"# {x}" for x in r["error"].splitlines()]
    head = f"seed {r['seed']}: {r['calls']} calls"
    diag = [f"# {r['summary']}", f"# layout: {r['layout']}",
            f"# affinity leaves out CPU {r['forbidden']}; {r['churn']}",
            "# intents: " + ", ".join(f"{k} {v}" for k, v in sorted(r["intents"].items()))]
    if r["mismatch"]:
        return [f"not ok {n} - {head}: MISMATCH", *diag, *(f"# {x}" for x in r["mismatch"])]
    return [f"ok {n} - {head}, no mismatch", *diag]


def _hotplug_tap(n: int, r: dict[str, Any] | None, why: str) -> list[str]:
    if r is None:
        return [f"ok {n} - CPU hotplug during the run # SKIP {why}"]
    if "error" in r:
        return [f"not ok {n} - CPU hotplug failed"] + [f"# {x}" for x in r["error"].splitlines()]
    offline = ", ".join(f"CPU {c} {p}%" for c, p in r["offline"].items())
    return [f"ok {n} - CPU hotplug during the run: {r['cycles']} offline/online cycles of "
            f"CPUs {r['cpus']}, {r['failures']} refused; offline for {offline} of the time"]


def tap(results: list[dict[str, Any]], hp: dict[str, Any] | None, why: str) -> list[str]:
    lines = ["TAP version 13", f"1..{len(results) + 1}"]
    for n, r in enumerate(results, 1):
        lines += _worker_tap(n, r)
    lines += _hotplug_tap(len(results) + 1, hp, why)
    return lines


def _write(path: str | None, lines: list[str]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("\n".join(lines) + "\n")


def _run(args: argparse.Namespace, seed: int) -> tuple[list[dict[str, Any]],
                                                     dict[str, Any] | None, str]:
    workers = args.workers or max(1, len(sched.online_cpus()) - 1)
    seeds, counts = wk.stream_seeds(seed, workers), wk.split(args.calls, workers)
    deadline = time.monotonic() + args.time if args.time else None
    print(f"{PREFIX} seed {seed}, {args.calls} calls, {workers} workers (seeds "
          f"{', '.join(map(str, seeds))})"
          + (f", {args.time:.0f}s at most" if args.time else ""), flush=True)
    hp: dict[str, Any] | None = None
    why = "--no-hotplug" if args.no_hotplug else "no CPU can be taken offline here"
    with wk.machine(workers) as setup:
        for note in setup.notes:
            print(f"{PREFIX} {note}", flush=True)
        procs = [wk.fork(functools.partial(wk.worker, s, n, deadline, setup.ramfs,
                                           args.batch))
                 for s, n in zip(seeds, counts, strict=True)]
        stopper = None
        if not args.no_hotplug and wk.can_hotplug():
            r, w = os.pipe()

            def loop() -> dict[str, Any]:
                os.close(w)
                return wk.hotplug_loop(r, seed)
            stopper = (wk.fork(loop), w)
            os.close(r)
        results = [wk.collect(pid, fd) for pid, fd in procs]
        if stopper is not None:
            (pid, fd), w = stopper
            os.close(w)
            hp = wk.collect(pid, fd)
    return results, hp, why


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    seed = args.seed if args.seed is not None else int(time.time())
    try:
        co.probe()
    except co.ProbeError as e:
        required = os.environ.get("CPU_OPV_REQUIRED") == "1"
        print(f"{PREFIX} {e}", flush=True)
        _write(args.tap, ["TAP version 13", "1..1", f"not ok 1 - cpu_opv probe: {e}"]
               if required else ["TAP version 13", f"1..0 # SKIP {e}"])
        return 2 if required else 0
    results, hp, why = _run(args, seed)
    lines = tap(results, hp, why)
    _write(args.tap, lines)
    for r in results:
        if "error" not in r:
            print(f"{PREFIX} seed {r['seed']}: {r['summary']}", flush=True)
        for x in r.get("mismatch") or r.get("error", "").splitlines():
            print(f"{PREFIX}   {x}", flush=True)
    if hp is not None:
        print(f"{PREFIX} {lines[-1].split(' - ', 1)[1]}", flush=True)
    failed = any(x.startswith("not ok") for x in lines)
    print(f"{PREFIX} done: {'FAILED' if failed else 'passed'}, "
          f"{sum(r.get('calls', 0) for r in results)} calls", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
