// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * basic_cpu_opv_test.c: every op, flag, limit and errno of cpu_opv(2),
 * one test point each. A failing check prints the return value and the
 * errno by name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "../kselftest.h"
#include "cpu-op.h"

#define CMP(_op, _a, _b, _len) { .op = (_op), .len = (_len),		\
	.u.compare_op = { .a = CPU_OP_PTR(_a), .b = CPU_OP_PTR(_b) } }
#define MEMCPY(_op, _d, _s, _len) { .op = (_op), .len = (_len),	\
	.u.memcpy_op = { .dst = CPU_OP_PTR(_d), .src = CPU_OP_PTR(_s) } }
#define ARITH(_op, _p, _count, _len) { .op = (_op), .len = (_len),	\
	.u.arithmetic_op = { .p = CPU_OP_PTR(_p), .count = (_count) } }
#define BITWISE(_op, _p, _mask, _len) { .op = (_op), .len = (_len),	\
	.u.bitwise_op = { .p = CPU_OP_PTR(_p), .mask = (_mask) } }
#define SHIFT(_op, _p, _bits, _len) { .op = (_op), .len = (_len),	\
	.u.shift_op = { .p = CPU_OP_PTR(_p), .bits = (_bits) } }
#define MB() { .op = CPU_MB_OP, .len = 0 }

/* A user address no process can map: kernel space on every arch. */
#define KERNEL_ADDR	(~(__u64)0 - 4095)

/*
 * Test memory: pages 0 and 1 read-write, 2 PROT_NONE, 3 read-only.
 * An unmapped page is made afresh at each use (UNMAPPED): a hole made once
 * is filled by the next mmap() of the test itself (seen: the read-only file
 * mapping of test_efault_operands landed in it).
 */
static char *arena;
static long page;
#define RW(off)		(arena + (off))
#define NONE		(arena + 2 * page)
#define RO		(arena + 3 * page)
#define UNMAPPED	(unmapped_page())

static int nr_possible;
static cpu_set_t allowed;

static char *unmapped_page(void)
{
	char *p = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || munmap(p, page))
		ksft_exit_fail_msg("unmapped page: %s\n", strerror(errno));
	return p;
}

/* Run a vector on the current CPU. */
static int run(struct cpu_op *ops, int cnt)
{
	return cpu_opv(ops, cnt, cpu_op_get_current_cpu(), 0);
}

/* want_errno != 0: expect -1 with that errno; else expect want_ret. */
static bool check(const char *what, int ret, int err, int want_ret,
		  int want_errno)
{
	if (want_errno ? (ret == -1 && err == want_errno) : ret == want_ret)
		return true;
	if (want_errno)
		ksft_print_msg("%s: returned %d (errno %s), expected -1 errno %s\n",
			       what, ret, cpu_op_errno_name(err),
			       cpu_op_errno_name(want_errno));
	else
		ksft_print_msg("%s: returned %d (errno %s), expected %d\n",
			       what, ret, cpu_op_errno_name(err), want_ret);
	return false;
}

#define EXPECT(what, call, want_ret, want_errno) ({			\
	int __ret, __err;						\
	errno = 0;							\
	__ret = (call);							\
	__err = errno;							\
	check(what, __ret, __err, want_ret, want_errno);		\
})

static bool check_val(const char *what, uint64_t got, uint64_t want)
{
	if (got == want)
		return true;
	ksft_print_msg("%s: value 0x%llx, expected 0x%llx\n", what,
		       (unsigned long long)got, (unsigned long long)want);
	return false;
}

static uint64_t load(void *p, size_t len)
{
	switch (len) {
	case 1:
		return *(uint8_t *)p;
	case 2:
		return *(uint16_t *)p;
	case 4:
		return *(uint32_t *)p;
	default:
		return *(uint64_t *)p;
	}
}

static void store(void *p, size_t len, uint64_t v)
{
	switch (len) {
	case 1:
		*(uint8_t *)p = v;
		break;
	case 2:
		*(uint16_t *)p = v;
		break;
	case 4:
		*(uint32_t *)p = v;
		break;
	default:
		*(uint64_t *)p = v;
		break;
	}
}

static void test_probe_flags(void)
{
	bool ok = true;

	ok &= EXPECT("NR_FLAG, cpu -1", cpu_opv(NULL, 0, -1, CPU_OP_NR_FLAG),
		     NR_CPU_OPS, 0);
	ok &= EXPECT("NR_FLAG, cpu 0", cpu_opv(NULL, 0, 0, CPU_OP_NR_FLAG),
		     NR_CPU_OPS, 0);
	ok &= EXPECT("NR_FLAG ignores other arguments",
		     cpu_opv((void *)1, 1000, INT_MAX, CPU_OP_NR_FLAG),
		     NR_CPU_OPS, 0);
	ok &= EXPECT("VEC_LEN_MAX_FLAG",
		     cpu_opv(NULL, -5, -1, CPU_OP_VEC_LEN_MAX_FLAG),
		     CPU_OP_VEC_LEN_MAX, 0);
	ok &= check_val("CPU_OP_VEC_LEN_MAX", CPU_OP_VEC_LEN_MAX, 16);
	ok &= check_val("CPU_OP_DATA_LEN_MAX", CPU_OP_DATA_LEN_MAX, 4096);
	ok &= check_val("CPU_OP_VEC_DATA_LEN_MAX", CPU_OP_VEC_DATA_LEN_MAX, 4216);
	ksft_test_result(ok, "probe flags\n");
}

static void test_bad_flags(void)
{
	struct cpu_op mb[] = { MB() };
	int cpu = cpu_op_get_current_cpu();
	bool ok = true;

	ok &= EXPECT("both probe flags",
		     cpu_opv(NULL, 0, -1, CPU_OP_NR_FLAG | CPU_OP_VEC_LEN_MAX_FLAG),
		     0, EINVAL);
	ok &= EXPECT("flag 1 << 2", cpu_opv(mb, 1, cpu, 1 << 2), 0, EINVAL);
	ok &= EXPECT("flag 1 << 31", cpu_opv(mb, 1, cpu, INT_MIN), 0, EINVAL);
	ok &= EXPECT("NR_FLAG | 1 << 2",
		     cpu_opv(NULL, 0, -1, CPU_OP_NR_FLAG | 1 << 2), 0, EINVAL);
	ksft_test_result(ok, "unknown or combined flags: EINVAL\n");
}

static void test_opcnt(void)
{
	struct cpu_op ops[CPU_OP_VEC_LEN_MAX + 1];
	intptr_t x = 0;
	bool ok = true;
	int i;

	for (i = 0; i < (int)ARRAY_SIZE(ops); i++)
		ops[i] = (struct cpu_op)ARITH(CPU_ADD_OP, &x, 1, sizeof(x));
	ok &= EXPECT("opcnt 0", run(ops, 0), 0, 0);
	ok &= EXPECT("opcnt 16", run(ops, 16), 0, 0);
	ok &= check_val("16 adds", x, 16);
	ok &= EXPECT("opcnt 17", run(ops, 17), 0, EINVAL);
	ok &= EXPECT("opcnt -1", run(ops, -1), 0, EINVAL);
	ok &= EXPECT("opcnt INT_MIN", run(ops, INT_MIN), 0, EINVAL);
	ok &= check_val("rejected vectors did nothing", x, 16);
	ksft_test_result(ok, "opcnt 0..16 run, <0 and >16 EINVAL\n");
}

static const size_t data_lens[] = { 1, 2, 3, 4, 8, 13, 64, 4095, 4096 };

static void test_compare(int op, const char *name)
{
	static char a[4096 + 1], b[4096 + 1];
	int equal_ret = op == CPU_COMPARE_EQ_OP ? 0 : 1;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(data_lens); i++) {
		size_t len = data_lens[i];
		char what[64];
		/* Offset 1: unaligned operands are compared byte-wise. */
		struct cpu_op ops[] = { CMP(op, a + (len & 1), b, len) };

		memset(a, 0x5a, sizeof(a));
		memset(b, 0x5a, sizeof(b));
		snprintf(what, sizeof(what), "%s len %zu equal", name, len);
		ok &= EXPECT(what, run(ops, 1), equal_ret, 0);
		b[len - 1] ^= 1;
		snprintf(what, sizeof(what), "%s len %zu last byte differs", name, len);
		ok &= EXPECT(what, run(ops, 1), !equal_ret, 0);
		b[len - 1] ^= 1;
		b[0] ^= 0x80;
		snprintf(what, sizeof(what), "%s len %zu first byte differs", name, len);
		ok &= EXPECT(what, run(ops, 1), !equal_ret, 0);
	}
	ksft_test_result(ok, "%s: stops the vector on %s\n", name,
			 equal_ret ? "equal" : "difference");
}

static void test_compare_eq(void)
{
	test_compare(CPU_COMPARE_EQ_OP, "COMPARE_EQ");
}

static void test_compare_ne(void)
{
	test_compare(CPU_COMPARE_NE_OP, "COMPARE_NE");
}

static void test_stop_no_rollback(void)
{
	intptr_t x = 0, y = 0, one = 1, two = 2;
	struct cpu_op ops[] = {
		ARITH(CPU_ADD_OP, &x, 1, sizeof(x)),
		CMP(CPU_COMPARE_EQ_OP, &one, &two, sizeof(one)),
		ARITH(CPU_ADD_OP, &y, 1, sizeof(y)),
	};
	struct cpu_op ops2[] = {
		ARITH(CPU_ADD_OP, &x, 1, sizeof(x)),
		CMP(CPU_COMPARE_EQ_OP, &one, &one, sizeof(one)),
		CMP(CPU_COMPARE_NE_OP, &two, &two, sizeof(two)),
		ARITH(CPU_ADD_OP, &y, 1, sizeof(y)),
	};
	bool ok = true;

	ok &= EXPECT("compare fails at op 1", run(ops, 3), 2, 0);
	ok &= check_val("op 0 took effect", x, 1);
	ok &= check_val("op 2 did not run", y, 0);
	ok &= EXPECT("compare fails at op 2", run(ops2, 4), 3, 0);
	ok &= check_val("op 0 took effect", x, 2);
	ok &= check_val("op 3 did not run", y, 0);
	ksft_test_result(ok, "failed compare n-1 returns n, no rollback\n");
}

static void test_memcpy(int op, const char *name)
{
	static char src[4096 + 2], dst[4096 + 4];
	bool ok = true;
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(data_lens); i++) {
		size_t len = data_lens[i], off = len & 1;
		struct cpu_op ops[] = { MEMCPY(op, dst + 1 + off, src + off, len) };
		char what[64];

		for (j = 0; j < sizeof(src); j++)
			src[j] = j * 7 + 1;
		memset(dst, 0, sizeof(dst));
		snprintf(what, sizeof(what), "%s len %zu", name, len);
		ok &= EXPECT(what, run(ops, 1), 0, 0);
		if (memcmp(dst + 1 + off, src + off, len) || dst[off] ||
		    dst[1 + off + len]) {
			ksft_print_msg("%s: wrong bytes copied\n", what);
			ok = false;
		}
	}
	/* A 4096-byte operand at page offset 1 spans two pages. */
	memset(RW(0), 0x11, 2 * page);
	{
		struct cpu_op ops[] = { MEMCPY(op, RW(1), src, 4096) };

		ok &= EXPECT("len 4096 over two pages", run(ops, 1), 0, 0);
		ok &= check_val("copied over two pages",
				!memcmp(RW(1), src, 4096), 1);
	}
	ksft_test_result(ok, "%s: lengths 1..4096, unaligned, two pages\n", name);
}

static void test_memcpy_plain(void)
{
	test_memcpy(CPU_MEMCPY_OP, "MEMCPY");
}

static void test_memcpy_release(void)
{
	test_memcpy(CPU_MEMCPY_RELEASE_OP, "MEMCPY_RELEASE");
}

struct arith_case {
	int op;
	size_t len;
	uint64_t init, arg, want;
};

static const struct arith_case arith_cases[] = {
	{ CPU_ADD_OP, 1, 0xff, 1, 0 },
	{ CPU_ADD_OP, 2, 0xffff, 1, 0 },
	{ CPU_ADD_OP, 4, 0xffffffff, 1, 0 },
	{ CPU_ADD_OP, 8, ~0ULL, 1, 0 },
	{ CPU_ADD_OP, 4, 10, 5, 15 },
	{ CPU_ADD_OP, 8, 5, (uint64_t)-7, (uint64_t)-2 },
	{ CPU_ADD_RELEASE_OP, 1, 0x80, 0x80, 0 },
	{ CPU_ADD_RELEASE_OP, 8, 1, 41, 42 },
	{ CPU_OR_OP, 1, 0xf0, 0x0f, 0xff },
	{ CPU_OR_OP, 8, 0xf0f0f0f0f0f0f0f0ULL, 0x0f0f0f0f0f0f0f0fULL, ~0ULL },
	{ CPU_AND_OP, 2, 0xffff, 0x0ff0, 0x0ff0 },
	{ CPU_AND_OP, 8, ~0ULL, 0x8000000000000001ULL, 0x8000000000000001ULL },
	{ CPU_XOR_OP, 4, 0xffffffff, 0x0f0f0f0f, 0xf0f0f0f0 },
	{ CPU_XOR_OP, 8, 0x1234, 0x1234, 0 },
	{ CPU_LSHIFT_OP, 1, 0x81, 1, 0x02 },
	{ CPU_LSHIFT_OP, 8, 1, 63, 1ULL << 63 },
	{ CPU_RSHIFT_OP, 2, 0x8000, 15, 1 },
	{ CPU_RSHIFT_OP, 4, 0x80000000, 31, 1 },
	{ CPU_RSHIFT_OP, 8, ~0ULL, 0, ~0ULL },
};

static struct cpu_op arith_op(int op, void *p, uint64_t arg, size_t len)
{
	struct cpu_op o = { .op = op, .len = len };

	switch (op) {
	case CPU_ADD_OP:
	case CPU_ADD_RELEASE_OP:
		o.u.arithmetic_op.p = CPU_OP_PTR(p);
		o.u.arithmetic_op.count = arg;
		break;
	case CPU_LSHIFT_OP:
	case CPU_RSHIFT_OP:
		o.u.shift_op.p = CPU_OP_PTR(p);
		o.u.shift_op.bits = arg;
		break;
	default:
		o.u.bitwise_op.p = CPU_OP_PTR(p);
		o.u.bitwise_op.mask = arg;
		break;
	}
	return o;
}

static void test_arith(void)
{
	static const char * const names[] = {
		[CPU_ADD_OP] = "ADD", [CPU_OR_OP] = "OR", [CPU_AND_OP] = "AND",
		[CPU_XOR_OP] = "XOR", [CPU_LSHIFT_OP] = "LSHIFT",
		[CPU_RSHIFT_OP] = "RSHIFT", [CPU_ADD_RELEASE_OP] = "ADD_RELEASE",
	};
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(arith_cases); i++) {
		const struct arith_case *c = &arith_cases[i];
		/* The operand sits between guard words that must not change. */
		uint64_t buf[3] = { ~0ULL, 0, ~0ULL };
		struct cpu_op ops[] = { arith_op(c->op, &buf[1], c->arg, c->len) };
		char what[64];

		store(&buf[1], c->len, c->init);
		snprintf(what, sizeof(what), "%s len %zu 0x%llx by 0x%llx",
			 names[c->op], c->len, (unsigned long long)c->init,
			 (unsigned long long)c->arg);
		ok &= EXPECT(what, run(ops, 1), 0, 0);
		ok &= check_val(what, load(&buf[1], c->len), c->want);
		ok &= check_val("guard words", buf[0] & buf[2], ~0ULL);
		if (c->len < 8) {
			uint64_t rest = buf[1];

			store(&rest, c->len, 0);
			ok &= check_val("bytes beyond len", rest, 0);
		}
	}
	ksft_test_result(ok, "ADD, ADD_RELEASE, OR, AND, XOR, LSHIFT, RSHIFT: 1, 2, 4, 8 bytes\n");
}

static void test_shift_limit(void)
{
	static const size_t lens[] = { 1, 2, 4, 8 };
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		uint64_t v = 1;
		struct cpu_op l[] = { SHIFT(CPU_LSHIFT_OP, &v, 8 * lens[i], lens[i]) };
		struct cpu_op r[] = { SHIFT(CPU_RSHIFT_OP, &v, 8 * lens[i], lens[i]) };
		struct cpu_op max[] = { SHIFT(CPU_LSHIFT_OP, &v, 8 * lens[i] - 1, lens[i]) };
		char what[64];

		snprintf(what, sizeof(what), "LSHIFT len %zu by %zu", lens[i], 8 * lens[i]);
		ok &= EXPECT(what, run(l, 1), 0, EINVAL);
		snprintf(what, sizeof(what), "RSHIFT len %zu by %zu", lens[i], 8 * lens[i]);
		ok &= EXPECT(what, run(r, 1), 0, EINVAL);
		snprintf(what, sizeof(what), "LSHIFT len %zu by %zu", lens[i], 8 * lens[i] - 1);
		ok &= EXPECT(what, run(max, 1), 0, 0);
	}
	ksft_test_result(ok, "shift by bits >= 8 * len: EINVAL\n");
}

static void test_mb(void)
{
	intptr_t x = 0;
	struct cpu_op ops[] = {
		ARITH(CPU_ADD_OP, &x, 1, sizeof(x)), MB(),
		ARITH(CPU_ADD_OP, &x, 1, sizeof(x)),
	};
	struct cpu_op bad[] = { { .op = CPU_MB_OP, .len = 8 } };
	bool ok = true;

	ok &= EXPECT("ADD, MB, ADD", run(ops, 3), 0, 0);
	ok &= check_val("both adds ran", x, 2);
	ok &= EXPECT("MB with len 8", run(bad, 1), 0, EINVAL);
	ksft_test_result(ok, "MB: len 0 runs, other len EINVAL\n");
}

static void test_bad_len(void)
{
	static char a[2 * 4096], b[2 * 4096];
	intptr_t x = 0;
	struct cpu_op cases[][2] = {
		{ ARITH(CPU_ADD_OP, &x, 1, 0) },
		{ ARITH(CPU_ADD_OP, &x, 1, 3) },
		{ ARITH(CPU_ADD_RELEASE_OP, &x, 1, 16) },
		{ BITWISE(CPU_OR_OP, &x, 1, 5) },
		{ BITWISE(CPU_XOR_OP, &x, 1, 0) },
		{ SHIFT(CPU_RSHIFT_OP, &x, 1, 6) },
		{ CMP(CPU_COMPARE_EQ_OP, a, b, 4097) },
		{ CMP(CPU_COMPARE_NE_OP, a, b, UINT32_MAX) },
		{ MEMCPY(CPU_MEMCPY_OP, a, b, 4097) },
		{ MEMCPY(CPU_MEMCPY_RELEASE_OP, a, b, 1U << 31) },
		/* A valid op before a bad one: nothing runs. */
		{ ARITH(CPU_ADD_OP, &x, 1, sizeof(x)), ARITH(CPU_ADD_OP, &x, 1, 7) },
	};
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char what[64];
		int n = 1;

		if (cases[i][1].len)
			n = 2;

		snprintf(what, sizeof(what), "case %zu: op %d len %u", i,
			 cases[i][n - 1].op, cases[i][n - 1].len);
		ok &= EXPECT(what, run(cases[i], n), 0, EINVAL);
	}
	ok &= check_val("no op of a rejected vector ran", x, 0);
	ksft_test_result(ok, "bad len: EINVAL before any op runs\n");
}

static void test_unknown_op(void)
{
	static const int bad_ops[] = { NR_CPU_OPS, NR_CPU_OPS + 1, -1, INT_MAX, INT_MIN };
	intptr_t x = 0;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad_ops); i++) {
		struct cpu_op ops[] = { ARITH(bad_ops[i], &x, 1, sizeof(x)) };
		char what[32];

		snprintf(what, sizeof(what), "op %d", bad_ops[i]);
		ok &= EXPECT(what, run(ops, 1), 0, EINVAL);
	}
	ok &= check_val("nothing ran", x, 0);
	ksft_test_result(ok, "unknown op: EINVAL\n");
}

static uint64_t load_n(const void *p, unsigned int len)
{
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (len) {
	case 2:
		memcpy(&v16, p, 2);
		return v16;
	case 4:
		memcpy(&v32, p, 4);
		return v32;
	default:
		memcpy(&v64, p, 8);
		return v64;
	}
}

static void store_n(void *p, unsigned int len, uint64_t v)
{
	uint16_t v16 = v;
	uint32_t v32 = v;

	memcpy(p, len == 2 ? (void *)&v16 : len == 4 ? (void *)&v32 : (void *)&v, len);
}

/*
 * Unaligned operands are legal (cpu_opv(2): they are accessed byte-wise):
 * the result is the same as for an aligned one, and the bytes around the
 * operand are untouched.
 */
static void test_misaligned(void)
{
	bool ok = true;
	int i;

	for (i = 0; i < 5; i++) {
		uint64_t buf[3] = { 0 };
		char *p = (char *)buf + 1;
		struct cpu_op cases[] = {
			ARITH(CPU_ADD_OP, p, 1, 2),
			ARITH(CPU_ADD_OP, p, 1, 4),
			ARITH(CPU_ADD_RELEASE_OP, p, 1, 8),
			BITWISE(CPU_OR_OP, p, 1, 8),
			SHIFT(CPU_LSHIFT_OP, p, 1, 4),
		};
		static const uint64_t want[] = { 0x41, 0x41, 0x41, 0x41, 0x80 };
		unsigned int len = cases[i].len;
		char what[48];
		size_t j;

		store_n(p, len, 0x40);
		snprintf(what, sizeof(what), "op %d len %u at odd address",
			 cases[i].op, len);
		ok &= EXPECT(what, run(&cases[i], 1), 0, 0);
		ok &= check_val(what, load_n(p, len), want[i]);
		for (j = 0; j < sizeof(buf); j++)
			if ((j < 1 || j >= 1 + len) && ((char *)buf)[j])
				ok &= check_val("byte next to the operand", ((char *)buf)[j], 0);
	}
	ksft_test_result(ok, "misaligned arithmetic operand: accepted, same result\n");
}

static void test_vec_data_len(void)
{
	static char a[4096], b[4096];
	struct cpu_op ops[CPU_OP_VEC_LEN_MAX];
	uint64_t x = 0;
	bool ok = true;
	int i;

	ops[0] = (struct cpu_op)MEMCPY(CPU_MEMCPY_OP, a, b, 4096);
	for (i = 1; i < CPU_OP_VEC_LEN_MAX; i++)
		ops[i] = (struct cpu_op)ARITH(CPU_ADD_OP, &x, 1, 8);
	ok &= EXPECT("total 4216", run(ops, CPU_OP_VEC_LEN_MAX), 0, 0);
	ok &= check_val("15 adds", x, 15);
	ops[CPU_OP_VEC_LEN_MAX - 1] = (struct cpu_op)CMP(CPU_COMPARE_EQ_OP, a, b, 9);
	ok &= EXPECT("total 4217", run(ops, CPU_OP_VEC_LEN_MAX), 0, EINVAL);
	ops[1] = (struct cpu_op)MEMCPY(CPU_MEMCPY_OP, a, b, 4096);
	ok &= EXPECT("two 4096-byte memcpy", run(ops, 2), 0, EINVAL);
	ok &= check_val("rejected vectors did nothing", x, 15);
	ksft_test_result(ok, "vector data total: 4216 runs, 4217 EINVAL\n");
}

static void test_cpu_args(void)
{
	intptr_t x = 0;
	bool ok = true;

	ok &= EXPECT("cpu -1", cpu_op_addv(&x, 1, -1), 0, EINVAL);
	ok &= EXPECT("cpu INT_MIN", cpu_op_addv(&x, 1, INT_MIN), 0, EINVAL);
	ok &= EXPECT("cpu nr_possible", cpu_op_addv(&x, 1, nr_possible), 0, EINVAL);
	ok &= EXPECT("cpu INT_MAX", cpu_op_addv(&x, 1, INT_MAX), 0, EINVAL);
	ok &= check_val("nothing ran", x, 0);
	ksft_test_result(ok, "cpu < 0 or not possible: EINVAL\n");
}

static void test_each_cpu(void)
{
	int cpu, n = 0, landed = 0;
	intptr_t x = 0;
	bool ok = true;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		char what[32];

		if (!CPU_ISSET(cpu, &allowed))
			continue;
		snprintf(what, sizeof(what), "add on cpu %d", cpu);
		ok &= EXPECT(what, cpu_op_addv(&x, 1, cpu), 0, 0);
		n++;
		landed += sched_getcpu() == cpu;
	}
	ok &= check_val("one add per CPU", x, n);
	ksft_print_msg("thread found on the target CPU right after %d of %d calls\n",
		       landed, n);
	ksft_test_result(ok, "runs on each allowed CPU\n");
}

static int second_allowed_cpu(void)
{
	int cpu, seen = 0;

	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &allowed) && seen++)
			return cpu;
	return -1;
}

static void test_cpu_not_allowed(void)
{
	int other = second_allowed_cpu(), self;
	cpu_set_t one;
	intptr_t x = 0;
	bool ok = true;

	if (other < 0) {
		ksft_test_result_skip("cpu not in allowed mask: needs 2 CPUs\n");
		return;
	}
	self = other - 1;
	while (!CPU_ISSET(self, &allowed))
		self--;
	CPU_ZERO(&one);
	CPU_SET(self, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		ksft_exit_fail_msg("sched_setaffinity: %s\n", strerror(errno));
	ok &= EXPECT("cpu outside affinity", cpu_op_addv(&x, 1, other), 0, EINVAL);
	ok &= EXPECT("cpu inside affinity", cpu_op_addv(&x, 1, self), 0, 0);
	ok &= check_val("only the allowed add ran", x, 1);
	if (sched_setaffinity(0, sizeof(allowed), &allowed))
		ksft_exit_fail_msg("sched_setaffinity: %s\n", strerror(errno));
	ksft_test_result(ok, "cpu not in the allowed mask: EINVAL\n");
}

static void test_offline_cpu(void)
{
	int cpu = second_allowed_cpu();
	intptr_t x = 0, expect = 1, newv = 5;
	bool ok = true;

	if (cpu < 0 || geteuid() || cpu_op_set_online(cpu, false)) {
		ksft_test_result_skip("offline cpu: needs root, 2 CPUs and CPU hotplug (%s)\n",
				      cpu < 0 ? "one CPU" : geteuid() ? "not root" :
				      strerror(errno));
		return;
	}
	ok &= EXPECT("add on offline cpu", cpu_op_addv(&x, 1, cpu), 0, 0);
	ok &= EXPECT("cmpeqv_storev on offline cpu",
		     cpu_op_cmpeqv_storev(&x, expect, newv, cpu), 0, 0);
	ok &= check_val("ops ran", x, 5);
	if (cpu_op_set_online(cpu, true))
		ksft_exit_fail_msg("cannot bring cpu %d back online: %s\n",
				   cpu, strerror(errno));
	ksft_test_result(ok, "possible but offline cpu: runs\n");
}

static void test_efault_vector(void)
{
	/* Two ops, the second one on the PROT_NONE page. */
	struct cpu_op *straddle = (struct cpu_op *)(NONE - sizeof(*straddle));
	intptr_t x = 0;
	bool ok = true;

	*straddle = (struct cpu_op)ARITH(CPU_ADD_OP, &x, 1, sizeof(x));
	ok &= EXPECT("vector NULL", cpu_opv(NULL, 1, cpu_op_get_current_cpu(), 0),
		     0, EFAULT);
	ok &= EXPECT("vector PROT_NONE", run((struct cpu_op *)NONE, 1), 0, EFAULT);
	ok &= EXPECT("vector unmapped", run((struct cpu_op *)UNMAPPED, 1), 0, EFAULT);
	ok &= EXPECT("vector kernel address",
		     run((struct cpu_op *)(uintptr_t)KERNEL_ADDR, 1), 0, EFAULT);
	ok &= EXPECT("vector straddling into PROT_NONE", run(straddle, 2), 0, EFAULT);
	ok &= check_val("first op did not run", x, 0);
	ksft_test_result(ok, "vector not readable: EFAULT\n");
}

static void test_efault_operands(void)
{
	intptr_t x = 0, y = 0;
	char *rofile;
	bool ok = true;
	int fd;

	fd = open("/proc/self/exe", O_RDONLY);
	rofile = fd < 0 ? MAP_FAILED : mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	if (rofile == MAP_FAILED)
		ksft_exit_fail_msg("read-only file mapping: %s\n", strerror(errno));
	{
		struct cpu_op cases[] = {
			CMP(CPU_COMPARE_EQ_OP, UNMAPPED, &x, sizeof(x)),
			CMP(CPU_COMPARE_NE_OP, &x, NONE, sizeof(x)),
			CMP(CPU_COMPARE_EQ_OP, NULL, &x, sizeof(x)),
			CMP(CPU_COMPARE_EQ_OP, &x, KERNEL_ADDR, sizeof(x)),
			MEMCPY(CPU_MEMCPY_OP, &x, NONE, sizeof(x)),
			/* Half of it mapped, whatever sizeof(x) is (4 on 32-bit). */
			MEMCPY(CPU_MEMCPY_OP, &x, NONE - sizeof(x) / 2, sizeof(x)),
			MEMCPY(CPU_MEMCPY_OP, RO, &x, sizeof(x)),
			MEMCPY(CPU_MEMCPY_OP, NONE, &x, sizeof(x)),
			MEMCPY(CPU_MEMCPY_RELEASE_OP, rofile, &x, sizeof(x)),
			MEMCPY(CPU_MEMCPY_OP, KERNEL_ADDR, &x, sizeof(x)),
			ARITH(CPU_ADD_OP, RO, 1, 8),
			ARITH(CPU_ADD_RELEASE_OP, UNMAPPED, 1, 8),
			BITWISE(CPU_OR_OP, rofile, 1, 8),
			SHIFT(CPU_LSHIFT_OP, KERNEL_ADDR, 1, 8),
		};
		static const char * const names[] = {
			"compare a unmapped", "compare b PROT_NONE",
			"compare a NULL", "compare b kernel address",
			"memcpy src PROT_NONE", "memcpy src half mapped",
			"memcpy dst read-only", "memcpy dst PROT_NONE",
			"memcpy_release dst read-only file mapping",
			"memcpy dst kernel address", "add p read-only",
			"add_release p unmapped", "or p read-only file mapping",
			"lshift p kernel address",
		};
		size_t i;

		for (i = 0; i < ARRAY_SIZE(cases); i++) {
			/* An add before the faulting op must not run. */
			struct cpu_op ops[] = {
				ARITH(CPU_ADD_OP, &y, 1, sizeof(y)), cases[i],
			};

			ok &= EXPECT(names[i], run(ops, 2), 0, EFAULT);
		}
	}
	ok &= check_val("no op of a faulting vector ran", y, 0);
	munmap(rofile, page);
	close(fd);
	ksft_test_result(ok, "operand not mapped, not writable or kernel: EFAULT\n");
}

/*
 * [vvar] is a VM_PFNMAP or VM_IO special mapping on most architectures:
 * cpu_opv must refuse it. Where it is made of ordinary pages (32-bit arm),
 * reading it is as legitimate as any read-only mapping: SKIP there.
 * /proc/self/smaps says which ("pf" or "io" in its VmFlags).
 */
static void test_efault_pfnmap(void)
{
	unsigned long start = 0, end;
	bool in_vvar = false, pfnmap = false;
	char line[256], flags[256] = "";
	intptr_t x = 0;
	FILE *smaps = fopen("/proc/self/smaps", "r");

	while (smaps && fgets(line, sizeof(line), smaps)) {
		if (strstr(line, "[vvar]") &&
		    sscanf(line, "%lx-%lx", &start, &end) == 2) {
			in_vvar = true;
		} else if (in_vvar && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, sizeof(flags), "%s", line + 8);
			flags[strcspn(flags, "\n")] = 0;
			pfnmap = strstr(line, " pf") || strstr(line, " io");
			break;
		}
	}
	if (smaps)
		fclose(smaps);
	if (!start) {
		ksft_test_result_skip("PFN-mapped operand: no [vvar] mapping\n");
		return;
	}
	if (!pfnmap) {
		ksft_test_result_skip("PFN-mapped operand: [vvar] not pf or io:%s\n",
				      flags);
		return;
	}
	{
		struct cpu_op ops[] = {
			CMP(CPU_COMPARE_EQ_OP, &x, start, sizeof(x)),
		};

		ksft_test_result(EXPECT("compare b in [vvar]", run(ops, 1), 0, EFAULT),
				 "PFN-mapped operand ([vvar]): EFAULT\n");
	}
}

static void test_eagain(void)
{
	intptr_t x = 0;
	struct cpu_op cases[] = {
		CMP(CPU_COMPARE_EQ_OP, UNMAPPED, &x, sizeof(x)),
		CMP(CPU_COMPARE_NE_OP, &x, NONE, sizeof(x)),
		MEMCPY(CPU_MEMCPY_OP, &x, UNMAPPED, sizeof(x)),
		MEMCPY(CPU_MEMCPY_RELEASE_OP, UNMAPPED, &x, sizeof(x)),
		ARITH(CPU_ADD_OP, UNMAPPED, 1, 8),
		BITWISE(CPU_AND_OP, NONE, 1, 8),
		SHIFT(CPU_RSHIFT_OP, UNMAPPED, 1, 8),
	};
	static const char * const names[] = {
		"compare a", "compare b", "memcpy src", "memcpy_release dst",
		"add p", "and p", "rshift p",
	};
	bool ok = true;
	size_t i;

	cases[0].u.compare_op.expect_fault_a = 1;
	cases[1].u.compare_op.expect_fault_b = 1;
	cases[2].u.memcpy_op.expect_fault_src = 1;
	cases[3].u.memcpy_op.expect_fault_dst = 1;
	cases[4].u.arithmetic_op.expect_fault_p = 1;
	cases[5].u.bitwise_op.expect_fault_p = 1;
	cases[6].u.shift_op.expect_fault_p = 1;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		ok &= EXPECT(names[i], run(&cases[i], 1), 0, EAGAIN);

	/* expect_fault on the other operand: still EFAULT. */
	cases[0].u.compare_op.expect_fault_a = 0;
	cases[0].u.compare_op.expect_fault_b = 1;
	ok &= EXPECT("compare a faults, expect_fault_b set", run(cases, 1), 0, EFAULT);
	cases[2].u.memcpy_op.expect_fault_src = 0;
	cases[2].u.memcpy_op.expect_fault_dst = 1;
	ok &= EXPECT("memcpy src faults, expect_fault_dst set",
		     run(&cases[2], 1), 0, EFAULT);

	/* expect_fault on mapped operands changes nothing. */
	{
		intptr_t y = 0;
		struct cpu_op ops[] = { ARITH(CPU_ADD_OP, &y, 1, sizeof(y)) };

		ops[0].u.arithmetic_op.expect_fault_p = 1;
		ok &= EXPECT("add with expect_fault, mapped", run(ops, 1), 0, 0);
		ok &= check_val("add ran", y, 1);
	}
	ksft_test_result(ok, "expect_fault operand faulting: EAGAIN\n");
}

/* Bumped by the SIGALRM handler, read by the main loop. */
static sig_atomic_t nr_signals;

static int signals_seen(void)
{
	return __atomic_load_n(&nr_signals, __ATOMIC_RELAXED);
}

static void count_signal(int sig)
{
	(void)sig;
	__atomic_fetch_add(&nr_signals, 1, __ATOMIC_RELAXED);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_signals(void)
{
	struct sigaction sa = { .sa_handler = count_signal };	/* no SA_RESTART */
	struct itimerval it = { { 0, 500 }, { 0, 500 } };
	double deadline = now() + 3;
	long i, n = 0;
	intptr_t x = 0;
	bool ok = true;

	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (i = 0; ok && (signals_seen() < 50 || i < 1000) && now() < deadline; i++) {
		ok &= EXPECT("add under SIGALRM",
			     cpu_op_addv(&x, 1, cpu_op_get_current_cpu()), 0, 0);
		n++;
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_DFL);
	ok &= check_val("adds", x, n);
	ksft_print_msg("%ld calls, %d signals delivered\n", n, signals_seen());
	ksft_test_result(ok, "signals are not an error\n");
}

/*
 * The kernel's ADD is a plain load and store: vectors on the same CPU
 * must be serialized, or concurrent callers lose increments.
 */
#define SERIAL_REPS	2000

static int allowed_cpus[CPU_SETSIZE], nr_allowed;
static intptr_t serial_count[CPU_SETSIZE];
static bool serial_failed;

static void *serial_thread(void *arg)
{
	long id = (long)arg, i;

	for (i = 0; i < SERIAL_REPS; i++) {
		int cpu = allowed_cpus[(id + i) % nr_allowed];

		if (cpu_op_addv(&serial_count[cpu], 1, cpu)) {
			ksft_print_msg("add on cpu %d: errno %s\n", cpu,
				       cpu_op_errno_name(errno));
			__atomic_store_n(&serial_failed, true, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

static void test_serialize(void)
{
	int nr_threads = 2 * nr_allowed, i;
	pthread_t threads[2 * CPU_SETSIZE];
	intptr_t sum = 0;
	bool ok;

	for (i = 0; i < nr_threads; i++)
		if (pthread_create(&threads[i], NULL, serial_thread, (void *)(long)i))
			ksft_exit_fail_msg("pthread_create\n");
	for (i = 0; i < nr_threads; i++)
		pthread_join(threads[i], NULL);
	for (i = 0; i < nr_allowed; i++)
		sum += serial_count[allowed_cpus[i]];
	ok = !__atomic_load_n(&serial_failed, __ATOMIC_RELAXED);
	ok = ok && check_val("total of per-CPU counters", sum,
			     (intptr_t)nr_threads * SERIAL_REPS);
	ksft_test_result(ok, "%d threads adding to every CPU's counter: no lost update\n",
			 nr_threads);
}

static int count_possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	int first, last = -1;
	char sep;

	/* "0-3", "0" or "0-3,8-11": the last number bounds the CPU ids. */
	if (f) {
		while (fscanf(f, "%d%c", &first, &sep) >= 1) {
			last = first;
			if (sep == '\n')
				break;
		}
		fclose(f);
	}
	return last >= 0 ? last + 1 : (int)sysconf(_SC_NPROCESSORS_CONF);
}

int main(void)
{
	void (*tests[])(void) = {
		test_probe_flags, test_bad_flags, test_opcnt,
		test_compare_eq, test_compare_ne, test_stop_no_rollback,
		test_memcpy_plain, test_memcpy_release,
		test_arith, test_shift_limit, test_mb, test_bad_len,
		test_unknown_op, test_misaligned, test_vec_data_len,
		test_cpu_args, test_each_cpu, test_cpu_not_allowed,
		test_offline_cpu, test_efault_vector, test_efault_operands,
		test_efault_pfnmap, test_eagain, test_signals, test_serialize,
	};
	size_t i;

	ksft_print_header();
	if (!cpu_op_available())
		ksft_exit_skip("%s\n", cpu_op_unavailable_reason());

	page = sysconf(_SC_PAGESIZE);
	arena = mmap(NULL, 5 * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || mprotect(NONE, page, PROT_NONE) ||
	    mprotect(RO, page, PROT_READ))
		ksft_exit_fail_msg("test mappings: %s\n", strerror(errno));
	nr_possible = count_possible_cpus();
	nr_allowed = cpu_op_allowed_cpus(allowed_cpus, &allowed);
	if (nr_allowed < 0)
		ksft_exit_fail_msg("sched_getaffinity: %s\n", strerror(errno));

	ksft_set_plan(ARRAY_SIZE(tests));
	for (i = 0; i < ARRAY_SIZE(tests); i++)
		tests[i]();
	ksft_finished();
}
