// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * cpu_opv_param_test.c: per-CPU data structures with an rseq fast path
 * and a cpu_opv slow path, stressed by many threads, in the spirit of
 * rseq's param_test.c. Every run checks exact totals.
 *
 * -o N takes the slow path after N rseq aborts in a row (0: never, rseq
 * retries forever as in param_test); -c uses cpu_opv only. Delay
 * injection points 1-6 are inside the rseq critical sections (asm), 7 is
 * between reading the inputs of a cpu_opv vector and issuing it, 8 after
 * each commit, 9 before each rseq attempt; -7/-8/-9 -1 turn the point
 * into a yield (-y), sleep (-s) or signal (-k) every -m times.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kselftest.h"

/* The x86 delay loops read loop_cnt[1..6] by this symbol name. */
static int loop_cnt[10] asm("asm_loop_cnt");
static_assert(sizeof(loop_cnt[0]) == 4, "asm_loop_cnt+4*n is loop_cnt[n]");

static int opt_modulo, opt_yield, opt_signal, opt_sleep, opt_threads = 16;
static int opt_slow_after = 1, opt_cpu_opv_only, opt_release, verbose;
static long long opt_reps = 1000;
static char opt_test = 's';

static __thread __attribute__((tls_model("initial-exec")))
unsigned int yield_mod_cnt, signals_delivered;

/* Delay loops inside the critical sections, as in rseq's param_test.c. */
#if defined(__x86_64__)
#define RSEQ_INJECT_CLOBBER	\
	, "rax"
#define RSEQ_INJECT_ASM(n)						\
	"lea asm_loop_cnt+4*" #n "(%%rip), %%rax\n\t"			\
	"mov (%%rax), %%eax\n\t"					\
	"test %%eax, %%eax\n\t"						\
	"jz 333f\n\t"							\
	"222:\n\t"							\
	"dec %%eax\n\t"							\
	"jnz 222b\n\t"							\
	"333:\n\t"
#elif defined(__i386__)
#define RSEQ_INJECT_CLOBBER	\
	, "eax"
#define RSEQ_INJECT_ASM(n)						\
	"mov asm_loop_cnt+4*" #n ", %%eax\n\t"				\
	"test %%eax, %%eax\n\t"						\
	"jz 333f\n\t"							\
	"222:\n\t"							\
	"dec %%eax\n\t"							\
	"jnz 222b\n\t"							\
	"333:\n\t"
#else
#define RSEQ_INJECT_INPUT						\
	, [loop_cnt_1] "m" (loop_cnt[1]), [loop_cnt_2] "m" (loop_cnt[2])	\
	, [loop_cnt_3] "m" (loop_cnt[3]), [loop_cnt_4] "m" (loop_cnt[4])	\
	, [loop_cnt_5] "m" (loop_cnt[5]), [loop_cnt_6] "m" (loop_cnt[6])
#if defined(__AARCH64EL__)
#undef RSEQ_INJECT_INPUT
#define RSEQ_INJECT_INPUT						\
	, [loop_cnt_1] "Qo" (loop_cnt[1]), [loop_cnt_2] "Qo" (loop_cnt[2])	\
	, [loop_cnt_3] "Qo" (loop_cnt[3]), [loop_cnt_4] "Qo" (loop_cnt[4])	\
	, [loop_cnt_5] "Qo" (loop_cnt[5]), [loop_cnt_6] "Qo" (loop_cnt[6])
#define RSEQ_INJECT_ASM(n)						\
	"	ldr	" RSEQ_ASM_TMP_REG32 ", %[loop_cnt_" #n "]\n"	\
	"	cbz	" RSEQ_ASM_TMP_REG32 ", 333f\n"			\
	"222:\n"							\
	"	sub	" RSEQ_ASM_TMP_REG32 ", " RSEQ_ASM_TMP_REG32 ", #1\n" \
	"	cbnz	" RSEQ_ASM_TMP_REG32 ", 222b\n"			\
	"333:\n"
#elif defined(__ARMEL__)
#define RSEQ_INJECT_CLOBBER	\
	, "r4"
#define RSEQ_INJECT_ASM(n)						\
	"ldr r4, %[loop_cnt_" #n "]\n\t"				\
	"cmp r4, #0\n\t"						\
	"beq 333f\n\t"							\
	"222:\n\t"							\
	"subs r4, #1\n\t"						\
	"bne 222b\n\t"							\
	"333:\n\t"
#elif defined(__PPC__)
#define RSEQ_INJECT_CLOBBER	\
	, "r18"
#define RSEQ_INJECT_ASM(n)						\
	"lwz %%r18, %[loop_cnt_" #n "]\n\t"				\
	"cmpwi %%r18, 0\n\t"						\
	"beq 333f\n\t"							\
	"222:\n\t"							\
	"subic. %%r18, %%r18, 1\n\t"					\
	"bne 222b\n\t"							\
	"333:\n\t"
#else
#error "add delay injection for this architecture"
#endif
#endif

#define RSEQ_INJECT_C(n)						\
{									\
	int loc_i, loc_nr_loops = loop_cnt[n];				\
									\
	for (loc_i = 0; loc_i < loc_nr_loops; loc_i++)			\
		rseq_barrier();						\
	if (loc_nr_loops == -1 && opt_modulo) {				\
		if (yield_mod_cnt == (unsigned int)opt_modulo - 1) {	\
			if (opt_sleep > 0)				\
				poll(NULL, 0, opt_sleep);		\
			if (opt_yield)					\
				sched_yield();				\
			if (opt_signal)					\
				raise(SIGUSR1);				\
			yield_mod_cnt = 0;				\
		} else {						\
			yield_mod_cnt++;				\
		}							\
	}								\
}

#include "rseq.h"
#include "cpu-op.h"

#define PERCPU	RSEQ_PERCPU_CPU_ID

/* Per-thread path statistics. */
static __thread long long nr_fast, nr_slow, nr_abort, aborts_in_row;
static long long total_fast, total_slow, total_abort, total_signals;

static bool take_slow_path(void)
{
	return opt_cpu_opv_only ||
	       (opt_slow_after && aborts_in_row >= opt_slow_after);
}

/*
 * Account for one attempt; true when it committed. A compare failure
 * (ret > 0) means the data moved under us: retry with fresh inputs.
 */
static bool committed(int ret, bool slow)
{
	if (!ret) {
		if (slow)
			nr_slow++;
		else
			nr_fast++;
		aborts_in_row = 0;
		RSEQ_INJECT_C(8)
		return true;
	}
	if (ret > 0)
		return false;
	if (slow) {
		if (errno == EAGAIN)
			return false;
		ksft_exit_fail_msg("cpu_opv: returned %d, errno %s\n", ret,
				   cpu_op_errno_name(errno));
	}
	nr_abort++;
	aborts_in_row++;
	return false;
}

static int current_cpu(void)
{
	return rseq_cpu_start();
}

struct percpu_lock_entry {
	alignas(128) intptr_t v;
};

struct test_data_entry {
	alignas(128) intptr_t count;
};

/* spinlock: a per-CPU lock protecting a plain per-CPU counter. */
static struct {
	struct percpu_lock_entry lock[CPU_SETSIZE];
	struct test_data_entry c[CPU_SETSIZE];
} spin;

static int this_cpu_lock(void)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		bool slow = take_slow_path();

		if (slow) {
			RSEQ_INJECT_C(7)
			ret = cpu_op_cmpeqv_storev(&spin.lock[cpu].v, 0, 1, cpu);
		} else {
			ret = rseq_cmpeqv_storev(RSEQ_MO_RELAXED, PERCPU,
						 &spin.lock[cpu].v, 0, 1, cpu);
		}
		if (committed(ret, slow)) {
			rseq_smp_acquire__after_ctrl_dep();
			return cpu;
		}
	}
}

static void spinlock_op(void)
{
	int cpu = this_cpu_lock();

	spin.c[cpu].count++;
	rseq_smp_store_release(&spin.lock[cpu].v, 0);
}

/* increment: a per-CPU counter. */
static struct test_data_entry inc[CPU_SETSIZE];

static void inc_op(void)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		bool slow = take_slow_path();

		if (slow) {
			RSEQ_INJECT_C(7)
			ret = cpu_op_addv(&inc[cpu].count, 1, cpu);
		} else {
			ret = rseq_addv(RSEQ_MO_RELAXED, PERCPU, &inc[cpu].count,
					1, cpu);
		}
		if (committed(ret, slow))
			return;
	}
}

/* list: per-CPU singly linked lists; each thread pops and pushes back. */
struct percpu_list_node {
	intptr_t data;
	struct percpu_list_node *next;
};

static struct percpu_list_entry {
	alignas(128) struct percpu_list_node *head;
} list[CPU_SETSIZE];

static void list_push(struct percpu_list_node *node)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		intptr_t *head = (intptr_t *)&list[cpu].head;
		intptr_t expect = (intptr_t)RSEQ_READ_ONCE(list[cpu].head);
		bool slow = take_slow_path();

		node->next = (struct percpu_list_node *)expect;
		if (slow) {
			RSEQ_INJECT_C(7)
			ret = cpu_op_cmpeqv_storev(head, expect, (intptr_t)node, cpu);
		} else {
			ret = rseq_cmpeqv_storev(RSEQ_MO_RELAXED, PERCPU, head,
						 expect, (intptr_t)node, cpu);
		}
		if (committed(ret, slow))
			return;
	}
}

static struct percpu_list_node *list_pop(void)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		intptr_t *head = (intptr_t *)&list[cpu].head, load;
		long off = offsetof(struct percpu_list_node, next);
		bool slow = take_slow_path();

		if (slow) {
			RSEQ_INJECT_C(7)
			ret = cpu_op_cmpnev_storeoffp_load(head, 0, off, &load, cpu);
		} else {
			ret = rseq_cmpnev_storeoffp_load(RSEQ_MO_RELAXED, PERCPU,
							 head, 0, off, &load, cpu);
		}
		if (ret > 0)
			return NULL;	/* empty */
		if (committed(ret, slow))
			return (struct percpu_list_node *)load;
	}
}

static void list_op(void)
{
	struct percpu_list_node *node = list_pop();

	if (opt_yield)
		sched_yield();	/* encourage shuffling */
	if (node)
		list_push(node);
}

/* buffer: per-CPU arrays of pointers with an offset. */
#define BUFFER_ITEM_PER_CPU	100

static struct percpu_buffer_entry {
	alignas(128) intptr_t offset;
	intptr_t buflen;
	intptr_t *array;
} buffer[CPU_SETSIZE];

static void buffer_push(intptr_t item)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		struct percpu_buffer_entry *b = &buffer[cpu];
		intptr_t offset = RSEQ_READ_ONCE(b->offset);
		bool slow = take_slow_path();

		if (offset == b->buflen)
			ksft_exit_fail_msg("buffer of cpu %d full\n", cpu);
		if (slow) {
			RSEQ_INJECT_C(7)
			ret = (opt_release ? cpu_op_cmpeqv_storev_storev_release :
			       cpu_op_cmpeqv_storev_storev)(&b->offset, offset,
					&b->array[offset], item, offset + 1, cpu);
		} else {
			ret = rseq_cmpeqv_trystorev_storev(opt_release ?
					RSEQ_MO_RELEASE : RSEQ_MO_RELAXED, PERCPU,
					&b->offset, offset, &b->array[offset],
					item, offset + 1, cpu);
		}
		if (committed(ret, slow))
			return;
	}
}

static intptr_t buffer_pop(void)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		struct percpu_buffer_entry *b = &buffer[cpu];
		intptr_t offset = RSEQ_READ_ONCE(b->offset), item;
		bool slow = take_slow_path();

		if (!offset)
			return 0;
		item = RSEQ_READ_ONCE(b->array[offset - 1]);
		if (slow) {
			RSEQ_INJECT_C(7)
			ret = cpu_op_cmpeqv_cmpeqv_storev(&b->offset, offset,
							  &b->array[offset - 1],
							  item, offset - 1, cpu);
		} else {
			ret = rseq_cmpeqv_cmpeqv_storev(RSEQ_MO_RELAXED, PERCPU,
							&b->offset, offset,
							&b->array[offset - 1],
							item, offset - 1, cpu);
		}
		if (committed(ret, slow))
			return item;
	}
}

static void buffer_op(void)
{
	intptr_t item = buffer_pop();

	if (opt_yield)
		sched_yield();
	if (item)
		buffer_push(item);
}

/* memcpy: per-CPU arrays of two-word items copied in and out. */
struct memcpy_item {
	intptr_t data1;
	uint64_t data2;
};

static struct percpu_memcpy_entry {
	alignas(128) intptr_t offset;
	intptr_t buflen;
	struct memcpy_item *array;
} mbuf[CPU_SETSIZE];

static void memcpy_push(struct memcpy_item *item)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		struct percpu_memcpy_entry *b = &mbuf[cpu];
		intptr_t offset = RSEQ_READ_ONCE(b->offset);
		bool slow = take_slow_path();

		if (offset == b->buflen)
			ksft_exit_fail_msg("memcpy buffer of cpu %d full\n", cpu);
		if (slow) {
			RSEQ_INJECT_C(7)
			ret = (opt_release ? cpu_op_cmpeqv_memcpy_storev_release :
			       cpu_op_cmpeqv_memcpy_storev)(&b->offset, offset,
					&b->array[offset], item, sizeof(*item),
					offset + 1, cpu);
		} else {
			ret = rseq_cmpeqv_trymemcpy_storev(opt_release ?
					RSEQ_MO_RELEASE : RSEQ_MO_RELAXED, PERCPU,
					&b->offset, offset, &b->array[offset],
					item, sizeof(*item), offset + 1, cpu);
		}
		if (committed(ret, slow))
			return;
	}
}

static bool memcpy_pop(struct memcpy_item *item)
{
	for (;;) {
		int cpu = current_cpu(), ret;
		struct percpu_memcpy_entry *b = &mbuf[cpu];
		intptr_t offset = RSEQ_READ_ONCE(b->offset);
		bool slow = take_slow_path();

		if (!offset)
			return false;
		if (slow) {
			RSEQ_INJECT_C(7)
			ret = cpu_op_cmpeqv_memcpy_storev(&b->offset, offset,
							  item,
							  &b->array[offset - 1],
							  sizeof(*item),
							  offset - 1, cpu);
		} else {
			ret = rseq_cmpeqv_trymemcpy_storev(RSEQ_MO_RELAXED,
							   PERCPU, &b->offset,
							   offset, item,
							   &b->array[offset - 1],
							   sizeof(*item),
							   offset - 1, cpu);
		}
		if (committed(ret, slow))
			return true;
	}
}

static void memcpy_op(void)
{
	struct memcpy_item item;

	if (!memcpy_pop(&item))
		return;
	if (opt_yield)
		sched_yield();
	memcpy_push(&item);
}

static void (*test_op)(void);
static pthread_mutex_t totals_lock = PTHREAD_MUTEX_INITIALIZER;

static void *test_thread(void *arg)
{
	long long i;

	(void)arg;
	if (rseq_register_current_thread())
		ksft_exit_fail_msg("rseq_register_current_thread: %s\n",
				   strerror(errno));
	for (i = 0; i < opt_reps; i++)
		test_op();
	pthread_mutex_lock(&totals_lock);
	total_fast += nr_fast;
	total_slow += nr_slow;
	total_abort += nr_abort;
	total_signals += signals_delivered;
	pthread_mutex_unlock(&totals_lock);
	if (rseq_unregister_current_thread())
		ksft_exit_fail_msg("rseq_unregister_current_thread: %s\n",
				   strerror(errno));
	return NULL;
}

static void run_threads(void)
{
	pthread_t *threads = calloc(opt_threads, sizeof(*threads));
	int i, ret;

	for (i = 0; i < opt_threads; i++) {
		ret = pthread_create(&threads[i], NULL, test_thread, NULL);
		if (ret)
			ksft_exit_fail_msg("pthread_create: %s\n", strerror(ret));
	}
	for (i = 0; i < opt_threads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
}

/* Fill the per-CPU structures of the allowed CPUs; returns the sum of items. */
static uint64_t populate(cpu_set_t *allowed)
{
	uint64_t sum = 0;
	int cpu, j;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, allowed))
			continue;
		/* Worst case: every item ends up on one CPU. */
		buffer[cpu].buflen = CPU_SETSIZE * BUFFER_ITEM_PER_CPU;
		mbuf[cpu].buflen = buffer[cpu].buflen;
		buffer[cpu].array = calloc(buffer[cpu].buflen, sizeof(intptr_t));
		mbuf[cpu].array = calloc(mbuf[cpu].buflen, sizeof(struct memcpy_item));
		if (!buffer[cpu].array || !mbuf[cpu].array)
			ksft_exit_fail_msg("out of memory\n");
		for (j = 1; j <= BUFFER_ITEM_PER_CPU; j++) {
			struct percpu_list_node *node = malloc(sizeof(*node));

			node->data = j;
			node->next = list[cpu].head;
			list[cpu].head = node;
			buffer[cpu].array[buffer[cpu].offset++] = j;
			mbuf[cpu].array[mbuf[cpu].offset++] =
				(struct memcpy_item){ j, j + 1 };
			sum += opt_test == 'm' ? 2 * j + 1 : j;
		}
	}
	return sum;
}

/* Drain every structure single-threaded; returns the sum of items. */
static uint64_t drain(void)
{
	uint64_t sum = 0;
	int cpu;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		struct percpu_list_node *node;

		switch (opt_test) {
		case 's':
			sum += spin.c[cpu].count;
			break;
		case 'i':
			sum += inc[cpu].count;
			break;
		case 'l':
			while ((node = list[cpu].head)) {
				list[cpu].head = node->next;
				sum += node->data;
				free(node);
			}
			break;
		case 'b':
			while (buffer[cpu].offset > 0)
				sum += buffer[cpu].array[--buffer[cpu].offset];
			break;
		case 'm':
			while (mbuf[cpu].offset > 0) {
				struct memcpy_item *it = &mbuf[cpu].array[--mbuf[cpu].offset];

				sum += it->data1 + it->data2;
			}
			break;
		}
	}
	return sum;
}

static void count_signal(int sig)
{
	(void)sig;
	signals_delivered++;
}

static void usage(const char *argv0)
{
	printf("Usage: %s [OPTIONS]\n"
	       "	[-T test] (s)pinlock, (l)ist, (b)uffer, (m)emcpy, (i)ncrement (default s)\n"
	       "	[-t N] threads (default 16)\n"
	       "	[-r N] repetitions per thread (default 1000)\n"
	       "	[-1..-9 loops] delay injection at point n; -7/-8/-9 -1: see -m\n"
	       "	[-m N] yield/sleep/signal every N passes at points set to -1\n"
	       "	[-y] yield  [-k] signal  [-s ms] sleep\n"
	       "	[-o N] cpu_opv after N rseq aborts in a row (default 1, 0: never)\n"
	       "	[-c] cpu_opv only, no rseq fast path\n"
	       "	[-M] release ordering for buffer and memcpy push\n"
	       "	[-v] verbose\n", argv0);
}

int main(int argc, char **argv)
{
	static const char * const names[128] = {
		['s'] = "spinlock", ['i'] = "increment", ['l'] = "list",
		['b'] = "buffer", ['m'] = "memcpy",
	};
	struct sigaction sa = { .sa_handler = count_signal };
	uint64_t expect, sum;
	const char *mode;
	cpu_set_t allowed;
	int opt;

	while ((opt = getopt(argc, argv, "1:2:3:4:5:6:7:8:9:m:yks:t:r:o:cMT:vh")) != -1) {
		switch (opt) {
		case '1' ... '9':
			loop_cnt[opt - '0'] = atoi(optarg);
			break;
		case 'm':
			opt_modulo = atoi(optarg);
			break;
		case 'y':
			opt_yield = 1;
			break;
		case 'k':
			opt_signal = 1;
			break;
		case 's':
			opt_sleep = atoi(optarg);
			break;
		case 't':
			opt_threads = atoi(optarg);
			break;
		case 'r':
			opt_reps = atoll(optarg);
			break;
		case 'o':
			opt_slow_after = atoi(optarg);
			break;
		case 'c':
			opt_cpu_opv_only = 1;
			break;
		case 'M':
			opt_release = 1;
			break;
		case 'T':
			opt_test = optarg[0];
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : KSFT_FAIL;
		}
	}
	if (opt_test < 0 || !names[(int)opt_test] || opt_threads < 1 ||
	    opt_reps < 0 || opt_modulo < 0 || opt_slow_after < 0) {
		usage(argv[0]);
		return KSFT_FAIL;
	}

	ksft_print_header();
	if ((opt_cpu_opv_only || opt_slow_after) && !cpu_op_available())
		ksft_exit_skip("%s\n", cpu_op_unavailable_reason());
	if (rseq_register_current_thread())
		ksft_exit_skip("rseq: registration failed: %s\n", strerror(errno));
	if (sigaction(SIGUSR1, &sa, NULL))
		ksft_exit_fail_msg("sigaction: %s\n", strerror(errno));
	ksft_set_plan(1);

	sched_getaffinity(0, sizeof(allowed), &allowed);
	expect = populate(&allowed);
	switch (opt_test) {
	case 's':
		test_op = spinlock_op;
		break;
	case 'i':
		test_op = inc_op;
		break;
	case 'l':
		test_op = list_op;
		break;
	case 'b':
		test_op = buffer_op;
		break;
	case 'm':
		test_op = memcpy_op;
		break;
	}
	if (opt_test == 's' || opt_test == 'i')
		expect = (uint64_t)opt_threads * opt_reps;
	run_threads();
	sum = drain();

	mode = opt_cpu_opv_only ? "cpu_opv only" :
	       opt_slow_after ? "rseq + cpu_opv" : "rseq only";
	ksft_print_msg("%s, %s: %d threads x %lld reps\n",
		       names[(int)opt_test], mode, opt_threads, opt_reps);
	ksft_print_msg("%lld rseq commits, %lld cpu_opv commits, %lld rseq aborts, %lld signals\n",
		       total_fast, total_slow, total_abort, total_signals);
	if (sum != expect)
		ksft_print_msg("sum %llu, expected %llu\n",
			       (unsigned long long)sum, (unsigned long long)expect);
	ksft_test_result(sum == expect && !(opt_cpu_opv_only && total_fast),
			 "%s, %s: exact total\n", names[(int)opt_test], mode);
	ksft_finished();
}
