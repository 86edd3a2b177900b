// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * cpu-op.c: user-space helpers for cpu_opv(2).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>

#include "cpu-op.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* The ABI promises one layout for 32-bit and 64-bit processes. */
#define CHECK_OFFSET(field, off) \
	static_assert(offsetof(struct cpu_op, field) == (off), #field)
static_assert(sizeof(struct cpu_op) == 32, "struct cpu_op is 32 bytes");
CHECK_OFFSET(op, 0);
CHECK_OFFSET(len, 4);
CHECK_OFFSET(u.compare_op.a, 8);
CHECK_OFFSET(u.compare_op.b, 16);
CHECK_OFFSET(u.compare_op.expect_fault_a, 24);
CHECK_OFFSET(u.compare_op.expect_fault_b, 25);
CHECK_OFFSET(u.memcpy_op.dst, 8);
CHECK_OFFSET(u.memcpy_op.src, 16);
CHECK_OFFSET(u.memcpy_op.expect_fault_dst, 24);
CHECK_OFFSET(u.memcpy_op.expect_fault_src, 25);
CHECK_OFFSET(u.arithmetic_op.p, 8);
CHECK_OFFSET(u.arithmetic_op.count, 16);
CHECK_OFFSET(u.arithmetic_op.expect_fault_p, 24);
CHECK_OFFSET(u.bitwise_op.p, 8);
CHECK_OFFSET(u.bitwise_op.mask, 16);
CHECK_OFFSET(u.bitwise_op.expect_fault_p, 24);
CHECK_OFFSET(u.shift_op.p, 8);
CHECK_OFFSET(u.shift_op.bits, 16);
CHECK_OFFSET(u.shift_op.expect_fault_p, 20);

static int probe_state;		/* 0: not probed, 1: cpu_opv, -1: not */
static char unavailable_reason[256];

int cpu_opv(struct cpu_op *ops, int opcnt, int cpu, int flags)
{
	if (!cpu_op_available()) {
		errno = ENOSYS;
		return -1;
	}
	return syscall(__NR_cpu_opv, ops, opcnt, cpu, flags);
}

/* Before 6.13, syscall 463 is either cpu_opv or unallocated (ENOSYS). */
static bool nr_may_be_foreign(struct utsname *u)
{
	unsigned int major, minor;

	if (uname(u) || sscanf(u->release, "%u.%u", &major, &minor) != 2)
		return true;
	return major > 6 || (major == 6 && minor >= 13);
}

bool cpu_op_available(void)
{
	struct utsname u;
	long ret;
	int err;

	if (probe_state)
		return probe_state > 0;
	ret = syscall(__NR_cpu_opv, NULL, 0, -1, CPU_OP_NR_FLAG);
	err = errno;
	if (ret == NR_CPU_OPS) {
		probe_state = 1;
		return true;
	}
	probe_state = -1;
	if (ret == -1 && err == ENOSYS) {
		snprintf(unavailable_reason, sizeof(unavailable_reason),
			 "cpu_opv: ENOSYS, kernel built without CONFIG_CPU_OPV");
	} else if (nr_may_be_foreign(&u)) {
		snprintf(unavailable_reason, sizeof(unavailable_reason),
			 "not a cpu_opv kernel: syscall %d is another system call on Linux %s (probe returned %ld, errno %s)",
			 __NR_cpu_opv, u.release, ret,
			 ret == -1 ? cpu_op_errno_name(err) : "-");
	} else {
		fprintf(stderr,
			"cpu_opv probe: returned %ld, errno %s, on Linux %s: expected %d or ENOSYS\n",
			ret, cpu_op_errno_name(err), u.release, NR_CPU_OPS);
		abort();
	}
	return false;
}

const char *cpu_op_unavailable_reason(void)
{
	return cpu_op_available() ? "" : unavailable_reason;
}

int cpu_op_get_current_cpu(void)
{
	int cpu = sched_getcpu();

	if (cpu < 0) {
		perror("sched_getcpu()");
		abort();
	}
	return cpu;
}

int cpu_op_allowed_cpus(int *cpus, cpu_set_t *mask)
{
	cpu_set_t set;
	int cpu, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus[n++] = cpu;
	if (mask)
		*mask = set;
	return n;
}

int cpu_op_set_online(int cpu, bool online)
{
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online",
		 cpu);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ret = write(fd, online ? "1" : "0", 1) == 1 ? 0 : -1;
	close(fd);
	return ret;
}

/* Stopped by a compare (ret > 0) is 1, whichever compare it was. */
static int cpu_op_run(struct cpu_op *ops, int opcnt, int cpu)
{
	int ret = cpu_opv(ops, opcnt, cpu, 0);

	return ret > 0 ? 1 : ret;
}

#define OP_COMPARE(_op, _a, _b, _len) {					\
	.op = (_op), .len = (_len),					\
	.u.compare_op = { .a = CPU_OP_PTR(_a), .b = CPU_OP_PTR(_b) } }
#define OP_MEMCPY(_op, _dst, _src, _len) {				\
	.op = (_op), .len = (_len),					\
	.u.memcpy_op = { .dst = CPU_OP_PTR(_dst), .src = CPU_OP_PTR(_src) } }

int cpu_op_cmpxchg(void *v, void *expect, void *old, void *n, size_t len,
		   int cpu)
{
	struct cpu_op ops[] = {
		OP_MEMCPY(CPU_MEMCPY_OP, old, v, len),
		OP_COMPARE(CPU_COMPARE_EQ_OP, v, expect, len),
		OP_MEMCPY(CPU_MEMCPY_OP, v, n, len),
	};

	return cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
}

int cpu_op_add(void *v, int64_t count, size_t len, int cpu)
{
	struct cpu_op ops[] = {
		{ .op = CPU_ADD_OP, .len = len,
		  .u.arithmetic_op = { .p = CPU_OP_PTR(v), .count = count } },
	};

	return cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
}

int cpu_op_addv(intptr_t *v, int64_t count, int cpu)
{
	return cpu_op_add(v, count, sizeof(*v), cpu);
}

int cpu_op_cmpeqv_storev(intptr_t *v, intptr_t expect, intptr_t newv, int cpu)
{
	struct cpu_op ops[] = {
		OP_COMPARE(CPU_COMPARE_EQ_OP, v, &expect, sizeof(*v)),
		OP_MEMCPY(CPU_MEMCPY_OP, v, &newv, sizeof(*v)),
	};

	return cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
}

int cpu_op_cmpeqv_cmpeqv_storev(intptr_t *v, intptr_t expect,
				intptr_t *v2, intptr_t expect2,
				intptr_t newv, int cpu)
{
	struct cpu_op ops[] = {
		OP_COMPARE(CPU_COMPARE_EQ_OP, v, &expect, sizeof(*v)),
		OP_COMPARE(CPU_COMPARE_EQ_OP, v2, &expect2, sizeof(*v2)),
		OP_MEMCPY(CPU_MEMCPY_OP, v, &newv, sizeof(*v)),
	};

	return cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
}

int cpu_op_cmpnev_storeoffp_load(intptr_t *v, intptr_t expectnot,
				 long voffp, intptr_t *load, int cpu)
{
	int ret;

	for (;;) {
		intptr_t oldv = __atomic_load_n(v, __ATOMIC_RELAXED);
		struct cpu_op ops[] = {
			OP_COMPARE(CPU_COMPARE_EQ_OP, v, &oldv, sizeof(*v)),
			OP_MEMCPY(CPU_MEMCPY_OP, v, oldv + voffp, sizeof(*v)),
		};

		if (oldv == expectnot)
			return 1;
		ops[1].u.memcpy_op.expect_fault_src = 1;
		ret = cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
		if (!ret) {
			*load = oldv;
			return 0;
		}
		/* *v changed, or the node it pointed to went away: retry. */
		if (ret > 0 || errno == EAGAIN)
			continue;
		return ret;
	}
}

static int cmpeqv_storev_storev(intptr_t *v, intptr_t expect,
				intptr_t *v2, intptr_t newv2,
				intptr_t newv, int cpu, int final_op)
{
	struct cpu_op ops[] = {
		OP_COMPARE(CPU_COMPARE_EQ_OP, v, &expect, sizeof(*v)),
		OP_MEMCPY(CPU_MEMCPY_OP, v2, &newv2, sizeof(*v2)),
		OP_MEMCPY(final_op, v, &newv, sizeof(*v)),
	};

	return cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
}

int cpu_op_cmpeqv_storev_storev(intptr_t *v, intptr_t expect,
				intptr_t *v2, intptr_t newv2,
				intptr_t newv, int cpu)
{
	return cmpeqv_storev_storev(v, expect, v2, newv2, newv, cpu,
				    CPU_MEMCPY_OP);
}

int cpu_op_cmpeqv_storev_storev_release(intptr_t *v, intptr_t expect,
					intptr_t *v2, intptr_t newv2,
					intptr_t newv, int cpu)
{
	return cmpeqv_storev_storev(v, expect, v2, newv2, newv, cpu,
				    CPU_MEMCPY_RELEASE_OP);
}

static int cmpeqv_memcpy_storev(intptr_t *v, intptr_t expect,
				void *dst, void *src, size_t len,
				intptr_t newv, int cpu, int final_op)
{
	struct cpu_op ops[] = {
		OP_COMPARE(CPU_COMPARE_EQ_OP, v, &expect, sizeof(*v)),
		OP_MEMCPY(CPU_MEMCPY_OP, dst, src, len),
		OP_MEMCPY(final_op, v, &newv, sizeof(*v)),
	};

	return cpu_op_run(ops, ARRAY_SIZE(ops), cpu);
}

int cpu_op_cmpeqv_memcpy_storev(intptr_t *v, intptr_t expect,
				void *dst, void *src, size_t len,
				intptr_t newv, int cpu)
{
	return cmpeqv_memcpy_storev(v, expect, dst, src, len, newv, cpu,
				    CPU_MEMCPY_OP);
}

int cpu_op_cmpeqv_memcpy_storev_release(intptr_t *v, intptr_t expect,
					void *dst, void *src, size_t len,
					intptr_t newv, int cpu)
{
	return cmpeqv_memcpy_storev(v, expect, dst, src, len, newv, cpu,
				    CPU_MEMCPY_RELEASE_OP);
}

const char *cpu_op_errno_name(int err)
{
	static const char * const names[] = {
		[EPERM] = "EPERM", [ENOENT] = "ENOENT", [ESRCH] = "ESRCH", [E2BIG] = "E2BIG",
		[EINTR] = "EINTR", [EIO] = "EIO", [EBADF] = "EBADF",
		[EAGAIN] = "EAGAIN", [ENOMEM] = "ENOMEM", [EACCES] = "EACCES",
		[EFAULT] = "EFAULT", [EBUSY] = "EBUSY", [EINVAL] = "EINVAL",
		[ENOSPC] = "ENOSPC", [ERANGE] = "ERANGE", [ENOSYS] = "ENOSYS",
		[EOPNOTSUPP] = "EOPNOTSUPP", [ENODATA] = "ENODATA",
	};
	static __thread char buf[16];

	if (err >= 0 && err < (int)ARRAY_SIZE(names) && names[err])
		return names[err];
	snprintf(buf, sizeof(buf), "%d", err);
	return buf;
}
