// SPDX-License-Identifier: GPL-2.0+ OR MIT
/*
 * hotplug_cpu_opv_test: per-CPU counters updated by rseq fast paths and
 * cpu_opv slow paths, local and aimed at other CPUs, while one thread
 * takes CPUs offline and back online in a loop and a 1 kHz timer signal
 * interrupts everything. The total must be exact: each worker counts
 * the increments it committed, and the per-CPU counters must add up to
 * that, whatever CPU was online when.
 *
 * A vector aimed at an offline CPU runs on the caller's CPU with hotplug
 * held off; one aimed at a CPU that goes offline or comes online during
 * the call is retried by the kernel. Neither may lose or double an add.
 *
 * Usage: hotplug_cpu_opv_test [-c CYCLES] [-t SECONDS]: stop after CYCLES
 * offline/online cycles (default 100) or SECONDS (default 120), whichever
 * comes first. Needs root, 2 CPUs and CPU hotplug, else SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest.h"
#include "rseq.h"
#include "cpu-op.h"

struct counter {
	alignas(128) intptr_t v;
};

static struct counter count[CPU_SETSIZE];
static atomic_int stop;
static atomic_long committed, slow_paths, remote_calls, signals;
static int nr_possible;
/* The CPUs this process may aim a vector at (cpu_opv: EINVAL for others). */
static int targets[CPU_SETSIZE], nr_targets;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&signals, 1, memory_order_relaxed);
}

/* One increment of this CPU's counter: rseq first, cpu_opv if it aborts. */
static void add_local(void)
{
	for (;;) {
		int cpu = rseq_cpu_start(), ret;

		ret = rseq_addv(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID,
				&count[cpu].v, 1, cpu);
		if (!ret)
			return;
		atomic_fetch_add_explicit(&slow_paths, 1, memory_order_relaxed);
		if (!cpu_op_addv(&count[cpu].v, 1, cpu))
			return;
		if (errno != EAGAIN)
			ksft_exit_fail_msg("cpu_opv, local CPU %d: %s\n", cpu,
					   cpu_op_errno_name(errno));
	}
}

/*
 * Every CPU, isolated ones (isolcpus=) included, which the default mask
 * leaves out; then the targets are whatever the mask holds (a cpuset may
 * refuse some).
 */
static void pick_targets(void)
{
	cpu_set_t mask;
	int cpu;

	CPU_ZERO(&mask);
	for (cpu = 0; cpu < nr_possible; cpu++)
		CPU_SET(cpu, &mask);
	sched_setaffinity(0, sizeof(mask), &mask);
	nr_targets = cpu_op_allowed_cpus(targets, NULL);
	if (nr_targets < 0)
		ksft_exit_fail_msg("sched_getaffinity: %s\n", strerror(errno));
}

/* One increment of another CPU's counter, online or not. */
static void add_remote(unsigned int *seed)
{
	int cpu = targets[rand_r(seed) % nr_targets];

	atomic_fetch_add_explicit(&remote_calls, 1, memory_order_relaxed);
	if (cpu_op_addv(&count[cpu].v, 1, cpu))
		ksft_exit_fail_msg("cpu_opv, remote CPU %d: %s\n", cpu,
				   cpu_op_errno_name(errno));
}

static void *worker(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	long mine = 0;

	if (rseq_register_current_thread())
		ksft_exit_fail_msg("rseq_register_current_thread: %s\n",
				   strerror(errno));
	while (!atomic_load(&stop)) {
		if (rand_r(&seed) % 4)
			add_local();
		else
			add_remote(&seed);
		mine++;
	}
	atomic_fetch_add(&committed, mine);
	if (rseq_unregister_current_thread())
		ksft_exit_fail_msg("rseq_unregister_current_thread: %s\n",
				   strerror(errno));
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long cycles = 100, done = 0, failed_offline = 0, sum = 0;
	double seconds = 120, t0;
	struct itimerval tick = { { 0, 1000 }, { 0, 1000 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	pthread_t *threads;
	int nr_threads, i, opt;

	while ((opt = getopt(argc, argv, "c:t:")) != -1) {
		switch (opt) {
		case 'c':
			cycles = atol(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-c CYCLES] [-t SECONDS]\n", argv[0]);
			return KSFT_FAIL;
		}
	}
	ksft_print_header();
	if (!cpu_op_available())
		ksft_exit_skip("%s\n", cpu_op_unavailable_reason());
	nr_possible = get_nprocs_conf();
	if (nr_possible > CPU_SETSIZE)
		nr_possible = CPU_SETSIZE;
	if (geteuid() || nr_possible < 2 ||
	    cpu_op_set_online(nr_possible - 1, true))
		ksft_exit_skip("needs root, 2 CPUs and CPU hotplug\n");
	ksft_set_plan(1);
	pick_targets();

	nr_threads = 2 * nr_possible;
	threads = calloc(nr_threads, sizeof(*threads));
	if (!threads)
		ksft_exit_fail_msg("calloc\n");
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &tick, NULL))
		ksft_exit_fail_msg("timer: %s\n", strerror(errno));
	for (i = 0; i < nr_threads; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i + 1)))
			ksft_exit_fail_msg("pthread_create\n");

	/* CPU 0 often cannot go offline; cycle through the others. */
	t0 = now_s();
	while (done < cycles && now_s() - t0 < seconds) {
		int cpu = 1 + done % (nr_possible - 1);

		if (cpu_op_set_online(cpu, false)) {
			failed_offline++;	/* EBUSY now and then: try the next */
		} else if (cpu_op_set_online(cpu, true)) {
			ksft_exit_fail_msg("cpu %d does not come back online: %s\n",
					   cpu, strerror(errno));
		}
		done++;
	}
	atomic_store(&stop, 1);
	for (i = 0; i < nr_threads; i++)
		pthread_join(threads[i], NULL);
	tick = (struct itimerval){ 0 };
	setitimer(ITIMER_REAL, &tick, NULL);

	for (i = 0; i < nr_possible; i++)
		sum += count[i].v;
	ksft_print_msg("%ld hotplug cycles (%ld offline refused) in %.1f s; %d threads\n",
		       done - failed_offline, failed_offline, now_s() - t0, nr_threads);
	ksft_print_msg("%ld increments: %ld slow paths, %ld remote; %ld signals; sum %ld\n",
		       atomic_load(&committed), atomic_load(&slow_paths),
		       atomic_load(&remote_calls), atomic_load(&signals), sum);
	ksft_test_result(sum == atomic_load(&committed) && done > failed_offline,
			 "rseq + cpu_opv under CPU hotplug and signals: exact total\n");
	ksft_finished();
}
