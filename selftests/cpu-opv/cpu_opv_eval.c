// SPDX-License-Identifier: GPL-2.0+ OR MIT
/*
 * cpu_opv_eval: cpu_opv(2) against the alternatives proposed for it, on
 * the same per-CPU operations, side by side.
 *
 *   cpu_opv_eval cost [-r RUNS] [-s SCALE]
 *   cpu_opv_eval progress [-t SECONDS] [-f SIGNAL_HZ] [-H]
 *   cpu_opv_eval ctxsw [-r RUNS] [-s SCALE]
 *   cpu_opv_eval maxvec [-n CALLS]
 *
 * Each mode prints one JSON object on stdout. The schemes ("contenders"):
 *
 *   rseq          the rseq fast path alone, retried until it commits
 *   cpu_opv       rseq, and cpu_opv(2) when it aborts (this series)
 *   lock          rseq whose critical section also checks a per-CPU
 *                 "slow path required" flag; the slow path takes a per-CPU
 *                 user-space lock, sets the flag, and pushes every thread
 *                 of that CPU out of its critical section with
 *                 membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
 *                 MEMBARRIER_CMD_FLAG_CPU) before touching the data
 *   dual          counters only: a local part updated with rseq and a
 *                 remote part updated with atomics; a reader sums both
 *   atomic_pcpu   atomic read-modify-write on the per-CPU data
 *   atomic_shared atomic read-modify-write on one shared copy
 *   setaffinity   sched_setaffinity() to the CPU, the rseq operation there,
 *                 and the old mask back
 *
 * The proposal to have the kernel abort a critical section only when
 * "cpu != expected || *aptr != aval" needs a kernel change that 6.12 does
 * not have; docs/evaluation.md argues it on paper from these numbers.
 *
 * cost: each scheme's time per operation (counter increment, spinlock
 *       acquire and release, list push and pop, an increment of another
 *       CPU's counter), on the fast path and with the slow path forced,
 *       as ratios to getppid() in the same run (medians of RUNS runs);
 * progress: increments per second under ptrace single-step, under a
 *       preemption storm (a competing thread on the same CPU, and
 *       signals from another CPU at up to SIGNAL_HZ) and, with -H only
 *       (it takes a CPU of the machine offline: for a test VM), while
 *       another CPU goes offline and online again; with a check that no
 *       increment was lost;
 * ctxsw: two threads on one CPU ping-ponging a byte through pipes, the
 *       time per round trip (two context switches) and its ratio to
 *       getppid(), for comparing kernels with and without CONFIG_CPU_OPV;
 * maxvec: the time cpu_opv spends with preemption disabled running a
 *       vector at the 4216-byte limit, from the series' cpu_opv:cpu_opv
 *       tracepoint (needs tracefs at /sys/kernel/tracing).
 *
 * Built with the selftests (TEST_GEN_PROGS_EXTENDED) but not run by them:
 * `make evaluate` runs it in the guest.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/compiler.h>

#include "../kselftest.h"
#include "bench.h"
#include "cpu-op.h"

/*
 * The rseq critical sections are assembly, one header per architecture in
 * ../rseq. Where there is none (or with -DEVAL_NO_RSEQ), every critical
 * section aborts and the rseq-based schemes report themselves unavailable.
 */
#if !defined(EVAL_NO_RSEQ) && (defined(__x86_64__) || defined(__i386__) || \
	defined(__ARMEL__) || defined(__AARCH64EL__) || defined(__PPC__))
#include "rseq.h"
#define EVAL_HAVE_RSEQ	1

static inline int ev_register(void)
{
	return rseq_register_current_thread();
}

static inline int ev_cpu(void)
{
	return rseq_cpu_start();
}

static inline int ev_addv(intptr_t *v, intptr_t count, int cpu)
{
	return rseq_addv(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID, v, count, cpu);
}

static inline int ev_cmpeqv_storev(intptr_t *v, intptr_t expect,
				   intptr_t newv, int cpu)
{
	return rseq_cmpeqv_storev(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID, v,
				  expect, newv, cpu);
}

/*
 * i386 has too few registers for this sequence's operands once it is
 * inlined into a loop ("impossible constraints"): keep it a call there.
 */
#ifdef __i386__
#define EV_INLINE	noinline
#else
#define EV_INLINE	inline
#endif

static EV_INLINE int ev_cmpeqv_cmpeqv_storev(intptr_t *v, intptr_t expect,
					     intptr_t *v2, intptr_t expect2,
					     intptr_t newv, int cpu)
{
	return rseq_cmpeqv_cmpeqv_storev(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID,
					 v, expect, v2, expect2, newv, cpu);
}

static inline int ev_cmpnev_storeoffp_load(intptr_t *v, intptr_t expectnot,
					   long voffp, intptr_t *load, int cpu)
{
	return rseq_cmpnev_storeoffp_load(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID,
					  v, expectnot, voffp, load, cpu);
}
#else
#define EVAL_HAVE_RSEQ	0

static inline int ev_register(void)
{
	errno = EOPNOTSUPP;
	return -1;
}

static inline int ev_cpu(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : cpu;
}

static inline int ev_addv(intptr_t *v, intptr_t count, int cpu)
{
	return -1;
}

static inline int ev_cmpeqv_storev(intptr_t *v, intptr_t expect,
				   intptr_t newv, int cpu)
{
	return -1;
}

static inline int ev_cmpeqv_cmpeqv_storev(intptr_t *v, intptr_t expect,
					  intptr_t *v2, intptr_t expect2,
					  intptr_t newv, int cpu)
{
	return -1;
}

static inline int ev_cmpnev_storeoffp_load(intptr_t *v, intptr_t expectnot,
					   long voffp, intptr_t *load, int cpu)
{
	return -1;
}
#endif

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define INC(x)		__atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

/* Critical sections that abort this often in a row take the slow path. */
#define ABORTS_BEFORE_SLOW	3

struct node {
	intptr_t next;
};

/* One CPU's data, for every scheme, in a cache line pair of its own. */
struct pcpu {
	alignas(128) intptr_t count;	/* the counter */
	intptr_t remote;		/* dual: the part others add to */
	intptr_t lock;			/* a spinlock word */
	intptr_t head;			/* a list head (struct node *) */
	intptr_t slow;			/* lock: the slow path is required */
	intptr_t slow_lock;		/* lock: the slow path's own lock */
	struct node node;		/* pushed and popped by the list cases */
};

static struct pcpu pc[CPU_SETSIZE];
static struct pcpu shared;		/* atomic_shared's one copy */

/* What the progress runs count, per scheme and condition. */
struct tally {
	long ops, refused, slow, aborts;
};

/* In MAP_SHARED memory: the single-stepped child reports through it. */
static struct tally *stats;

static cpu_set_t all_cpus, home_mask;
static int home, other, nr_cpus;
static const char *rseq_skip, *cpu_opv_skip, *membarrier_skip;

static void die(const char *what)
{
	fprintf(stderr, "cpu_opv_eval: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

static void pin_mask(const cpu_set_t *set)
{
	if (sched_setaffinity(0, sizeof(*set), set))
		die("sched_setaffinity");
}

/* The setaffinity scheme's first step; fails on an offline CPU. */
static int try_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int membarrier(int cmd, unsigned int flags, int cpu)
{
	return syscall(__NR_membarrier, cmd, flags, cpu);
}

/* cpu_opv, retried while the kernel asks for it (a moving target). */
static void opv_check(int ret, const char *what)
{
	if (ret < 0 && errno != EAGAIN && errno != EBUSY)
		die(what);
}

/* --- the lock scheme's slow path ------------------------------------- */

/*
 * Take @cpu's slow-path lock and make its data ours: once the flag is set
 * and membarrier() has returned, every critical section on that CPU has
 * either committed or will abort, and each new one fails its flag check.
 */
static void slow_enter(int cpu)
{
	struct pcpu *p = &pc[cpu];

	while (__atomic_exchange_n(&p->slow_lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	STORE(p->slow, 1);
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
		       MEMBARRIER_CMD_FLAG_CPU, cpu))
		die("membarrier(PRIVATE_EXPEDITED_RSEQ, FLAG_CPU)");
}

static void slow_exit(int cpu)
{
	struct pcpu *p = &pc[cpu];

	__atomic_store_n(&p->slow, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&p->slow_lock, 0, __ATOMIC_RELEASE);
}

/* --- counter increment, one function per scheme --------------------------
 * @target < 0: this CPU's counter; else that CPU's. Returns 0, or -1 when
 * the scheme cannot do it (nothing changed then).
 */

static int inc_rseq(int target)
{
	if (target >= 0)
		return -1;	/* rseq reaches only the CPU it runs on */
	for (;;) {
		int cpu = ev_cpu();

		if (!ev_addv(&pc[cpu].count, 1, cpu))
			return 0;
		INC(stats->aborts);
	}
}

/*
 * The slow paths are out of line (noinline), as a library would write
 * them, so that the fast path compiles as tightly as rseq's alone.
 */
static noinline int inc_cpu_opv_slow(int target)
{
	INC(stats->slow);
	for (;;) {
		int cpu = target < 0 ? ev_cpu() : target;
		int ret = cpu_op_addv(&pc[cpu].count, 1, cpu);

		if (!ret)
			return 0;
		opv_check(ret, "cpu_opv");
	}
}

static int inc_cpu_opv(int target)
{
	int fails = 0;

	while (target < 0 && fails < ABORTS_BEFORE_SLOW) {
		int cpu = ev_cpu();

		if (!ev_addv(&pc[cpu].count, 1, cpu))
			return 0;
		INC(stats->aborts);
		fails++;
	}
	return inc_cpu_opv_slow(target);
}

static noinline int inc_lock_slow(int target)
{
	int cpu = target < 0 ? ev_cpu() : target;

	INC(stats->slow);
	slow_enter(cpu);
	STORE(pc[cpu].count, LOAD(pc[cpu].count) + 1);
	slow_exit(cpu);
	return 0;
}

static int inc_lock(int target)
{
	int fails = 0;

	while (target < 0 && fails < ABORTS_BEFORE_SLOW) {
		int cpu = ev_cpu();
		intptr_t old = LOAD(pc[cpu].count);

		if (!ev_cmpeqv_cmpeqv_storev(&pc[cpu].count, old,
					     &pc[cpu].slow, 0, old + 1, cpu))
			return 0;
		INC(stats->aborts);
		fails++;
	}
	return inc_lock_slow(target);
}

static noinline int inc_dual_slow(int target)
{
	INC(stats->slow);
	INC(pc[target < 0 ? ev_cpu() : target].remote);
	return 0;
}

static int inc_dual(int target)
{
	int fails = 0;

	while (target < 0 && fails < ABORTS_BEFORE_SLOW) {
		int cpu = ev_cpu();

		if (!ev_addv(&pc[cpu].count, 1, cpu))
			return 0;
		INC(stats->aborts);
		fails++;
	}
	return inc_dual_slow(target);
}

static int inc_atomic_pcpu(int target)
{
	INC(pc[target < 0 ? ev_cpu() : target].count);
	return 0;
}

static int inc_atomic_shared(int target)
{
	INC(shared.count);
	return 0;
}

static int inc_setaffinity(int target)
{
	int cpu = target < 0 ? ev_cpu() : target;

	for (;;) {
		if (try_pin(cpu)) {
			pin_mask(&home_mask);
			return -1;	/* an offline CPU: nowhere to run */
		}
		/* Pinned, unless the CPU went offline meanwhile. */
		while (ev_cpu() == cpu) {
			if (!ev_addv(&pc[cpu].count, 1, cpu)) {
				pin_mask(&home_mask);
				return 0;
			}
			INC(stats->aborts);
		}
	}
}

struct scheme {
	const char *name;
	int (*inc)(int target);
	bool rseq, cpu_opv, membarrier;		/* what it needs */
};

static const struct scheme schemes[] = {
	{ "rseq", inc_rseq, true, false, false },
	{ "cpu_opv", inc_cpu_opv, true, true, false },
	{ "lock", inc_lock, true, false, true },
	{ "dual", inc_dual, true, false, false },
	{ "atomic_pcpu", inc_atomic_pcpu, false, false, false },
	{ "atomic_shared", inc_atomic_shared, false, false, false },
	{ "setaffinity", inc_setaffinity, true, false, false },
};

static const char *scheme_skip(const struct scheme *s)
{
	if (s->rseq && rseq_skip)
		return rseq_skip;
	if (s->cpu_opv && cpu_opv_skip)
		return cpu_opv_skip;
	if (s->membarrier && membarrier_skip)
		return membarrier_skip;
	return NULL;
}

/* --- cost: one function per case --------------------------------------- */

static void c_getppid(long n)
{
	while (n--)
		syscall(SYS_getppid);
}

/* Counter increment. */
static void c_counter_rseq(long n)
{
	while (n--)
		inc_rseq(-1);
}

static void c_counter_cpu_opv_fast(long n)
{
	while (n--)
		inc_cpu_opv(-1);
}

static void c_counter_cpu_opv_slow(long n)
{
	while (n--) {
		int cpu = ev_cpu();

		opv_check(cpu_op_addv(&pc[cpu].count, 1, cpu), "cpu_opv");
	}
}

static void c_counter_lock_fast(long n)
{
	while (n--)
		inc_lock(-1);
}

static void counter_lock_slow(int cpu)
{
	slow_enter(cpu);
	STORE(pc[cpu].count, LOAD(pc[cpu].count) + 1);
	slow_exit(cpu);
}

static void c_counter_lock_slow(long n)
{
	while (n--)
		counter_lock_slow(ev_cpu());
}

static void c_counter_dual_fast(long n)
{
	while (n--)
		inc_dual(-1);
}

static void c_counter_dual_slow(long n)
{
	while (n--)
		INC(pc[ev_cpu()].remote);
}

static void c_counter_atomic_pcpu(long n)
{
	while (n--)
		inc_atomic_pcpu(-1);
}

static void c_counter_atomic_shared(long n)
{
	while (n--)
		inc_atomic_shared(-1);
}

static void c_counter_setaffinity(long n)
{
	while (n--)
		inc_setaffinity(-1);
}

/* Another CPU's counter. */
/* cpu_opv runs only where the caller may run: let it run there too. */
static void allow_other(bool allow)
{
	cpu_set_t set = home_mask;

	if (allow)
		CPU_SET(other, &set);
	pin_mask(&set);
}

static void c_remote_cpu_opv(long n)
{
	allow_other(true);
	while (n--)
		opv_check(cpu_op_addv(&pc[other].count, 1, other), "cpu_opv");
	allow_other(false);
}

static void c_remote_lock(long n)
{
	while (n--)
		counter_lock_slow(other);
}

static void c_remote_dual(long n)
{
	while (n--)
		INC(pc[other].remote);
}

static void c_remote_atomic_pcpu(long n)
{
	while (n--)
		INC(pc[other].count);
}

static void c_remote_setaffinity(long n)
{
	while (n--)
		if (inc_setaffinity(other))
			die("sched_setaffinity (other CPU)");
}

/* Spinlock acquire and release. */
static void spin_release(intptr_t *lock)
{
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

static intptr_t *spin_rseq(void)
{
	for (;;) {
		int cpu = ev_cpu();

		if (!ev_cmpeqv_storev(&pc[cpu].lock, 0, 1, cpu))
			return &pc[cpu].lock;
	}
}

static void c_lock_rseq(long n)
{
	while (n--)
		spin_release(spin_rseq());
}

static noinline intptr_t *spin_cpu_opv_slow(void)
{
	for (;;) {
		int cpu = ev_cpu();
		int ret = cpu_op_cmpeqv_storev(&pc[cpu].lock, 0, 1, cpu);

		opv_check(ret, "cpu_opv");
		if (!ret)
			return &pc[cpu].lock;
	}
}

static intptr_t *spin_cpu_opv(void)
{
	int fails = 0;

	while (fails < ABORTS_BEFORE_SLOW) {
		int cpu = ev_cpu();
		int ret = ev_cmpeqv_storev(&pc[cpu].lock, 0, 1, cpu);

		if (!ret)
			return &pc[cpu].lock;
		fails += ret < 0;	/* 1: the lock is taken, spin */
	}
	return spin_cpu_opv_slow();
}

static void c_lock_cpu_opv_fast(long n)
{
	while (n--)
		spin_release(spin_cpu_opv());
}

static void c_lock_cpu_opv_slow(long n)
{
	while (n--)
		spin_release(spin_cpu_opv_slow());
}

static noinline intptr_t *spin_lock_scheme_slow(void)
{
	for (;;) {
		int cpu = ev_cpu();
		bool taken;

		slow_enter(cpu);
		taken = LOAD(pc[cpu].lock) != 0;
		if (!taken)
			STORE(pc[cpu].lock, 1);
		slow_exit(cpu);
		if (!taken)
			return &pc[cpu].lock;
	}
}

static intptr_t *spin_lock_scheme(void)
{
	int fails = 0;

	while (fails < ABORTS_BEFORE_SLOW) {
		int cpu = ev_cpu();

		if (!ev_cmpeqv_cmpeqv_storev(&pc[cpu].lock, 0, &pc[cpu].slow, 0,
					     1, cpu))
			return &pc[cpu].lock;
		fails++;
	}
	return spin_lock_scheme_slow();
}

static void c_lock_lock_fast(long n)
{
	while (n--)
		spin_release(spin_lock_scheme());
}

static void c_lock_lock_slow(long n)
{
	while (n--)
		spin_release(spin_lock_scheme_slow());
}

static intptr_t *spin_atomic(intptr_t *lock)
{
	intptr_t zero = 0;

	while (!__atomic_compare_exchange_n(lock, &zero, 1, false,
					    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		zero = 0;
	return lock;
}

static void c_lock_atomic_pcpu(long n)
{
	while (n--)
		spin_release(spin_atomic(&pc[ev_cpu()].lock));
}

static void c_lock_atomic_shared(long n)
{
	while (n--)
		spin_release(spin_atomic(&shared.lock));
}

static void c_lock_setaffinity(long n)
{
	while (n--) {
		intptr_t *lock;

		if (try_pin(ev_cpu()))
			die("sched_setaffinity");
		lock = spin_rseq();
		pin_mask(&home_mask);
		spin_release(lock);
	}
}

/*
 * List push and pop of the CPU's one node. The lock and atomic schemes
 * pop with a compare-and-swap of the head, which is only safe against
 * ABA here because a single thread runs the case.
 */
#define NEXT_OFF	((long)offsetof(struct node, next))

static void list_rseq(void)
{
	intptr_t load;
	int cpu;

	for (;;) {
		cpu = ev_cpu();
		pc[cpu].node.next = LOAD(pc[cpu].head);
		if (!ev_cmpeqv_storev(&pc[cpu].head, pc[cpu].node.next,
				      (intptr_t)&pc[cpu].node, cpu))
			break;
	}
	for (;;) {
		cpu = ev_cpu();
		if (!ev_cmpnev_storeoffp_load(&pc[cpu].head, 0, NEXT_OFF,
					      &load, cpu))
			break;
	}
}

static void c_list_rseq(long n)
{
	while (n--)
		list_rseq();
}

static noinline void push_cpu_opv_slow(void)
{
	int cpu, ret;

	do {
		cpu = ev_cpu();
		pc[cpu].node.next = LOAD(pc[cpu].head);
		ret = cpu_op_cmpeqv_storev(&pc[cpu].head, pc[cpu].node.next,
					   (intptr_t)&pc[cpu].node, cpu);
		opv_check(ret, "cpu_opv push");
	} while (ret);
}

static noinline void pop_cpu_opv_slow(void)
{
	intptr_t load;
	int cpu, ret;

	do {
		cpu = ev_cpu();
		ret = cpu_op_cmpnev_storeoffp_load(&pc[cpu].head, 0, NEXT_OFF,
						   &load, cpu);
		opv_check(ret, "cpu_opv pop");
	} while (ret);
}

/* rseq first, as list_rseq(); cpu_opv for an operation that aborts. */
static void list_cpu_opv_fast(void)
{
	intptr_t load;
	int cpu, ret, fails = 0;

	do {
		if (fails == ABORTS_BEFORE_SLOW) {
			push_cpu_opv_slow();
			break;
		}
		cpu = ev_cpu();
		pc[cpu].node.next = LOAD(pc[cpu].head);
		ret = ev_cmpeqv_storev(&pc[cpu].head, pc[cpu].node.next,
				       (intptr_t)&pc[cpu].node, cpu);
		fails += ret < 0;
	} while (ret);
	fails = 0;
	do {
		if (fails == ABORTS_BEFORE_SLOW) {
			pop_cpu_opv_slow();
			break;
		}
		cpu = ev_cpu();
		ret = ev_cmpnev_storeoffp_load(&pc[cpu].head, 0, NEXT_OFF,
					       &load, cpu);
		fails += ret < 0;
	} while (ret);
}

static void c_list_cpu_opv_fast(long n)
{
	while (n--)
		list_cpu_opv_fast();
}

static void c_list_cpu_opv_slow(long n)
{
	while (n--) {
		push_cpu_opv_slow();
		pop_cpu_opv_slow();
	}
}

static void list_lock_fast(void)
{
	intptr_t h;
	int cpu;

	for (;;) {
		cpu = ev_cpu();
		h = LOAD(pc[cpu].head);
		pc[cpu].node.next = h;
		if (!ev_cmpeqv_cmpeqv_storev(&pc[cpu].head, h, &pc[cpu].slow,
					     0, (intptr_t)&pc[cpu].node, cpu))
			break;
	}
	for (;;) {
		cpu = ev_cpu();
		h = LOAD(pc[cpu].head);
		if (h && !ev_cmpeqv_cmpeqv_storev(&pc[cpu].head, h,
						  &pc[cpu].slow, 0,
						  ((struct node *)h)->next, cpu))
			break;
	}
}

static void c_list_lock_fast(long n)
{
	while (n--)
		list_lock_fast();
}

static void c_list_lock_slow(long n)
{
	while (n--) {
		int cpu = ev_cpu();
		struct pcpu *p = &pc[cpu];

		slow_enter(cpu);
		p->node.next = p->head;
		p->head = (intptr_t)&p->node;
		slow_exit(cpu);
		slow_enter(cpu);
		p->head = ((struct node *)p->head)->next;
		slow_exit(cpu);
	}
}

static void list_atomic(intptr_t *head, struct node *node)
{
	intptr_t h = LOAD(*head);

	do
		node->next = h;
	while (!__atomic_compare_exchange_n(head, &h, (intptr_t)node, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	h = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	while (!__atomic_compare_exchange_n(head, &h, ((struct node *)h)->next,
					    false, __ATOMIC_ACQUIRE,
					    __ATOMIC_ACQUIRE))
		;
}

static void c_list_atomic_pcpu(long n)
{
	while (n--) {
		int cpu = ev_cpu();

		list_atomic(&pc[cpu].head, &pc[cpu].node);
	}
}

static void c_list_atomic_shared(long n)
{
	while (n--)
		list_atomic(&shared.head, &shared.node);
}

static void c_list_setaffinity(long n)
{
	while (n--) {
		if (try_pin(ev_cpu()))
			die("sched_setaffinity");
		list_rseq();
		pin_mask(&home_mask);
	}
}

static int stop, resident_idle;

/*
 * A thread of ours on the other CPU while the cost cases run. Busy, as
 * when that CPU's data is in use: membarrier() then has a thread to
 * interrupt there (it skips CPUs that run none of the process's), and
 * cpu_opv and sched_setaffinity() a thread to preempt. Asleep (mostly)
 * for the "remote_idle" cases.
 */
static void *resident(void *arg)
{
	long spins = 0;

	pin(other);
	while (!LOAD(stop)) {
		if (LOAD(resident_idle))
			usleep(1000);
		spins++;
	}
	return (void *)spins;
}

static int run_cost(int runs, double scale)
{
	const char *r = rseq_skip, *o = rseq_skip ? rseq_skip : cpu_opv_skip;
	const char *m = rseq_skip ? rseq_skip : membarrier_skip;
	const char *mo = membarrier_skip;
	const char *two = nr_cpus < 2 ? "needs 2 CPUs" : NULL;
	struct bench b[] = {
		{ "getppid", 20000, c_getppid, NULL },
		{ "counter.rseq", 2000000, c_counter_rseq, r },
		{ "counter.cpu_opv_fast", 2000000, c_counter_cpu_opv_fast, o },
		{ "counter.cpu_opv_slow", 10000, c_counter_cpu_opv_slow, cpu_opv_skip },
		{ "counter.lock_fast", 2000000, c_counter_lock_fast, m },
		{ "counter.lock_slow", 5000, c_counter_lock_slow, mo },
		{ "counter.dual_fast", 2000000, c_counter_dual_fast, r },
		{ "counter.dual_slow", 2000000, c_counter_dual_slow, NULL },
		{ "counter.atomic_pcpu", 2000000, c_counter_atomic_pcpu, NULL },
		{ "counter.atomic_shared", 2000000, c_counter_atomic_shared, NULL },
		{ "counter.setaffinity", 5000, c_counter_setaffinity, r },
		{ "lock.rseq", 2000000, c_lock_rseq, r },
		{ "lock.cpu_opv_fast", 2000000, c_lock_cpu_opv_fast, o },
		{ "lock.cpu_opv_slow", 10000, c_lock_cpu_opv_slow, cpu_opv_skip },
		{ "lock.lock_fast", 2000000, c_lock_lock_fast, m },
		{ "lock.lock_slow", 5000, c_lock_lock_slow, mo },
		{ "lock.atomic_pcpu", 2000000, c_lock_atomic_pcpu, NULL },
		{ "lock.atomic_shared", 2000000, c_lock_atomic_shared, NULL },
		{ "lock.setaffinity", 5000, c_lock_setaffinity, r },
		{ "list.rseq", 1000000, c_list_rseq, r },
		{ "list.cpu_opv_fast", 1000000, c_list_cpu_opv_fast, o },
		{ "list.cpu_opv_slow", 5000, c_list_cpu_opv_slow, cpu_opv_skip },
		{ "list.lock_fast", 1000000, c_list_lock_fast, m },
		{ "list.lock_slow", 2500, c_list_lock_slow, mo },
		{ "list.atomic_pcpu", 1000000, c_list_atomic_pcpu, NULL },
		{ "list.atomic_shared", 1000000, c_list_atomic_shared, NULL },
		{ "list.setaffinity", 2500, c_list_setaffinity, r },
		{ "remote.cpu_opv", 400, c_remote_cpu_opv, two ? two : cpu_opv_skip },
		{ "remote.lock", 1000, c_remote_lock, two ? two : mo },
		{ "remote.dual", 2000000, c_remote_dual, two },
		{ "remote.atomic_pcpu", 2000000, c_remote_atomic_pcpu, two },
		{ "remote.atomic_shared", 2000000, c_counter_atomic_shared, NULL },
		{ "remote.setaffinity", 100, c_remote_setaffinity, two ? two : r },
	};
	/* The remote cases again, the other CPU idle: a run of their own. */
	struct bench idle[] = {
		{ "getppid_idle", 20000, c_getppid, NULL },
		{ "remote_idle.cpu_opv", 2000, c_remote_cpu_opv, two ? two : cpu_opv_skip },
		{ "remote_idle.lock", 5000, c_remote_lock, two ? two : mo },
		{ "remote_idle.setaffinity", 2000, c_remote_setaffinity, two ? two : r },
	};
	int nb = ARRAY_SIZE(b);
	pthread_t th;

	/* Pinned: "this CPU" stays one CPU, "another CPU" another. */
	pin(home);
	if (!two && pthread_create(&th, NULL, resident, NULL))
		die("pthread_create");
	bench_run(b, nb, runs, scale);
	STORE(resident_idle, 1);
	usleep(50000);		/* let it fall asleep */
	bench_run(idle, ARRAY_SIZE(idle), runs, scale);
	STORE(stop, 1);
	if (!two)
		pthread_join(th, NULL);
	pin_mask(&all_cpus);
	printf("{\"mode\": \"cost\", \"runs\": %d, \"cpus\": %d, ", runs,
	       nr_cpus);
	printf("\"home\": %d, \"other\": %d, \"resident_on_other\": %s, ",
	       home, other, two ? "false" : "true");
	printf("\"cases\": {");
	bench_print_cases(stdout, b, nb, runs);
	printf(",");
	bench_print_cases(stdout, idle, ARRAY_SIZE(idle), runs);
	printf("\n}}\n");
	return 0;
}

/* --- progress ----------------------------------------------------------- */

static long signals, signals_sent;
static pid_t storm_tid;		/* the thread the storm's signals go to */
static int signal_hz = 10000;

static void on_signal(int sig)
{
	INC(signals);
}

struct worker {
	const struct scheme *s;
	int remote;		/* every other increment aims there; -1: none */
	bool storm_target;
	long ops, refused;
	pid_t tid;
};

/* Counts increments until told to stop, on the CPUs of home_mask. */
static void *work(void *arg)
{
	struct worker *w = arg;
	long i = 0;

	if (ev_register() && EVAL_HAVE_RSEQ)
		die("rseq registration");
	pin_mask(&home_mask);
	STORE(w->tid, gettid());
	if (w->storm_target)
		STORE(storm_tid, w->tid);
	while (!LOAD(stop)) {
		int target = w->remote >= 0 && (i++ & 1) ? w->remote : -1;

		if (w->s->inc(target))
			w->refused++;
		else
			w->ops++;
	}
	return NULL;
}

/*
 * The storm's signals: from another CPU, to the first worker, at up to
 * signal_hz. A timer would do without a thread, but without high
 * resolution timers (the test kernel has none) it fires once a tick.
 */
static void *signaller(void *arg)
{
	double period = 1e9 / signal_hz, next;
	pid_t tid;

	pin(nr_cpus > 1 ? other : home);
	while (!(tid = LOAD(storm_tid)) && !LOAD(stop))
		sched_yield();
	next = bench_now_ns();
	while (!LOAD(stop)) {
		/* The worker may have seen stop and exited meanwhile. */
		if (syscall(SYS_tgkill, getpid(), tid, SIGALRM))
			if (!LOAD(stop))
				die("tgkill");
		INC(signals_sent);
		next += period;
		while (bench_now_ns() < next && !LOAD(stop))
			;
	}
	return NULL;
}

static intptr_t counted(void)
{
	intptr_t sum = LOAD(shared.count);
	int cpu;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		sum += LOAD(pc[cpu].count) + LOAD(pc[cpu].remote);
	return sum;
}

static void reset_data(void)
{
	memset(pc, 0, sizeof(pc));
	memset(&shared, 0, sizeof(shared));
	memset(stats, 0, sizeof(*stats));
	signals = 0;
	signals_sent = 0;
	storm_tid = 0;
	STORE(stop, 0);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int hp_cpu;
static long hp_cycles;

static pid_t hp_tid;

static void *hotplug(void *arg)
{
	STORE(hp_tid, gettid());
	while (!LOAD(stop)) {
		if (cpu_op_set_online(hp_cpu, false))
			break;
		if (cpu_op_set_online(hp_cpu, true))
			die("CPU online");
		hp_cycles++;
	}
	return NULL;
}

enum condition { QUIET, STORM, HOTPLUG, NR_THREADED };

static const char * const cond_names[] = { "quiet", "storm", "hotplug" };

/* Set once a thread failed to stop: the later runs are not measured. */
static const char *stuck;

/* Where thread @tid of ours is: its state, kernel wait channel and syscall. */
static void where(pid_t tid, char *buf, size_t len)
{
	static const char * const files[] = { "wchan", "syscall" };
	char path[64], text[3][64] = { "", "", "" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%d/%s", tid, files[i]);
		f = fopen(path, "r");
		if (f) {
			if (!fscanf(f, "%63s", text[i]))
				text[i][0] = 0;
			fclose(f);
		}
	}
	snprintf(buf, len, "thread %d: wchan %s, syscall %s", tid, text[0], text[1]);
}

/*
 * Join @t by @deadline (CLOCK_REALTIME); a thread still running then is
 * described in @buf, and stays behind.
 */
static bool join_by(pthread_t t, pid_t tid, const struct timespec *deadline,
		    char *buf, size_t len)
{
	if (!pthread_timedjoin_np(t, NULL, deadline))
		return true;
	where(tid, buf, len);
	return false;
}

/* One scheme, one condition, @secs seconds: print its JSON member. */
static void progress_threads(const struct scheme *s, enum condition c,
			     double secs)
{
	struct worker w[2] = {
		{ s, c == HOTPLUG ? hp_cpu : -1, c == STORM },
		{ s, -1, false },
	};
	int nw = c == STORM ? 2 : 1, i;
	pthread_t th[2], helper;
	struct timespec deadline;
	char hung[160];
	double t0;
	intptr_t sum;

	reset_data();
	/* Room for cpu_opv to reach the hotplugged CPU, when it is online. */
	if (c == HOTPLUG)
		CPU_SET(hp_cpu, &home_mask);
	t0 = bench_now_ns();
	for (i = 0; i < nw; i++)
		if (pthread_create(&th[i], NULL, work, &w[i]))
			die("pthread_create");
	if (c != QUIET &&
	    pthread_create(&helper, NULL, c == STORM ? signaller : hotplug, NULL))
		die("pthread_create");
	sleep_s(secs);
	STORE(stop, 1);
	secs = (bench_now_ns() - t0) / 1e9;
	/* A thread that does not stop within 30 s is reported, not waited for. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	/* The signaller first: it must not aim at a thread that is gone. */
	if (c != QUIET && !join_by(helper, c == STORM ? 0 : LOAD(hp_tid),
				   &deadline, hung, sizeof(hung)))
		stuck = "a helper thread did not stop";
	for (i = 0; i < nw && !stuck; i++)
		if (!join_by(th[i], LOAD(w[i].tid), &deadline, hung, sizeof(hung)))
			stuck = "a worker did not stop";
	CPU_CLR(hp_cpu, &home_mask);
	if (stuck) {
		printf("\"%s\": {\"stuck\": \"%s: %s\"}", s->name, stuck, hung);
		return;
	}
	sum = counted();
	printf("\"%s\": {\"ops_per_s\": %.1f, \"refused\": %ld, ",
	       s->name, (w[0].ops + w[1].ops) / secs,
	       w[0].refused + w[1].refused);
	printf("\"slow\": %ld, \"aborts\": %ld, \"ops\": %ld, \"sum_ok\": %s",
	       stats->slow, stats->aborts, w[0].ops + w[1].ops,
	       sum == w[0].ops + w[1].ops ? "true" : "false");
	if (c == STORM)
		printf(", \"signals\": %ld, \"signals_sent\": %ld", signals,
		       signals_sent);
	if (c == HOTPLUG)
		printf(", \"hotplug_cycles\": %ld, \"hotplug_cpu\": %d",
		       hp_cycles, hp_cpu);
	printf("}");
	hp_cycles = 0;
}

/*
 * Single-step: a child increments its CPU's counter in a loop and
 * reports each increment in shared memory; the parent steps it for
 * @secs seconds. Returns the increments, -1 when the kernel cannot step.
 */
static long single_step(const struct scheme *s, double secs, long *steps)
{
	double end = bench_now_ns() + secs * 1e9;
	int status;
	pid_t pid;

	reset_data();
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		pin(home);
		membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0);
		if ((ev_register() && EVAL_HAVE_RSEQ) ||
		    ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			_exit(3);
		raise(SIGSTOP);
		for (;;) {
			if (!s->inc(-1))
				INC(stats->ops);
		}
	}
	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status))
		die("the traced child did not stop");
	for (*steps = 0; bench_now_ns() < end; ++*steps) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL)) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status))
			die("the traced child died");
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return LOAD(stats->ops);
}

static void progress_step(const struct scheme *s, double secs)
{
	long steps, ops;

#ifdef __arm__
	printf("\"%s\": {\"skip\": \"32-bit arm has no PTRACE_SINGLESTEP\"}",
	       s->name);
	return;
#endif
	ops = single_step(s, secs, &steps);
	if (ops < 0) {
		printf("\"%s\": {\"skip\": \"PTRACE_SINGLESTEP: %s\"}", s->name,
		       strerror(errno));
		return;
	}
	printf("\"%s\": {\"ops_per_s\": %.1f, \"ops\": %ld, \"steps\": %ld, ",
	       s->name, ops / secs, ops, steps);
	printf("\"slow\": %ld, \"aborts\": %ld}", LOAD(stats->slow),
	       LOAD(stats->aborts));
}

static const char *hotplug_skip(bool allowed)
{
	if (!allowed)
		return "not asked for (-H)";
	if (nr_cpus < 2)
		return "needs 2 CPUs";
	if (geteuid())
		return "needs root";
	if (cpu_op_set_online(hp_cpu, false))
		return "the CPU cannot go offline";
	if (cpu_op_set_online(hp_cpu, true))
		die("CPU online");
	return NULL;
}

static int run_progress(double secs, bool hp)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int ns = ARRAY_SIZE(schemes), c, i;
	const char *skip, *hp_skip;

	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED)
		die("mmap");
	if (sigaction(SIGALRM, &sa, NULL))
		die("sigaction");
	hp_skip = hotplug_skip(hp);
	printf("{\"mode\": \"progress\", \"seconds\": %.2f, ", secs);
	printf("\"signal_hz\": %d, \"aborts_before_slow\": %d, ",
	       signal_hz, ABORTS_BEFORE_SLOW);
	printf("\"home\": %d, \"conditions\": {", home);
	for (c = 0; c <= NR_THREADED; c++) {
		printf("%s\n \"%s\": {", c ? "," : "",
		       c == NR_THREADED ? "single_step" : cond_names[c]);
		for (i = 0; i < ns; i++) {
			const struct scheme *s = &schemes[i];

			printf("%s\n  ", i ? "," : "");
			skip = stuck ? "an earlier run did not stop" : scheme_skip(s);
			if (!skip && c == HOTPLUG)
				skip = hp_skip;
			if (skip)
				printf("\"%s\": {\"skip\": \"%s\"}", s->name, skip);
			else if (c == NR_THREADED)
				progress_step(s, secs);
			else
				progress_threads(s, c, secs);
			fflush(stdout);
		}
		printf("}");
	}
	printf("\n}}\n");
	return 0;
}

/* --- ctxsw ---------------------------------------------------------------- */

static int ping[2], pong[2];

static void *ponger(void *arg)
{
	char c;

	pin(home);
	while (read(ping[0], &c, 1) == 1 && c)
		if (write(pong[1], &c, 1) != 1)
			die("write");
	return NULL;
}

static void c_roundtrip(long n)
{
	char c = 1;

	while (n--)
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			die("pipe");
}

static int run_ctxsw(int runs, double scale)
{
	struct bench b[] = {
		{ "getppid", 20000, c_getppid, NULL },
		{ "ctxsw_roundtrip", 5000, c_roundtrip, NULL },
	};
	pthread_t th;
	char zero = 0;

	if (pipe(ping) || pipe(pong))
		die("pipe");
	pin(home);
	if (pthread_create(&th, NULL, ponger, NULL))
		die("pthread_create");
	bench_run(b, ARRAY_SIZE(b), runs, scale);
	if (write(ping[1], &zero, 1) != 1)
		die("write");
	pthread_join(th, NULL);
	printf("{\"mode\": \"ctxsw\", \"runs\": %d, \"cpu_opv\": %s, ", runs,
	       cpu_opv_skip ? "false" : "true");
	printf("\"cases\": {");
	bench_print_cases(stdout, b, ARRAY_SIZE(b), runs);
	printf("\n}}\n");
	return 0;
}

/* --- maxvec --------------------------------------------------------------- */

#define TRACEFS		"/sys/kernel/tracing/"
#define EVENT		TRACEFS "events/cpu_opv/cpu_opv/enable"
/* As the event prints itself (include/trace/events/cpu_opv.h). */
#define EVENT_FORMAT	\
	"cpu_opv: cpu=%d opcnt=%d flags=%x result=%d preempt_off_ns=%llu"

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return ret;
}

static unsigned long long vec_data[4096 / 8], vec_count;
static unsigned char vec_src[4096];

/* A 4096-byte memcpy and 15 8-byte ADDs: 4216 bytes, the limit. */
static void fill_maxvec(struct cpu_op *ops)
{
	int i;

	ops[0] = (struct cpu_op){ .op = CPU_MEMCPY_OP, .len = 4096,
		.u.memcpy_op = { .dst = CPU_OP_PTR(vec_data),
				 .src = CPU_OP_PTR(vec_src) } };
	for (i = 1; i < 16; i++)
		ops[i] = (struct cpu_op){ .op = CPU_ADD_OP, .len = 8,
			.u.arithmetic_op = { .p = CPU_OP_PTR(&vec_count),
					     .count = 1 } };
}

struct latency {
	long n;
	double max, sum, v[4096];
};

/* The cpu_opv events of the trace buffer, by target CPU. */
static void read_events(struct latency *local, struct latency *remote)
{
	FILE *f = fopen(TRACEFS "trace", "r");
	char line[512];

	if (!f)
		die(TRACEFS "trace");
	while (fgets(line, sizeof(line), f)) {
		unsigned long long ns;
		int cpu, cnt, flags, result;
		struct latency *l;
		char *p = strstr(line, "cpu_opv: cpu=");

		if (!p || sscanf(p, EVENT_FORMAT, &cpu, &cnt, &flags, &result,
				 &ns) != 5 ||
		    cnt != 16 || result)
			continue;
		l = cpu == home ? local : remote;
		if (l->n < (long)ARRAY_SIZE(l->v))
			l->v[l->n++] = ns;
		l->sum += ns;
		if (ns > l->max)
			l->max = ns;
	}
	fclose(f);
}

static void print_latency(const char *name, struct latency *l)
{
	qsort(l->v, l->n, sizeof(l->v[0]), bench_cmp_double);
	printf("\"%s\": {\"calls\": %ld, \"max_ns\": %.0f, \"median_ns\": %.0f}",
	       name, l->n, l->max, l->n ? l->v[l->n / 2] : 0.0);
}

/*
 * Whether the kernel has the preemptoff tracer. It is reported, not used:
 * the tracepoint times exactly the vector, the tracer every section of
 * the whole system.
 */
static bool has_preemptoff(void)
{
	FILE *f = fopen(TRACEFS "available_tracers", "r");
	char word[64];
	bool found = false;

	if (!f)
		return false;
	while (!found && fscanf(f, "%63s", word) == 1)
		found = !strcmp(word, "preemptoff");
	fclose(f);
	return found;
}

static int run_maxvec(long calls)
{
	static struct latency local, remote;
	struct cpu_op ops[16];
	double getppid_ns;
	long i;

	if (cpu_opv_skip) {
		printf("{\"mode\": \"maxvec\", \"skip\": \"%s\"}\n", cpu_opv_skip);
		return 0;
	}
	if (access(EVENT, W_OK)) {
		printf("{\"mode\": \"maxvec\", \"skip\": \"no %s: %s\"}\n", EVENT,
		       strerror(errno));
		return 0;
	}
	fill_maxvec(ops);
	pin(home);
	getppid_ns = bench_ns_per_call(c_getppid, 20000);
	if (write_file(TRACEFS "trace", "") || write_file(EVENT, "1") ||
	    write_file(TRACEFS "tracing_on", "1"))
		die("enabling the cpu_opv event");
	for (i = 0; i < calls; i++)
		opv_check(cpu_opv(ops, 16, home, 0), "cpu_opv (local)");
	allow_other(true);
	for (i = 0; nr_cpus > 1 && i < calls; i++)
		opv_check(cpu_opv(ops, 16, other, 0), "cpu_opv (remote)");
	write_file(EVENT, "0");
	read_events(&local, &remote);
	pin_mask(&all_cpus);
	printf("{\"mode\": \"maxvec\", \"source\": \"tracepoint cpu_opv:cpu_opv\", ");
	printf("\"preemptoff_tracer\": %s, \"bytes\": 4216, ",
	       has_preemptoff() ? "true" : "false");
	printf("\"getppid_ns\": %.1f, ", getppid_ns);
	print_latency("local", &local);
	printf(", ");
	print_latency("remote", &remote);
	printf("}\n");
	return 0;
}

/* --- main ------------------------------------------------------------------ */

static void probe(void)
{
	int cpu;

	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		die("sched_getaffinity");
	home = -1;
	other = -1;
	hp_cpu = -1;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &all_cpus))
			continue;
		nr_cpus++;
		if (home < 0)
			home = cpu;
		else if (other < 0)
			other = cpu;
		hp_cpu = cpu;	/* the last one: hot-unplugged */
	}
	CPU_ZERO(&home_mask);
	CPU_SET(home, &home_mask);
	if (!EVAL_HAVE_RSEQ)
		rseq_skip = "no rseq critical sections for this architecture";
	else if (ev_register())
		rseq_skip = "rseq registration failed";
	if (!cpu_op_available())
		cpu_opv_skip = cpu_op_unavailable_reason();
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0))
		membarrier_skip = errno == EINVAL || errno == ENOSYS ?
			"no membarrier PRIVATE_EXPEDITED_RSEQ" :
			"membarrier registration failed";
}

static void __noreturn bad_args(const char *prog)
{
	fprintf(stderr, "usage: %s cost|ctxsw [-r RUNS] [-s SCALE]\n"
		"       %s progress [-t SECONDS] [-f SIGNAL_HZ] [-H]\n"
		"       %s maxvec [-n CALLS]\n", prog, prog, prog);
	exit(2);
}

int main(int argc, char **argv)
{
	int runs = 5, opt;
	bool hp = false;
	double scale = 1, secs = 1;
	const char *mode;
	long calls = 200;
	struct tally local_tally;

	if (argc < 2)
		bad_args(argv[0]);
	mode = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "r:s:t:f:n:H")) != -1) {
		switch (opt) {
		case 'r':
			runs = atoi(optarg);
			break;
		case 's':
			scale = atof(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'f':
			signal_hz = atoi(optarg);
			break;
		case 'n':
			calls = atol(optarg);
			break;
		case 'H':
			hp = true;
			break;
		default:
			bad_args(argv[0]);
		}
	}
	if (bench_check_args("cpu_opv_eval", runs, scale) || secs <= 0 ||
	    signal_hz < 1 || signal_hz > 1000000 || calls < 1)
		bad_args(argv[0]);
	stats = &local_tally;
	memset(stats, 0, sizeof(*stats));
	probe();
	if (!strcmp(mode, "cost"))
		return run_cost(runs, scale);
	if (!strcmp(mode, "progress"))
		return run_progress(secs, hp);
	if (!strcmp(mode, "ctxsw"))
		return run_ctxsw(runs, scale);
	if (!strcmp(mode, "maxvec"))
		return run_maxvec(calls);
	bad_args(argv[0]);
}
