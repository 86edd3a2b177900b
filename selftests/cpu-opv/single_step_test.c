// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * single_step_test.c: why rseq needs the cpu_opv slow path.
 *
 * A tracer single-steps a child doing one per-CPU increment. Every step
 * traps into the kernel and stops the child, which preempts it, so the
 * kernel aborts the rseq critical section on the way back to user space:
 * with rseq alone the increment never completes. With the cpu_opv
 * fallback (after N aborts, increment with cpu_opv) it completes, the
 * syscall being a single step.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "../kselftest.h"
#include "rseq.h"
#include "cpu-op.h"

/*
 * One rseq_addv attempt is ~15 steps, so 10000 steps are ~700 aborted
 * attempts; the cpu_opv fallback completes in ~300 (measured, x86_64).
 */
static long max_steps = 10000;
static int slow_after = 10;

/* Child state, read by the tracer with PTRACE_PEEKDATA. */
static intptr_t count[CPU_SETSIZE];
static long nr_aborts;

/* Traced child: one increment, then SIGUSR2 tells the tracer it is done. */
static void __noreturn child(int fallback)
{
	intptr_t sum = 0;
	int i;

	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) ||
	    rseq_register_current_thread())
		_exit(3);
	raise(SIGSTOP);		/* single-stepping starts here */
	for (;;) {
		int cpu = rseq_cpu_start(), ret;

		if (fallback && RSEQ_READ_ONCE(nr_aborts) >= slow_after)
			ret = cpu_op_addv(&count[cpu], 1, cpu);
		else
			ret = rseq_addv(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID,
					&count[cpu], 1, cpu);
		if (!ret)
			break;
		RSEQ_WRITE_ONCE(nr_aborts, RSEQ_READ_ONCE(nr_aborts) + 1);
	}
	raise(SIGUSR2);
	for (i = 0; i < CPU_SETSIZE; i++)
		sum += count[i];
	_exit(sum == 1 ? 0 : 1);
}

struct outcome {
	bool completed;
	long steps, aborts;
	int exit_status;
};

/* Returns false when single-stepping is not supported (EIO). */
static bool trace(int fallback, struct outcome *o)
{
	int status;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		ksft_exit_fail_msg("fork: %s\n", strerror(errno));
	if (!pid)
		child(fallback);
	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status) ||
	    WSTOPSIG(status) != SIGSTOP)
		ksft_exit_fail_msg("child did not stop (status 0x%x)\n", status);

	while (o->steps < max_steps) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL)) {
			if (errno != EIO)
				ksft_exit_fail_msg("PTRACE_SINGLESTEP: %s\n",
						   strerror(errno));
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return false;
		}
		if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status))
			ksft_exit_fail_msg("child died while stepped (status 0x%x)\n",
					   status);
		o->steps++;
		if (WSTOPSIG(status) == SIGUSR2) {
			o->completed = true;
			break;
		}
		if (WSTOPSIG(status) != SIGTRAP)
			ksft_exit_fail_msg("child stopped by signal %d\n",
					   WSTOPSIG(status));
	}
	errno = 0;
	o->aborts = ptrace(PTRACE_PEEKDATA, pid, (void *)&nr_aborts, NULL);
	if (errno)
		ksft_exit_fail_msg("PTRACE_PEEKDATA: %s\n", strerror(errno));
	if (o->completed) {
		/* Let it check the counters and exit. */
		ptrace(PTRACE_CONT, pid, NULL, NULL);
		waitpid(pid, &status, 0);
		o->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	} else {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return true;
}

int main(int argc, char **argv)
{
	struct outcome o;
	int opt;

	while ((opt = getopt(argc, argv, "s:n:")) != -1) {
		switch (opt) {
		case 's':
			max_steps = atol(optarg);
			break;
		case 'n':
			slow_after = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s max steps (10000)] [-n aborts before cpu_opv (10)]\n",
				argv[0]);
			return KSFT_FAIL;
		}
	}
	ksft_print_header();
#ifdef __arm__
	ksft_exit_skip("32-bit arm has no PTRACE_SINGLESTEP\n");
#endif
	if (rseq_register_current_thread())
		ksft_exit_skip("rseq: registration failed: %s\n", strerror(errno));
	ksft_set_plan(2);

	if (!trace(0, &o))
		ksft_exit_skip("PTRACE_SINGLESTEP: EIO, not supported here\n");
	ksft_print_msg("rseq only: %s after %ld steps, %ld rseq aborts\n",
		       o.completed ? "completed" : "no progress", o.steps, o.aborts);
	ksft_test_result(!o.completed && o.aborts > 0,
			 "rseq only: single-stepped increment never completes in %ld steps\n",
			 max_steps);

	if (!cpu_op_available()) {
		ksft_test_result_skip("rseq + cpu_opv fallback: %s\n",
				      cpu_op_unavailable_reason());
	} else {
		trace(1, &o);
		ksft_print_msg("rseq + cpu_opv after %d aborts: %s after %ld steps\n",
			       slow_after, o.completed ? "completed" : "no progress",
			       o.steps);
		ksft_print_msg("rseq + cpu_opv: %ld rseq aborts, child exit %d\n",
			       o.aborts, o.exit_status);
		ksft_test_result(o.completed && !o.exit_status &&
				 o.aborts == slow_after,
				 "rseq + cpu_opv fallback: single-stepped increment completes\n");
	}
	ksft_finished();
}
