// SPDX-License-Identifier: GPL-2.0+ OR MIT
/*
 * race_cpu_opv_test: each guarantee of cpu_opv(2), raced by another
 * thread the way an adversary would.
 *
 *  - reads are live: a vector reading a never-written page (the shared
 *    zero page, a private page-cache page) while another thread stores to
 *    it never sees a page that the store has already replaced;
 *  - bounded placement: with the target CPU kept busy, a call moves the
 *    caller onto the target at most twice before the target's stopper
 *    runs the vector (the sched_migrate_task tracepoint counts the moves
 *    up to the call's cpu_opv event), and the latency distribution is
 *    printed;
 *  - writable memory classes: a write operand in a shared mapping of a
 *    filesystem with dirty tracking (ramfs here) is EFAULT, changing
 *    nothing; shmem, memfd, SysV shm and private file mappings work;
 *  - 8-byte operands are single accesses: a reader on another CPU never
 *    sees half of a store;
 *  - a SCHED_DEADLINE caller aiming at a CPU of another root domain does
 *    not leak its bandwidth (needs an isolated CPU, else SKIP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest.h"
#include "cpu-op.h"

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE	6
#endif

#define TRIALS		20
#define BUSY_THREADS	4
#define BUSY_CALLS	100
/*
 * cpu_opv pushes the caller onto a busy target at most twice, then has
 * the target's stopper run the vector (CPU_OPV_PUSH_ATTEMPTS). The load
 * balancer and wakeups may move the caller elsewhere in between, as often
 * as the scheduler likes: those moves are counted and printed, not
 * bounded, since cpu_opv does not make them.
 */
#define MAX_PUSHES	2
#define TRACEFS		"/sys/kernel/tracing"
#define TEAR_CALLS	2000

static long page;
static cpu_set_t allowed;
static int cpus[CPU_SETSIZE], nr_cpus;

static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		ksft_exit_fail_msg("sched_setaffinity(%d): %s\n", cpu, strerror(errno));
}

static void unpin_self(void)
{
	if (sched_setaffinity(0, sizeof(allowed), &allowed))
		ksft_exit_fail_msg("sched_setaffinity: %s\n", strerror(errno));
}

static struct cpu_op op_memcpy(void *dst, const void *src, uint32_t len)
{
	return (struct cpu_op){ .op = CPU_MEMCPY_OP, .len = len,
		.u.memcpy_op = { .dst = CPU_OP_PTR(dst), .src = CPU_OP_PTR(src) } };
}

static struct cpu_op op_add(void *p, int64_t count)
{
	return (struct cpu_op){ .op = CPU_ADD_OP, .len = 8,
		.u.arithmetic_op = { .p = CPU_OP_PTR(p), .count = count } };
}

/* ---- reads are live -------------------------------------------------- */

struct storer {
	int cpu;
	unsigned int delay;
	uint64_t *addr;
	atomic_int go;
};

static void *storer_fn(void *arg)
{
	struct storer *s = arg;
	unsigned int i;

	pin_self(s->cpu);
	while (!atomic_load(&s->go))
		;
	for (i = 0; i < s->delay; i++)
		__asm__ __volatile__("" ::: "memory");
	__atomic_store_n(s->addr, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *map_fresh(const char *kind)
{
	void *p;
	int fd;

	if (!strcmp(kind, "anonymous"))
		return mmap(NULL, page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = memfd_create("cpu-opv-race", 0);
	if (fd < 0 || ftruncate(fd, page))
		return MAP_FAILED;
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p != MAP_FAILED)
		(void)__atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);	/* map it */
	return p;
}

/*
 * Vector [out = *L; *L += 1] on another CPU while a thread on that CPU
 * stores *L = 1 once, L never written before. The vector is atomic with
 * respect to its target CPU only, so the storer is there: either the
 * store comes first (out 1, L 2) or the vector does (out 0, L 1, then the
 * store: L 1). out 0 with L 2 means the vector read a page the store had
 * replaced (v1 pinned the zero page before migrating). A storer on a
 * third CPU could legitimately store between the two operations.
 */
static void test_live_reads(const char *kind)
{
	int stale = 0, before = 0, after = 0, other = 0, t;
	uint64_t *out = mmap(NULL, page, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (nr_cpus < 2) {
		ksft_test_result_skip("live reads, %s: needs 2 CPUs\n", kind);
		return;
	}
	for (t = 0; t < TRIALS; t++) {
		struct storer s = { .cpu = cpus[1], .delay = (t * 997) % 4000 };
		struct cpu_op ops[2];
		uint64_t *l = map_fresh(kind);
		pthread_t th;
		int ret;

		if (l == MAP_FAILED)
			ksft_exit_fail_msg("map %s: %s\n", kind, strerror(errno));
		*out = 0;
		s.addr = l;
		ops[0] = op_memcpy(out, l, 8);
		ops[1] = op_add(l, 1);
		pin_self(cpus[0]);
		unpin_self();
		pthread_create(&th, NULL, storer_fn, &s);
		atomic_store(&s.go, 1);
		ret = cpu_opv(ops, 2, cpus[1], 0);
		pthread_join(th, NULL);
		if (ret)
			ksft_exit_fail_msg("cpu_opv: %d (%s)\n", ret,
					   cpu_op_errno_name(errno));
		if (*out == 0 && *l == 2)
			stale++;
		else if (*out == 1 && *l == 2)
			before++;
		else if (*out == 0 && *l == 1)
			after++;
		else
			other++;
		munmap(l, page);
	}
	munmap(out, page);
	ksft_print_msg("%s: store first %d, vector first %d, stale read %d, other %d\n",
		       kind, before, after, stale, other);
	ksft_test_result(!stale && !other,
			 "live reads of a never-written %s page under a racing store\n",
			 kind);
}

/* ---- bounded placement ----------------------------------------------- */

static atomic_int busy_stop;

static void *busy_fn(void *arg)
{
	pin_self(*(int *)arg);
	while (!atomic_load(&busy_stop))
		;
	return NULL;
}

static bool trace_write(const char *file, const char *val)
{
	char path[128];
	int fd;
	bool ok;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return false;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

/*
 * Count the sched_migrate_task events recorded since the trace was
 * cleared, up to the cpu_opv event that ends the call: all of them in
 * *moves, those onto @target in *onto. False if the trace is unreadable.
 */
static bool trace_migrations(int target, int *moves, int *onto)
{
	FILE *f = fopen(TRACEFS "/trace", "r");
	char line[512];
	const char *dest;

	*moves = *onto = 0;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "cpu_opv: cpu="))
			break;
		if (!strstr(line, "sched_migrate_task:"))
			continue;
		(*moves)++;
		dest = strstr(line, "dest_cpu=");
		if (dest && atoi(dest + strlen("dest_cpu=")) == target)
			(*onto)++;
	}
	fclose(f);
	return true;
}

/*
 * Trace the migrations and the cpu_opv calls of this thread only; false
 * if tracefs or one of the two events is missing.
 */
static bool trace_migrations_of_self(bool on)
{
	static const char *const events[] = {
		"events/sched/sched_migrate_task",
		"events/cpu_opv/cpu_opv",
	};
	static const char *const fields[] = { "pid", "common_pid" };
	char path[96], filter[32];
	bool ok = true;
	int i;

	if (on && access(TRACEFS "/trace", W_OK))
		mount("nodev", TRACEFS, "tracefs", 0, NULL);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/enable", events[i]);
		if (!on) {
			trace_write(path, "0");
			snprintf(path, sizeof(path), "%s/filter", events[i]);
			trace_write(path, "0");
			continue;
		}
		snprintf(filter, sizeof(filter), "%s == %d", fields[i], gettid());
		snprintf(path, sizeof(path), "%s/filter", events[i]);
		ok &= trace_write(path, filter);
		snprintf(path, sizeof(path), "%s/enable", events[i]);
		ok &= trace_write(path, "1");
	}
	return ok;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static void test_busy_target(void)
{
	int target = cpus[nr_cpus - 1], i, max_moves = 0, max_onto = 0;
	long lat[BUSY_CALLS];
	pthread_t busy[BUSY_THREADS];
	uint64_t x = 0;
	bool ok = true;

	if (nr_cpus < 2) {
		ksft_test_result_skip("busy target: needs 2 CPUs\n");
		return;
	}
	if (!trace_migrations_of_self(true)) {
		trace_migrations_of_self(false);
		ksft_test_result_skip("busy target: no tracefs or events (%s)\n",
				      strerror(errno));
		return;
	}
	atomic_store(&busy_stop, 0);
	for (i = 0; i < BUSY_THREADS; i++)
		pthread_create(&busy[i], NULL, busy_fn, &target);
	usleep(100000);
	for (i = 0; i < BUSY_CALLS; i++) {
		struct cpu_op op = op_add(&x, 1);
		int moves, onto;
		long t0;

		pin_self(cpus[i % (nr_cpus - 1)]);
		unpin_self();
		trace_write("trace", "");
		t0 = now_us();
		if (cpu_opv(&op, 1, target, 0)) {
			ksft_print_msg("cpu_opv: %s\n", cpu_op_errno_name(errno));
			ok = false;
		}
		lat[i] = now_us() - t0;
		if (!trace_migrations(target, &moves, &onto)) {
			ksft_print_msg("cannot read %s/trace\n", TRACEFS);
			ok = false;
		}
		if (moves > max_moves)
			max_moves = moves;
		if (onto > max_onto)
			max_onto = onto;
	}
	trace_migrations_of_self(false);
	atomic_store(&busy_stop, 1);
	for (i = 0; i < BUSY_THREADS; i++)
		pthread_join(busy[i], NULL);
	qsort(lat, BUSY_CALLS, sizeof(lat[0]), cmp_long);
	ksft_print_msg("CPU %d, %d spinners: p50 %ld, p90 %ld, max %ld us\n",
		       target, BUSY_THREADS, lat[BUSY_CALLS / 2],
		       lat[BUSY_CALLS * 9 / 10], lat[BUSY_CALLS - 1]);
	ksft_print_msg("per call at most: %d moves onto CPU %d, %d migrations\n",
		       max_onto, target, max_moves);
	ok &= x == BUSY_CALLS && max_onto <= MAX_PUSHES;
	ksft_test_result(ok, "busy target: all calls done, <= %d moves onto it each\n",
			 MAX_PUSHES);
}

/* ---- writable memory classes ------------------------------------------ */

/* Vector [add(a, 1); add(p, 1)]: returns cpu_opv's result, errno in *err. */
static int add_pair(uint64_t *a, void *p, int *err)
{
	struct cpu_op ops[2] = { op_add(a, 1), op_add(p, 1) };
	int ret;

	errno = 0;
	ret = cpu_opv(ops, 2, cpus[0], 0);
	*err = errno;
	return ret;
}

static bool expect_class(const char *what, void *p, bool writable)
{
	uint64_t a = 0, before = __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
	int err, ret = add_pair(&a, p, &err);
	uint64_t after = __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);

	if (writable && ret == 0 && a == 1 && after == before + 1)
		return true;
	if (!writable && ret == -1 && err == EFAULT && a == 0 && after == before)
		return true;
	ksft_print_msg("%s: returned %d (%s), a %llu, operand %llu -> %llu; expected %s\n",
		       what, ret, cpu_op_errno_name(err), (unsigned long long)a,
		       (unsigned long long)before, (unsigned long long)after,
		       writable ? "0, both added" : "-1 EFAULT, nothing changed");
	return false;
}

static void *map_file(int fd, int flags)
{
	void *p;

	if (ftruncate(fd, page))
		return MAP_FAILED;
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, flags, fd, 0);
	close(fd);
	return p;
}

static void test_write_classes(void)
{
	char dir[] = "/tmp/cpu-opv-ramfs.XXXXXX", path[64];
	void *shared, *priv, *memfd, *shm, *anon_shared;
	bool ok = true;
	int id, shm_err;

	memfd = map_file(memfd_create("cpu-opv-shared", 0), MAP_SHARED);
	anon_shared = mmap(NULL, page, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	shm = MAP_FAILED;
	id = shmget(IPC_PRIVATE, page, IPC_CREAT | 0600);
	shm_err = errno;
	if (id >= 0) {
		shm = shmat(id, NULL, 0);
		shm_err = errno;
		shmctl(id, IPC_RMID, NULL);
	}
	if (memfd == MAP_FAILED || anon_shared == MAP_FAILED)
		ksft_exit_fail_msg("shmem mappings: %s\n", strerror(errno));
	ok &= expect_class("memfd, shared", memfd, true);
	ok &= expect_class("anonymous, shared", anon_shared, true);
	if (shm != MAP_FAILED)
		ok &= expect_class("SysV shm", shm, true);
	else
		ksft_print_msg("SysV shm not available (%s): not checked\n",
			       strerror(shm_err));

	if (!mkdtemp(dir) || mount("none", dir, "ramfs", 0, NULL)) {
		ksft_test_result_skip("write classes: cannot mount ramfs (%s)\n",
				      strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/f", dir);
	shared = map_file(open(path, O_RDWR | O_CREAT, 0600), MAP_SHARED);
	priv = map_file(open(path, O_RDWR), MAP_PRIVATE);
	if (shared == MAP_FAILED || priv == MAP_FAILED)
		ksft_exit_fail_msg("ramfs mappings: %s\n", strerror(errno));
	ok &= expect_class("ramfs file, shared", shared, false);
	ok &= expect_class("ramfs file, private", priv, true);
	munmap(shared, page);
	munmap(priv, page);
	umount(dir);
	rmdir(dir);
	ksft_test_result(ok, "writes: shmem and private yes; shared files EFAULT, no change\n");
}

/* ---- 8-byte single accesses -------------------------------------------- */

struct tear {
	uint64_t *x;
	atomic_int stop;
	long torn, reads;
	int cpu;
};

static void *tear_reader(void *arg)
{
	struct tear *t = arg;

	pin_self(t->cpu);
	while (!atomic_load(&t->stop)) {
		/* A single access of the reader's own: it must not tear either. */
		uint64_t v = __atomic_load_n(t->x, __ATOMIC_RELAXED);

		t->torn += v != 0 && v != ~0ULL;
		t->reads++;
	}
	return NULL;
}

static void test_no_tearing(void)
{
	static uint64_t xs[2];
	static const uint64_t values[2] = { 0, ~0ULL };
	/* 8-byte aligned, which i386 does not give a uint64_t by itself. */
	uint64_t *x = (uint64_t *)(((uintptr_t)xs + 7) & ~(uintptr_t)7);
	struct tear t = { .x = x };
	pthread_t th;
	int i;

	if (nr_cpus < 2) {
		ksft_test_result_skip("8-byte stores: needs 2 CPUs\n");
		return;
	}
	t.cpu = cpus[1];
	pin_self(cpus[0]);
	pthread_create(&th, NULL, tear_reader, &t);
	for (i = 0; i < TEAR_CALLS; i++) {
		struct cpu_op op = op_memcpy(x, &values[i & 1], 8);

		if (cpu_opv(&op, 1, cpus[0], 0))
			ksft_exit_fail_msg("cpu_opv: %s\n", cpu_op_errno_name(errno));
	}
	atomic_store(&t.stop, 1);
	pthread_join(th, NULL);
	unpin_self();
	ksft_print_msg("%ld reads of a u64 during %d 8-byte stores (%zu-bit process): %ld torn\n",
		       t.reads, TEAR_CALLS, sizeof(long) * 8, t.torn);
	ksft_test_result(!t.torn, "8-byte stores are single accesses\n");
}

/* ---- SCHED_DEADLINE bandwidth --------------------------------------------- */

struct dl_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

static int set_deadline(bool on)
{
	struct dl_attr a = { .size = sizeof(a) };

	if (on) {
		a.policy = SCHED_DEADLINE;
		a.runtime = 5 * 1000 * 1000;		/* half the CPU */
		a.deadline = 10 * 1000 * 1000;
		a.period = a.deadline;
	}
	return syscall(SYS_sched_setattr, 0, &a, 0);
}

/*
 * isolcpus= leaves the isolated CPUs out of every task's default mask, but
 * a task may still ask for them, and the deadline case is about a caller
 * whose mask spans them. Best effort: a cpuset may refuse.
 */
static void widen_affinity(void)
{
	int cpu, n = get_nprocs_conf();
	cpu_set_t all;

	CPU_ZERO(&all);
	for (cpu = 0; cpu < n && cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, &all);
	sched_setaffinity(0, sizeof(all), &all);
}

static int isolated_cpu(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/isolated", "r");
	int cpu = -1;

	if (f) {
		if (fscanf(f, "%d", &cpu) != 1)
			cpu = -1;
		fclose(f);
	}
	return cpu;
}

/*
 * Six rounds of: enter SCHED_DEADLINE (half a CPU of bandwidth, admitted
 * in the root domain of the first CPU), cpu_opv() for an isolated CPU
 * (another root domain), leave SCHED_DEADLINE, wait past the 0-lag time
 * (when the bandwidth is given back, to the root domain of the task's CPU
 * then), go back to the first CPU. A call that moved the deadline task to
 * the isolated CPU left its bandwidth accounted in the first root domain
 * and gave it back in the other: the leak adds up until an admission
 * fails with EBUSY.
 */
static void test_deadline_bandwidth(void)
{
	int iso = isolated_cpu(), i, refused = 0, first_err = 0;
	uint64_t x = 0;

	if (iso < 0 || !CPU_ISSET(iso, &allowed) || iso == cpus[0]) {
		ksft_test_result_skip("deadline bandwidth: needs an isolated CPU (isolcpus=)\n");
		return;
	}
	for (i = 0; i < 6; i++) {
		struct cpu_op op = op_add(&x, 1);

		pin_self(cpus[0]);	/* into the first root domain */
		unpin_self();
		if (set_deadline(true)) {
			if (!refused++)
				first_err = errno;
			continue;
		}
		if (cpu_opv(&op, 1, iso, 0))
			ksft_print_msg("cpu_opv: %s\n", cpu_op_errno_name(errno));
		set_deadline(false);
		/* The bandwidth is freed at the 0-lag time, where the task is. */
		usleep(50000);
	}
	if (refused)
		ksft_print_msg("%d of 6 deadline admissions refused (first: %s)\n",
			       refused, strerror(first_err));
	if (refused == 6 && first_err == EPERM) {
		ksft_test_result_skip("deadline bandwidth: no SCHED_DEADLINE admission (%s)\n",
				      strerror(first_err));
		return;
	}
	ksft_test_result(!refused && x == 6,
			 "deadline caller, CPU of another root domain: no bandwidth leak\n");
}

int main(void)
{
	ksft_print_header();
	if (!cpu_op_available())
		ksft_exit_skip("%s\n", cpu_op_unavailable_reason());
	page = sysconf(_SC_PAGESIZE);
	widen_affinity();
	nr_cpus = cpu_op_allowed_cpus(cpus, &allowed);
	if (nr_cpus < 0)
		ksft_exit_fail_msg("sched_getaffinity: %s\n", strerror(errno));

	ksft_set_plan(6);
	test_live_reads("anonymous");
	test_live_reads("memfd, private");
	test_busy_target();
	test_write_classes();
	test_no_tearing();
	test_deadline_bandwidth();
	ksft_finished();
}
