// SPDX-License-Identifier: GPL-2.0+ OR MIT
/*
 * mm_race_cpu_opv_test: cpu_opv(2) while another thread changes the
 * mapping of an operand, and while many processes pin pages at once
 * under memory pressure.
 *
 *  - mprotect race: the vector [add(Q, 1); add(P, 1)] runs while another
 *    thread flips P between read-only and read-write. A call either adds
 *    to both or fails with EFAULT having changed neither: at the end
 *    *P == *Q == the number of calls that returned 0.
 *  - munmap race: the same vector while another thread unmaps P and maps
 *    a fresh page there. Each call returns 0 or EFAULT; *Q counts the
 *    calls that returned 0, and P never holds more than that.
 *  - pinning pressure: several processes per CPU send vectors of 16
 *    page-crossing operations (62 pages pinned per call) to random CPUs
 *    while another process keeps most of the free memory allocated and
 *    touched. Each process checks its own data exactly.
 *
 * Each race runs until both outcomes have been seen often enough to
 * mean something, or its time is up: a race that never produced both
 * outcomes fails, since it tested nothing.
 *
 * Usage: mm_race_cpu_opv_test [-t SECONDS]: time per case (default 10).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest.h"
#include "cpu-op.h"

#define MIN_EACH	20	/* of each outcome, for a race to count */
#define MIN_CALLS	2000
#define PRESSURE_OPS	16	/* CPU_OP_VEC_LEN_MAX */
#define COPY_LEN	8

static double seconds = 10;
static long page;
/* The CPUs of this process's mask: cpu_opv refuses others (isolcpus=). */
static int cpus[CPU_SETSIZE], nr_cpus;
static atomic_int stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *map_pages(int n)
{
	void *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	return p;
}

/* The racing thread of each case: runs until told to stop. */
static void *flip_protection(void *p)
{
	while (!atomic_load(&stop)) {
		if (mprotect(p, page, PROT_READ) ||
		    mprotect(p, page, PROT_READ | PROT_WRITE))
			ksft_exit_fail_msg("mprotect: %s\n", strerror(errno));
	}
	return NULL;
}

static void *remap(void *p)
{
	while (!atomic_load(&stop)) {
		if (munmap(p, page))
			ksft_exit_fail_msg("munmap: %s\n", strerror(errno));
		/* The window in which P is not mapped at all. */
		sched_yield();
		if (mmap(p, page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
			ksft_exit_fail_msg("mmap MAP_FIXED: %s\n", strerror(errno));
	}
	return NULL;
}

/*
 * Sends [add(Q, 1); add(P, 1)] to CPUs in turn while `racer` changes P's
 * mapping. Returns the number of calls that returned 0; *efaults gets
 * the rest, and any other outcome fails the test at once.
 */
static long race_two_adds(void *(*racer)(void *), intptr_t *q, intptr_t *p,
			  long *efaults, long *calls)
{
	struct cpu_op ops[2] = {
		{ .op = CPU_ADD_OP, .len = sizeof(*q),
		  .u.arithmetic_op.p = CPU_OP_PTR(q),
		  .u.arithmetic_op.count = 1 },
		{ .op = CPU_ADD_OP, .len = sizeof(*p),
		  .u.arithmetic_op.p = CPU_OP_PTR(p),
		  .u.arithmetic_op.count = 1 },
	};
	long ok = 0, n = 0;
	pthread_t thread;
	double t0 = now_s();

	*efaults = 0;
	atomic_store(&stop, 0);
	if (pthread_create(&thread, NULL, racer, p))
		ksft_exit_fail_msg("pthread_create\n");
	while (now_s() - t0 < seconds &&
	       (n < MIN_CALLS || ok < MIN_EACH || *efaults < MIN_EACH)) {
		int cpu = cpus[n % nr_cpus], ret = cpu_opv(ops, 2, cpu, 0);

		n++;
		if (!ret)
			ok++;
		else if (ret < 0 && errno == EFAULT)
			(*efaults)++;
		else
			ksft_exit_fail_msg("call %ld on CPU %d: returned %d (%s)\n",
					   n, cpu, ret, ret < 0 ?
					   cpu_op_errno_name(errno) : "a compare?");
	}
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	*calls = n;
	return ok;
}

static void test_mprotect_race(void)
{
	intptr_t *q = map_pages(1), *p = map_pages(1);
	long ok, efaults, calls;

	*p = 0;
	ok = race_two_adds(flip_protection, q, p, &efaults, &calls);
	ksft_print_msg("mprotect race: %ld calls, %ld ran, %ld EFAULT; P=%ld Q=%ld\n",
		       calls, ok, efaults, (long)*p, (long)*q);
	ksft_test_result(*q == ok && *p == ok && ok >= MIN_EACH && efaults >= MIN_EACH,
			 "mprotect race: a call adds to both operands or to neither\n");
	munmap(q, page);
	munmap(p, page);
}

static void test_munmap_race(void)
{
	intptr_t *q = map_pages(1), *p = map_pages(1);
	long ok, efaults, calls;

	ok = race_two_adds(remap, q, p, &efaults, &calls);
	ksft_print_msg("munmap race: %ld calls, %ld ran, %ld EFAULT; P=%ld Q=%ld\n",
		       calls, ok, efaults, (long)*p, (long)*q);
	ksft_test_result(*q == ok && *p >= 0 && *p <= ok &&
			 ok >= MIN_EACH && efaults >= MIN_EACH,
			 "munmap race: a call adds to both operands or to neither\n");
	munmap(q, page);
	munmap(p, page);
}

/*
 * One pinning process: 15 page-crossing 8-byte copies (4 pages each) and
 * a page-crossing add (2 pages) per call, to random CPUs. Exits 0 when
 * its counter equals its successful calls and every copy arrived.
 */
static int pin_child(unsigned int seed)
{
	struct cpu_op ops[PRESSURE_OPS];
	char *src = map_pages(2 * PRESSURE_OPS), *dst = map_pages(2 * PRESSURE_OPS);
	char *cross = map_pages(2);
	uint64_t counter = 0, *cnt = (uint64_t *)(cross + page - 4);
	long ok = 0;
	double t0 = now_s();
	int i;

	memset(cross, 0, 2 * page);
	for (i = 0; i < PRESSURE_OPS - 1; i++) {
		ops[i] = (struct cpu_op){
			.op = CPU_MEMCPY_OP, .len = COPY_LEN,
			.u.memcpy_op.dst = CPU_OP_PTR(dst + (2 * i + 1) * page - 4),
			.u.memcpy_op.src = CPU_OP_PTR(src + (2 * i + 1) * page - 4),
		};
	}
	ops[i] = (struct cpu_op){
		.op = CPU_ADD_OP, .len = sizeof(*cnt),
		.u.arithmetic_op.p = CPU_OP_PTR(cnt),
		.u.arithmetic_op.count = 1,
	};
	while (now_s() - t0 < seconds) {
		int cpu = cpus[rand_r(&seed) % nr_cpus];

		/* New source bytes every call, so a lost copy shows. */
		for (i = 0; i < PRESSURE_OPS - 1; i++)
			memset(src + (2 * i + 1) * page - 4, (int)(ok + i), COPY_LEN);
		if (cpu_opv(ops, PRESSURE_OPS, cpu, 0)) {
			/* ENOMEM is allowed under pressure: nothing ran. */
			if (errno != ENOMEM) {
				printf("# pinning process: %s\n", cpu_op_errno_name(errno));
				return 1;
			}
			continue;
		}
		ok++;
		for (i = 0; i < PRESSURE_OPS - 1; i++)
			if (memcmp(dst + (2 * i + 1) * page - 4,
				   src + (2 * i + 1) * page - 4, COPY_LEN)) {
				printf("# pinning process: copy %d lost in call %ld\n", i, ok);
				return 1;
			}
	}
	memcpy(&counter, cnt, sizeof(counter));
	if ((long)counter != ok) {
		printf("# pinning process: counter %llu after %ld calls\n",
		       (unsigned long long)counter, ok);
		return 1;
	}
	return ok ? 0 : 1;
}

/* Keeps most of the free memory allocated and touched, in rounds. */
static int hog_child(void)
{
	double t0 = now_s();
	long rounds = 0;

	while (now_s() - t0 < seconds) {
		/* All but 64 MiB of what is free: pressure, not the OOM killer. */
		size_t size = (size_t)sysconf(_SC_AVPHYS_PAGES) * page;
		char *mem;

		size = size > (96UL << 20) ? size - (64UL << 20) : (32UL << 20);
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			continue;
		for (size_t off = 0; off < size; off += page)
			mem[off] = 1;
		munmap(mem, size);
		rounds++;
	}
	printf("# memory hog: %ld rounds\n", rounds);
	return 0;
}

static void test_pinning_pressure(void)
{
	int nr_children = 4 * nr_cpus, i, bad = 0, status;
	pid_t hog, pid;

	fflush(stdout);
	hog = fork();
	if (hog < 0)
		ksft_exit_fail_msg("fork: %s\n", strerror(errno));
	if (!hog)
		_exit(hog_child());
	for (i = 0; i < nr_children; i++) {
		pid = fork();
		if (pid < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pid)
			_exit(pin_child(i + 1));
	}
	while ((pid = wait(&status)) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	ksft_print_msg("pinning pressure: %d processes, 62-page vectors, memory hog: %d failed\n",
		       nr_children, bad);
	ksft_test_result(!bad, "pinning pressure: every process's data exact\n");
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt != 't') {
			fprintf(stderr, "usage: %s [-t SECONDS]\n", argv[0]);
			return KSFT_FAIL;
		}
		seconds = atof(optarg);
	}
	ksft_print_header();
	if (!cpu_op_available())
		ksft_exit_skip("%s\n", cpu_op_unavailable_reason());
	page = sysconf(_SC_PAGESIZE);
	nr_cpus = cpu_op_allowed_cpus(cpus, NULL);
	if (nr_cpus < 0)
		ksft_exit_fail_msg("sched_getaffinity: %s\n", strerror(errno));
	ksft_set_plan(3);
	test_mprotect_race();
	test_munmap_race();
	test_pinning_pressure();
	ksft_finished();
}
