// SPDX-License-Identifier: GPL-2.0+ OR MIT
/*
 * cpu_opv_bench: the cost of cpu_opv(2) calls, each as a ratio to a
 * getppid() system call measured in the same run, so that the numbers
 * mean something under an emulator (QEMU TCG) as on hardware.
 *
 *   cpu_opv_bench [-r RUNS] [-s SCALE]
 *
 * Prints one JSON object: for each case, the median time per call in
 * nanoseconds and the median, over RUNS runs, of its ratio to getppid()
 * in the same run. Cases:
 *
 *   getppid            the reference system call
 *   probe              cpu_opv(NULL, 0, -1, CPU_OP_NR_FLAG): entry and exit
 *   empty              a valid call with no operation (flags, CPU checks)
 *   local_1op          one 8-byte ADD on the current CPU
 *   local_16op         16 ADDs on the current CPU
 *   local_max          a 4096-byte memcpy and 15 ADDs (the 4216-byte limit)
 *   remote_1op         one ADD aimed at another CPU
 *   setaffinity_1op    what a caller does without cpu_opv: sched_setaffinity()
 *                      to the other CPU, the ADD in user space, and back
 *
 * Built with the selftests (TEST_GEN_PROGS_EXTENDED) but not run by them:
 * `make bench` runs it in the guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest.h"
#include "bench.h"
#include "cpu-op.h"

static cpu_set_t all;
static int cpus[CPU_SETSIZE], nr_cpus;
static uint64_t counter, data[4096 / 8];
static uint8_t src[4096];
static struct cpu_op one[1], sixteen[16], maxvec[16];

static void die(const char *what)
{
	fprintf(stderr, "cpu_opv_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_mask(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), cpu < 0 ? &all : &set))
		die("sched_setaffinity");
}

static int other_cpu(int cpu)
{
	int i;

	for (i = 0; i < nr_cpus; i++)
		if (cpus[i] == cpu)
			return cpus[(i + 1) % nr_cpus];
	return cpus[0];
}

static void do_getppid(long n)
{
	while (n--)
		syscall(SYS_getppid);
}

static void do_probe(long n)
{
	while (n--)
		cpu_opv(NULL, 0, -1, CPU_OP_NR_FLAG);
}

static void run_local(struct cpu_op *ops, int cnt, long n)
{
	int cpu = sched_getcpu();

	/* Pinned: every call finds the caller on its target already. */
	set_mask(cpu);
	while (n--)
		if (cpu_opv(ops, cnt, cpu, 0) < 0)
			die("cpu_opv (local)");
	set_mask(-1);
}

static void do_empty(long n)
{
	run_local(one, 0, n);
}

static void do_local_1op(long n)
{
	run_local(one, 1, n);
}

static void do_local_16op(long n)
{
	run_local(sixteen, 16, n);
}

static void do_local_max(long n)
{
	run_local(maxvec, 16, n);
}

static void do_remote_1op(long n)
{
	while (n--)
		if (cpu_opv(one, 1, other_cpu(sched_getcpu()), 0) < 0)
			die("cpu_opv (remote)");
}

static void do_setaffinity_1op(long n)
{
	while (n--) {
		set_mask(other_cpu(sched_getcpu()));
		counter++;
		set_mask(-1);
	}
}

static void set_add(struct cpu_op *op, uint64_t *p)
{
	*op = (struct cpu_op){ .op = CPU_ADD_OP, .len = 8,
		.u.arithmetic_op = { .p = CPU_OP_PTR(p), .count = 1 } };
}

int main(int argc, char **argv)
{
	struct bench benches[] = {
		{ "getppid", 20000, do_getppid },
		{ "probe", 20000, do_probe },
		{ "empty", 20000, do_empty },
		{ "local_1op", 10000, do_local_1op },
		{ "local_16op", 5000, do_local_16op },
		{ "local_max", 3000, do_local_max },
		{ "remote_1op", 400, do_remote_1op },
		{ "setaffinity_1op", 400, do_setaffinity_1op },
	};
	int nb = ARRAY_SIZE(benches);
	int runs = 5, opt, i;
	double scale = 1;

	while ((opt = getopt(argc, argv, "r:s:")) != -1) {
		switch (opt) {
		case 'r':
			runs = atoi(optarg);
			break;
		case 's':
			scale = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-r RUNS] [-s SCALE]\n", argv[0]);
			return 2;
		}
	}
	if (bench_check_args("cpu_opv_bench", runs, scale))
		return 2;
	if (!cpu_op_available()) {
		fprintf(stderr, "cpu_opv_bench: %s\n", cpu_op_unavailable_reason());
		return 4;
	}
	nr_cpus = cpu_op_allowed_cpus(cpus, &all);
	if (nr_cpus < 0)
		die("sched_getaffinity");

	set_add(&one[0], &counter);
	for (i = 0; i < 16; i++)
		set_add(&sixteen[i], &data[i * 8]);
	maxvec[0] = (struct cpu_op){ .op = CPU_MEMCPY_OP, .len = 4096,
		.u.memcpy_op = { .dst = CPU_OP_PTR(data), .src = CPU_OP_PTR(src) } };
	for (i = 1; i < 16; i++)
		set_add(&maxvec[i], &counter);

	bench_run(benches, nb, runs, scale);
	printf("{\"runs\": %d, \"cpus\": %d, \"cases\": {", runs, nr_cpus);
	bench_print_cases(stdout, benches, nb, runs);
	printf("\n}}\n");
	return 0;
}
