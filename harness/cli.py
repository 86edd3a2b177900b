"""Entry point: `python -m harness STAGE`.  The only place exit codes are chosen.

Stages, each runnable alone and each running the ones it needs first:
fetch -> patch -> config -> kernel -> boot-test.  Every run ends on one
line naming who is to blame, and the exit status follows from it:

  0  passed            nobody
  1  under test failed the series (does not apply, does not compile, its
                       kernel panics or warns in the guest) or a test
  2  machinery failed  the host (download, tools, QEMU, a VM that died,
                       hung or never reached its script) or your input
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    ahead,
    bench,
    boot,
    build,
    checkpatch,
    evaluate,
    evaluate_report,
    fetch,
    fuzzing,
    guest_root,
    kconfig,
    patch,
    report,
    selftests_patch,
    series_check,
    source,
    sparse,
    tap,
)
from harness import arch as arches
from harness.arch import ArchConfig
from harness.errors import (
    EXIT_INFRA,
    EXIT_PASS,
    EXIT_TEST_FAILED,
    Blame,
    HarnessError,
    UserError,
)
from harness.run import echo, run


@dataclass(frozen=True)
class Paths:
    """Where each stage puts its outputs, for one architecture."""

    build: Path
    arch: ArchConfig
    # "" for the test kernel; "bench" for make bench's kernel and "debug"
    # for DEBUG=1's, which have other configs and so object directories of
    # their own (build/<arch>-bench, build/<arch>-debug).
    variant: str = ""

    @property
    def src_root(self) -> Path:
        return self.build / "src"

    @property
    def arch_dir(self) -> Path:
        return self.build / "-".join(filter(None, (self.arch.name, self.variant)))

    @property
    def objdir(self) -> Path:
        return self.arch_dir / "obj"

    @property
    def results(self) -> Path:
        return self.arch_dir / "results"


# The one mapping from blame to exit status (README, "Exit status").
EXIT_CODES: dict[Blame, int] = {
    Blame.NOBODY: EXIT_PASS,
    Blame.SERIES: EXIT_TEST_FAILED, Blame.TEST: EXIT_TEST_FAILED,
    Blame.HOST: EXIT_INFRA, Blame.INPUT: EXIT_INFRA,
}


@dataclass(frozen=True)
class Verdict:
    """How a stage ended: who is to blame, and why in one line."""

    blame: Blame
    why: str = ""

    @property
    def rc(self) -> int:
        return EXIT_CODES[self.blame]

    def __str__(self) -> str:
        if self.blame is Blame.NOBODY:
            return f"passed{f' ({self.why})' if self.why else ''}"
        return f"blame: {self.blame.value}: {self.why}"


PASSED = Verdict(Blame.NOBODY)


def verdict_of(error: HarnessError) -> Verdict:
    """Say what went wrong, in full, and return the verdict it makes."""
    echo(f"error: {error}" if isinstance(error, UserError) else f"FAILED in stage {error}")
    return Verdict(error.blame, f"{error.stage}: {error.message.splitlines()[0]}")


@dataclass(frozen=True)
class Outcome:
    """One architecture's boot-test, for the boot-test-all table."""

    arch: str
    verdict: Verdict
    build_s: float | None = None
    guest_root_s: float | None = None
    facts: boot.GuestFacts | None = None
    counts: report.Counts | None = None
    error: str = ""
    # boot-test-all: how long the guests waited for this one's build.
    wait_s: float | None = None


@dataclass
class Context:
    paths: Paths
    kernel_src: Path | None
    patches: Path
    extra_config: list[Path]
    boot_timeout: int
    profile: str = "quick"
    # Words added to the guest kernel's command line (BOOT_APPEND).
    append: tuple[str, ...] = ()
    configured: source.Tree | None = None
    outcome: Outcome | None = None
    # What the guest's fuzzer runs (make fuzz; the end of every boot-test).
    fuzz: fuzzing.Spec | None = None
    # SEED, N, WORKERS and FUZZ_TIME as given, for the fuzz spec of each
    # kernel boot-test-all boots (the defaults differ with DEBUG=1).
    fuzz_knobs: tuple[int | None, int | None, int | None, int | None] = (None,) * 4
    # The architectures boot-test-all boots on their DEBUG=1 kernel.
    debug_arches: frozenset[str] = frozenset()

    def tree(self) -> source.Tree:
        if self.kernel_src is not None:
            return source.user_tree(self.kernel_src, self.paths.src_root)
        return source.vanilla(self.paths.src_root)


def stage_fetch(ctx: Context) -> source.Tree:
    echo("== fetch: the kernel source")
    return ctx.tree()


def stage_patch(ctx: Context) -> tuple[source.Tree, str]:
    tree = stage_fetch(ctx)
    echo("== patch: apply patches/series with git am")
    return tree, patch.apply(tree, ctx.patches)


def stage_config(ctx: Context) -> source.Tree:
    # Later stages (kernel, selftests) both need the configured tree: do the
    # work once per run.
    if ctx.configured is not None:
        return ctx.configured
    tree, head = stage_patch(ctx)
    echo("== config: tinyconfig + kernel-config/ fragments, verified")
    kconfig.configure(ctx.paths.arch, tree.worktree, ctx.paths.objdir, head,
                      ctx.extra_config)
    ctx.configured = tree
    return tree


def stage_kernel(ctx: Context) -> Path:
    tree = stage_config(ctx)
    echo(f"== build: {ctx.paths.arch.name} kernel, out of tree in {ctx.paths.objdir}")
    return build.build(ctx.paths.arch, tree.worktree, ctx.paths.objdir,
                       ctx.paths.build / ".kernel-build.lock",
                       ctx.paths.arch_dir / "build.log")


def stage_selftests(ctx: Context) -> Path:
    """Build the C selftests (ours and the tree's rseq ones) for the guest."""
    tree = stage_config(ctx)
    out = ctx.paths.arch_dir / "selftests"
    echo(f"== selftests: build for {ctx.paths.arch.name} into {out}")
    a = ctx.paths.arch
    # build.sh takes the per-architecture facts from the data file's values.
    env = {"KERNEL_ARCH": a.kernel_arch, "CROSS_COMPILE": a.cross_compile,
           "SELFTEST_CFLAGS": a.selftest_cflags}
    run(["bash", str(REPO / "selftests" / "build.sh"), a.name,
         str(tree.worktree), str(out)], stage="selftests", timeout=1800, env=env)
    return out


def stage_selftests_patch(ctx: Context) -> None:
    selftests_patch.write(ctx.patches, ctx.paths.src_root)


def stage_check_selftests_patch(ctx: Context) -> Verdict:
    problems = selftests_patch.problems(ctx.patches, ctx.paths.src_root)
    for p in problems:
        echo(f"selftests-patch: {p}")
    if problems:
        echo("selftests-patch: run `make selftests-patch` and commit patches/")
        return Verdict(Blame.SERIES, "the selftests patch does not match selftests/cpu-opv")
    echo("selftests-patch: patches/ matches selftests/cpu-opv")
    return PASSED


def stage_guest_root(ctx: Context) -> Path | None:
    """The guest root of an architecture QEMU boots directly, else None."""
    if ctx.paths.arch.launcher != "qemu":
        return None
    echo(f"== guest-root: Debian {ctx.paths.arch.debian_arch} packages")
    return guest_root.build(ctx.paths.arch, ctx.paths.arch_dir / "guest-root",
                            fetch.cache_dir(), REPO)


def _boot_request(ctx: Context, image: Path, root: Path | None) -> boot.BootRequest:
    p = ctx.paths
    p.results.mkdir(parents=True, exist_ok=True)
    kvm = boot.probe_kvm(p.arch, image, ctx.paths.build / "kvm-probe.json")
    return boot.BootRequest(p.arch, image, p.arch_dir / "console.log", p.results,
                            timeout_s=ctx.boot_timeout, kvm=kvm, root=root,
                            append=ctx.append)


def collect(results: Path, console_text: str, objdir: Path) -> list[tap.TestResult]:
    """Every suite the guest ran, as parsed TAP, in a stable order."""
    suites: list[tap.TestResult] = []
    dmesg = results / "dmesg-boot.txt"
    # Only a kernel with KUnit has its KTAP to read: without it, the first
    # TAP on the console would be some other program's.
    if "CONFIG_KUNIT=y" in (objdir / ".config").read_text():
        suites.append(tap.read_kunit(dmesg.read_text(errors="replace") if dmesg.exists()
                                     else console_text))
    pytest_dir = results / "pytest"
    taps = sorted(pytest_dir.glob("*.tap")) if pytest_dir.is_dir() else []
    if not taps:
        suites.append(tap.TestResult("pytest", tap.Status.ERROR,
                                     "no pytest results: the suites did not run"))
    for f in taps:
        suites.append(tap.parse(f.read_text(errors="replace"), f"pytest:{f.stem}"))
    # vm/guest/run-selftests.sh writes <suite>/<program>.tap.
    sdir = results / "selftests"
    staps = sorted(sdir.glob("*/*.tap")) if sdir.is_dir() else []
    if not staps:
        suites.append(tap.TestResult("selftest", tap.Status.ERROR,
                                     "no C selftest results: the selftests did not run"))
    for f in staps:
        suites.append(tap.parse(f.read_text(errors="replace"),
                                f"selftest:{f.parent.name}/{f.stem}"))
    # python -m harness.fuzz writes results/fuzz/<name>.tap: a model
    # mismatch is a failed test.
    if (results / "fuzz").is_dir():
        suites += fuzzing.collect(results)
    return suites


def _run_guest(ctx: Context, image: Path, root: Path | None, profile: str,
               timeout_s: int | None = None) -> tuple[boot.BootRequest, boot.BootResult]:
    """Boot the guest script with @profile, into a clean results directory;
    the VM may run timeout_s, or BOOT_TIMEOUT when that is None."""
    req = _boot_request(ctx, image, root)
    if timeout_s is not None:
        req = dataclasses.replace(req, timeout_s=timeout_s)
    # Stale results from an earlier run must never be read as this run's.
    shutil.rmtree(req.results, ignore_errors=True)
    req.results.mkdir(parents=True)
    config = (ctx.paths.objdir / ".config").read_text()
    cpu_opv = "required" if "CONFIG_CPU_OPV=y" in config else "optional"
    guest_argv = [str(boot.GUEST_SCRIPT), ctx.paths.arch.name, str(req.results), cpu_opv,
                  profile]
    if ctx.fuzz is not None:
        guest_argv.append(ctx.fuzz.guest_arg())
    return req, boot.boot(req, guest_argv)


@dataclass(frozen=True)
class Prepared:
    """What a boot needs, built: the kernel image, the guest root (None for
    an architecture vng boots on the host's root), the selftests."""

    image: Path
    root: Path | None
    kernel_s: float
    root_s: float


def prepare(ctx: Context) -> Prepared:
    t0 = time.monotonic()
    image = stage_kernel(ctx)
    t1 = time.monotonic()
    root = stage_guest_root(ctx)
    t2 = time.monotonic()
    stage_selftests(ctx)
    return Prepared(image, root, t1 - t0, t2 - t1)


def stage_boot_test(ctx: Context) -> Verdict:
    return boot_test(ctx, lambda: prepare(ctx))


def boot_test(ctx: Context, prepared: Callable[[], Prepared]) -> Verdict:
    """The whole pipeline, `prepared()` giving the built parts; whatever
    happens, results/junit.xml names the verdict (a build error leaves one
    too, with no suite in it)."""
    results = ctx.paths.results
    # Stale results from an earlier run must never be read as this run's.
    shutil.rmtree(results, ignore_errors=True)
    suites: list[tap.TestResult] = []
    try:
        verdict = _boot_test(ctx, prepared(), suites)
    except HarnessError as e:
        verdict = verdict_of(e)
    if ctx.outcome is None:
        ctx.outcome = Outcome(ctx.paths.arch_dir.name, verdict)
    junit = results / "junit.xml"
    report.write_junit(suites, junit, verdict.rc, verdict.blame.value, verdict.why)
    echo(f"report: JUnit XML {junit}")
    return verdict


def _boot_test(ctx: Context, built: Prepared, suites: list[tap.TestResult]) -> Verdict:
    echo("== boot: run every suite in the guest")
    req, result = _run_guest(ctx, built.image, built.root, ctx.profile,
                             fuzzing.boot_test_timeout(ctx.fuzz, ctx.boot_timeout))
    facts = boot.guest_facts(result.console)
    seen = (f"; {facts.cpus} CPUs, script started {facts.boot_s:.1f}s after the kernel"
            if facts.cpus is not None and facts.boot_s is not None else "")
    echo(f"boot: guest finished in {result.seconds:.0f}s "
         f"(script exit {result.guest_rc}, VM exit {result.vm_rc}{seen})")
    boot.check_console(result, req.console_log)
    echo("== report")
    suites += collect(req.results, result.console, ctx.paths.objdir)
    text, total = report.summary(suites)
    print(text, flush=True)
    echo(f"report: raw TAP/KTAP under {req.results}")
    verdict = tests_verdict(total, result.guest_rc)
    ctx.outcome = Outcome(ctx.paths.arch_dir.name, verdict, built.kernel_s, built.root_s,
                          facts, total)
    return verdict


def tests_verdict(total: report.Counts, guest_rc: int | None) -> Verdict:
    """The verdict of a guest that ran its script to the end."""
    if total.failed or total.errors:
        return Verdict(Blame.TEST, str(total))
    if guest_rc != 0:
        return Verdict(Blame.TEST, f"the guest script exited {guest_rc} "
                       f"though no result failed ({total})")
    if total.passed == 0:
        return Verdict(Blame.TEST, f"no test passed: a run that tests nothing "
                       f"is not a pass ({total})")
    return Verdict(Blame.NOBODY, str(total))


BENCH_CONFIG = REPO / "kernel-config" / "bench.config"


def debug_fragments(arch: ArchConfig) -> list[Path]:
    """DEBUG=1's fragments: KASAN, KFENCE, lockup and hung-task detectors,
    then what one architecture needs on top (x86_64: the buddy hard lockup
    detector, as QEMU TCG has no PMU NMIs for the perf one)."""
    frags = [REPO / "kernel-config" / "debug-heavy.config",
             REPO / "kernel-config" / f"debug-heavy-{arch.name}.config"]
    return [f for f in frags if f.exists()]


def debug_context(ctx: Context) -> Context:
    """The same run on the DEBUG=1 kernel, in build/<arch>-debug."""
    return dataclasses.replace(
        ctx, paths=dataclasses.replace(ctx.paths, variant="debug"),
        extra_config=[*ctx.extra_config, *debug_fragments(ctx.paths.arch)])


def stage_bench(ctx: Context) -> Verdict:
    """cpu_opv_bench in the guest, on the test kernel without its debug
    options: a table on stdout, JSON in build/<arch>-bench/bench.json."""
    ctx = dataclasses.replace(ctx, paths=dataclasses.replace(ctx.paths, variant="bench"),
                              extra_config=[*ctx.extra_config, BENCH_CONFIG])
    image = stage_kernel(ctx)
    root = stage_guest_root(ctx)
    stage_selftests(ctx)
    echo("== bench: cpu_opv_bench in the guest")
    req, result = _run_guest(ctx, image, root, "bench")
    boot.check_console(result, req.console_log)
    accel = "KVM" if req.kvm else "QEMU TCG"
    data = bench.load(req.results / "bench.json")
    print(bench.table(data, accel), flush=True)
    out = ctx.paths.arch_dir / "bench.json"
    series = [p.name for p in patch.read_series(ctx.patches)]
    bench.save(data, out, accel, series)
    echo(f"bench: JSON in {out}")
    if result.guest_rc != 0:
        return Verdict(Blame.TEST, f"cpu_opv_bench failed (guest exit {result.guest_rc})")
    return PASSED


def stage_fuzz(ctx: Context) -> Verdict:
    """make fuzz SEED=.. N=..: the fuzzer alone in the guest of the test
    kernel (DEBUG=1: the debug kernel); a mismatch or a kernel warning fails."""
    timeout = ctx.boot_timeout
    if ctx.fuzz is not None:
        fuzz, timeout = fuzzing.for_vm(ctx.fuzz, ctx.boot_timeout)
        ctx = dataclasses.replace(ctx, fuzz=fuzz)
    image = stage_kernel(ctx)
    root = stage_guest_root(ctx)
    echo(f"== fuzz: python -m harness.fuzz in the guest ({ctx.fuzz}; "
         f"the VM may run {timeout}s)")
    req, result = _run_guest(ctx, image, root, "fuzz", timeout)
    boot.check_console(result, req.console_log)
    text, total = report.summary(fuzzing.collect(req.results))
    print(text, flush=True)
    echo(f"fuzz: TAP in {req.results / 'fuzz'}, console in {req.console_log}")
    return tests_verdict(total, result.guest_rc)


NO_CPU_OPV_CONFIG = REPO / "kernel-config" / "no-cpu-opv.config"
EVAL_SCRIPT = REPO / "vm" / "guest" / "evaluate.sh"


def _eval_guest(ctx: Context, programs: Path | None,
                modes: tuple[str, ...]) -> tuple[dict[str, Any], Path]:
    """cpu_opv_eval's @modes in a guest of @ctx's kernel; the selftests are
    built for it unless @programs already holds them."""
    image = stage_kernel(ctx)
    root = stage_guest_root(ctx)
    programs = programs or stage_selftests(ctx)
    req = _boot_request(ctx, image, root)
    shutil.rmtree(req.results, ignore_errors=True)
    req.results.mkdir(parents=True)
    echo(f"== evaluate: cpu_opv_eval {' '.join(modes)} in the guest")
    result = boot.boot(req, [str(EVAL_SCRIPT), str(req.results),
                             str(programs / "cpu-opv" / "cpu_opv_eval"), *modes])
    boot.check_console(result, req.console_log)
    echo(f"evaluate: guest finished in {result.seconds:.0f}s (exit {result.guest_rc})")
    if result.guest_rc != 0:
        said = [line for line in result.console.splitlines() if "cpu_opv_eval" in line]
        raise evaluate.EvalError(evaluate.STAGE, f"cpu_opv_eval failed in the guest: "
                                 f"{said[-1] if said else 'exit ' + str(result.guest_rc)}",
                                 f"see {req.console_log} and {req.results}/*.err")
    return evaluate.load(req.results, modes), programs


def stage_evaluate(ctx: Context) -> Verdict:
    """cpu_opv against its alternatives (docs/evaluation.md): cpu_opv_eval on
    the bench kernel, and its ctxsw mode on that kernel without
    CONFIG_CPU_OPV; the record, report and plots in build/<arch>-eval/."""
    def variant(name: str, frags: list[Path]) -> Context:
        return dataclasses.replace(ctx, paths=dataclasses.replace(ctx.paths, variant=name),
                                   extra_config=[*ctx.extra_config, *frags], configured=None)

    opv, programs = _eval_guest(variant("bench", [BENCH_CONFIG]), None, evaluate.MODES)
    plain, _ = _eval_guest(variant("no-cpu-opv", [BENCH_CONFIG, NO_CPU_OPV_CONFIG]),
                           programs, evaluate.PLAIN_MODES)
    out = dataclasses.replace(ctx.paths, variant="eval").arch_dir
    out.mkdir(parents=True, exist_ok=True)
    meta = {"arch": ctx.paths.arch.name, "accel": "QEMU TCG", "cpus": opv["cost"]["cpus"],
            "series": [p.name for p in patch.read_series(ctx.patches)],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rec = evaluate.record({"cpu_opv": opv, "no_cpu_opv": plain}, meta)
    (out / "evaluation.json").write_text(json.dumps(rec, indent=2) + "\n")
    text = evaluate_report.markdown(rec)
    (out / "evaluation.md").write_text(text + "\n")
    print(text, flush=True)
    echo(f"evaluate: {out}/evaluation.json and evaluation.md")
    # matplotlib is slow to import: only this stage pays for it.
    from harness import evaluate_plot
    plots = evaluate_plot.render(out / "evaluation.json")
    echo(f"evaluate: plots {' '.join(str(p) for p in plots)}")
    lost = evaluate.lost_increments(opv["progress"])
    if lost:
        return Verdict(Blame.TEST, f"increments lost or threads stuck in {', '.join(lost)}")
    return Verdict(Blame.NOBODY, rec["ctxsw_verdict"])


def stage_shell(ctx: Context) -> int:
    image = stage_kernel(ctx)
    root = stage_guest_root(ctx)
    req = _boot_request(ctx, image, root)
    vng = ctx.paths.arch.launcher == "vng"
    # The guest root (launcher qemu) has Debian's python3 and pytest.
    pytest = "build/venv/bin/python -m pytest" if vng else "python3 -m pytest   "
    print(SHELL_BANNER.format(root=REPO, pytest=pytest,
                              arch=ctx.paths.arch.name), flush=True)
    argv = boot.command(req, None)
    if vng:
        argv += ["--cwd", str(REPO)]
    os.environ["PYTHONPATH"] = str(REPO)
    os.execv(argv[0], argv)


SHELL_BANNER = """\
cpu_opv test VM: a 4-CPU {arch} guest of the kernel just built, root, cwd {root}.
  python3 -m harness.poke --cpu 1 'add u64 @a 5'   poke cpu_opv from the command line
  python3 -m harness.poke --repl                    a Python REPL with the bindings loaded
  {pytest} harness/suites    the guest test suites
Leave with `exit` or Ctrl-D (the VM powers off)."""


def stage_checkpatch(ctx: Context) -> Verdict:
    patches = [p for p in patch.read_series(ctx.patches)
               if not checkpatch.is_cover_letter(p)]
    if not patches:
        echo("checkpatch: no patches")
        return PASSED
    tree = stage_fetch(ctx)
    echo("== checkpatch: scripts/checkpatch.pl --strict on each patch")
    # The patched worktree has the series' own checkpatch changes, if any.
    top = tree.worktree if (tree.worktree / "scripts").is_dir() else tree.repo
    results = checkpatch.check_series(top, patches)
    print(checkpatch.format_results(results), flush=True)
    bad = [r for r in results if r.failed]
    if bad:
        return Verdict(Blame.SERIES, f"checkpatch: {len(bad)} of {len(results)} patches "
                       "have unexplained problems")
    return PASSED


def stage_series_check(ctx: Context) -> Verdict:
    patches = patch.read_series(ctx.patches)
    if not patches:
        echo("series-check: no patches")
        return PASSED
    tree = stage_fetch(ctx)
    echo(f"== series-check: each of the {len(patches)} prefixes of the series builds")
    results = series_check.build_prefixes(ctx.paths.arch, tree, patches,
                                 ctx.paths.build / "series-check",
                                 ctx.paths.build / ".kernel-build.lock", ctx.extra_config)
    print(series_check.format_prefixes(results, len(patches)), flush=True)
    bad = [r for r in results if not r.ok]
    if bad:
        return Verdict(Blame.SERIES, f"series-check: prefix {bad[0].index} "
                       f"({bad[0].patch}) does not build")
    return PASSED


def stage_sparse(ctx: Context) -> Verdict:
    tree = stage_config(ctx)
    echo("== sparse: C=2 W=1 on the series' files under kernel/ and include/")
    result = sparse.check_objects(ctx.paths.arch, tree, ctx.paths.objdir,
                          ctx.paths.build / ".kernel-build.lock",
                          ctx.paths.arch_dir / "sparse.log")
    print(sparse.format_result(result), flush=True)
    if result.diagnostics:
        return Verdict(Blame.SERIES, "sparse: diagnostics on the series' lines")
    return PASSED


def all_context(ctx: Context, name: str) -> Context:
    """boot-test-all's context for one architecture: its test kernel, or
    its DEBUG=1 kernel when it is one of ctx.debug_arches."""
    one = dataclasses.replace(ctx, paths=Paths(ctx.paths.build, arches.get(name)),
                              configured=None, outcome=None)
    if name in ctx.debug_arches:
        one = debug_context(one)
    one.fuzz = fuzzing.spec(*ctx.fuzz_knobs, one.paths.variant)
    return one


def boot_order(ctx: Context) -> list[str]:
    """The DEBUG=1 kernels first: theirs are the longest guests, and the
    other architectures build while they run; then vm/arch/'s order."""
    return sorted(arches.names(), key=lambda name: name not in ctx.debug_arches)


def stage_boot_test_all(ctx: Context) -> Verdict:
    """boot-test on every architecture in vm/arch/, one guest after the
    other, each architecture built while the guest before it runs."""
    unknown = sorted(ctx.debug_arches - set(arches.names()))
    if unknown:
        raise UserError("boot-test-all", f"DEBUG_ARCHES: unknown architecture {', '.join(unknown)}",
                        f"name some of {', '.join(arches.names())}")
    ones = [all_context(ctx, name) for name in boot_order(ctx)]
    outcomes = []
    with ahead.Ahead(ones, prepare) as builder:
        for i, one in enumerate(ones):
            name = one.paths.arch_dir.name
            echo(f"=== boot-test-all: {name}")
            start = time.monotonic()
            if not builder.ready(i):
                echo(f"=== boot-test-all: {name}: waiting for its kernel, guest root and "
                     "selftests (built in the background at nice 19)")
            got = builder.take(i)
            for line in got.lines:
                echo(line)
            echo(f"=== boot-test-all: {name}: built in the background; "
                 f"the guests waited {got.waited_s:.0f}s for it")
            verdict = _run_stage(partial(boot_test, prepared=got.result), one)
            outcome = one.outcome or Outcome(name, verdict)
            outcomes.append(dataclasses.replace(outcome, wait_s=got.waited_s))
            echo(f"=== boot-test-all: {name}: exit {verdict.rc} after "
                 f"{time.monotonic() - start:.0f}s, {verdict}")
    print(all_table(outcomes), flush=True)
    worst = max(outcomes, key=lambda o: o.verdict.rc)
    if worst.verdict.rc == EXIT_PASS:
        return PASSED
    return Verdict(worst.verdict.blame, f"{worst.arch}: {worst.verdict.why}")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def all_table(outcomes: list[Outcome]) -> str:
    """One row per architecture: its kernel build, guest root, how long
    the guests waited for them (they build while the guest before runs),
    boot to the guest script, the tests, CPUs seen, the counts."""
    # The first column as wide as its longest name ("x86_64-debug"), so
    # that the rest line up under their headings.
    w = max([len("arch")] + [len(o.arch) for o in outcomes])
    lines = [f"{'arch':<{w}} {'exit':>4} {'kernel':>7} {'root':>5} {'wait':>5} {'boot':>5} "
             f"{'tests':>6} {'cpus':>4} {'passed':>6} {'failed':>6} {'skipped':>7}"]
    for o in outcomes:
        f, c = o.facts, o.counts
        row = (f"{o.arch:<{w}} {o.verdict.rc:>4} {_secs(o.build_s):>7} {_secs(o.guest_root_s):>5} "
               f"{_secs(o.wait_s):>5} {_secs(f.boot_s if f else None):>5} "
               f"{_secs(f.tests_s if f else None):>6} "
               f"{(f.cpus if f and f.cpus else '-'):>4} ")
        if c is None:
            row += f"  ({o.verdict})"
        else:
            row += f"{c.passed:>6} {c.failed:>6} {c.skipped:>7}"
        lines.append(row)
    return "\n".join(lines)


STAGES = {
    "fetch": stage_fetch,
    "patch": stage_patch,
    "config": stage_config,
    "kernel": stage_kernel,
    "guest-root": stage_guest_root,
    "selftests": stage_selftests,
    "selftests-patch": stage_selftests_patch,
    "check-selftests-patch": stage_check_selftests_patch,
    "boot-test": stage_boot_test,
    "boot-test-all": stage_boot_test_all,
    "shell": stage_shell,
    "bench": stage_bench,
    "fuzz": stage_fuzz,
    "evaluate": stage_evaluate,
    "checkpatch": stage_checkpatch,
    "series-check": stage_series_check,
    "sparse": stage_sparse,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument("--arch", default=os.environ.get("ARCH") or "x86_64",
                   help="x86_64 (default), arm64, arm or powerpc")
    p.add_argument("--kernel-src", default=os.environ.get("KERNEL_SRC") or None,
                   help="use this kernel tree instead of the 6.12.107 tarball")
    p.add_argument("--patches", default=str(REPO / "patches"))
    p.add_argument("--build-dir", default=str(REPO / "build"))
    p.add_argument("--extra-config", action="append",
                   default=(os.environ.get("EXTRA_CONFIG") or "").split(),
                   help="another Kconfig fragment to merge (repeatable; "
                   "EXTRA_CONFIG='a.config b.config')")
    p.add_argument("--profile", choices=("quick", "full"),
                   default=os.environ.get("PROFILE") or "quick",
                   help="quick: every suite, stress tests time-bounded (default); "
                   "full: also the long upstream rseq stress tests (make soak)")
    p.add_argument("--boot-timeout", type=int,
                   default=int(os.environ.get("BOOT_TIMEOUT") or 1800))
    p.add_argument("--append", default=os.environ.get("BOOT_APPEND") or "",
                   help="words to add to the guest kernel's command line, "
                   "e.g. BOOT_APPEND=isolcpus=3")
    p.add_argument("--seed", type=int, help="the fuzzer's seed (default: the time)")
    p.add_argument("--calls", type=int,
                   help="fuzzer calls (default: 10,000 per boot-test, 100,000 with DEBUG=1)")
    p.add_argument("--workers", type=int, help="fuzzer processes (default: CPUs - 1)")
    p.add_argument("--fuzz-time", type=int,
                   help="seconds the fuzzer may run (make fuzz: BOOT_TIMEOUT - 300, and a "
                   "longer one raises BOOT_TIMEOUT; boot-test: 300, DEBUG=1 1200)")
    p.add_argument("--debug", action="store_true",
                   default=os.environ.get("DEBUG", "") not in ("", "0"),
                   help="the KASAN, KFENCE and lockup-detector kernel, in "
                   "build/<arch>-debug (DEBUG=1); boot-test-all: on every architecture")
    p.add_argument("--debug-arches", default=os.environ.get("DEBUG_ARCHES") or "",
                   help="boot-test-all: these architectures (comma or space separated) "
                   "boot their DEBUG=1 kernel instead of the test kernel (make test: x86_64)")
    return p.parse_args(argv)


def kernel_append(words: str) -> tuple[str, ...]:
    """BOOT_APPEND as kernel parameters: name or name=value words.  The
    kernel splits its command line at spaces and takes `--` as the end of its
    own parameters, so anything else would reach the guest's init garbled."""
    params = tuple(words.split())
    bad = [w for w in params if w.startswith("-") or any(c in w for c in "\"'\\")]
    if bad:
        raise UserError("boot", f"BOOT_APPEND: not a kernel parameter: {' '.join(bad)}",
                        "give name or name=value words, e.g. BOOT_APPEND='isolcpus=3 nohz=off'")
    return params


def _run_stage(stage: Callable[[Context], object], ctx: Context) -> Verdict:
    """Run a stage; a stage that returns no Verdict of its own passed."""
    try:
        result = stage(ctx)
        return result if isinstance(result, Verdict) else PASSED
    except HarnessError as e:
        return verdict_of(e)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    start = time.monotonic()
    try:
        arch = arches.get(args.arch)
        extra = [Path(e).resolve() for e in args.extra_config]
        ctx = Context(Paths(Path(args.build_dir).resolve(), arch),
                      Path(args.kernel_src) if args.kernel_src else None,
                      Path(args.patches).resolve(), extra, args.boot_timeout,
                      args.profile, kernel_append(args.append))
        fuzz_time = 0 if args.stage == "fuzz" and args.fuzz_time is None else args.fuzz_time
        ctx.fuzz_knobs = (args.calls, args.seed, args.workers, fuzz_time)
        if args.stage == "boot-test-all":
            # Each architecture gets its own variant in stage_boot_test_all.
            ctx.debug_arches = frozenset(
                arches.names() if args.debug else args.debug_arches.replace(",", " ").split())
        elif args.debug:
            ctx = debug_context(ctx)
        ctx.fuzz = fuzzing.spec(*ctx.fuzz_knobs, ctx.paths.variant)
        verdict = _run_stage(STAGES[args.stage], ctx)
    except UserError as e:
        verdict = verdict_of(e)
    except KeyboardInterrupt:
        echo("interrupted")
        verdict = Verdict(Blame.INPUT, "interrupted")
    # The closing line, alone on a line: the form CI reads.
    echo(f"{args.stage}: exit {verdict.rc} after {time.monotonic() - start:.0f}s, {verdict}")
    return verdict.rc
