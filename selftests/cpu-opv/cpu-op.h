/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * cpu-op.h: user-space helpers for cpu_opv(2), the slow path of per-CPU
 * data structures whose fast path is an rseq critical section.
 *
 * Helpers return 0 when every op ran, 1 when a compare stopped the
 * vector (the caller retries or gives up, as with the rseq_*() helpers),
 * and -1 with errno set on error.
 */
#ifndef CPU_OP_H
#define CPU_OP_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <linux/cpu_opv.h>

/* Until the syscall tables of the installed headers carry it. */
#ifndef __NR_cpu_opv
#define __NR_cpu_opv	463
#endif

/* Fill a struct cpu_op field that holds a user pointer. */
#define CPU_OP_PTR(p)	((__u64)(uintptr_t)(p))

int cpu_opv(struct cpu_op *ops, int opcnt, int cpu, int flags);

/*
 * Probe once: true on a cpu_opv kernel. Otherwise false, and
 * cpu_op_unavailable_reason() says why (ENOSYS: no CONFIG_CPU_OPV; or
 * syscall 463 is another system call on this kernel). An unexpected
 * answer on a kernel where 463 can only be cpu_opv is a bug: abort().
 * cpu_opv() refuses (ENOSYS) to send any vector before this probe
 * succeeded, so a vector never reaches a foreign system call.
 */
bool cpu_op_available(void);
const char *cpu_op_unavailable_reason(void);

int cpu_op_get_current_cpu(void);

/*
 * The CPUs this thread may run on, in increasing order: into cpus[],
 * which has room for CPU_SETSIZE entries, and into *mask unless it is
 * NULL. Returns how many, or -1 with errno set. Tests aim only at these
 * CPUs: under isolcpus= or a cpuset, the others refuse a push (EINVAL).
 */
int cpu_op_allowed_cpus(int *cpus, cpu_set_t *mask);

/*
 * Take a CPU offline (online false) or bring it back, through sysfs.
 * Returns 0, or -1 with errno set: not root, no such CPU, or the kernel
 * refused (the last online CPU, or one that cannot be hot-unplugged).
 */
int cpu_op_set_online(int cpu, bool online);

/* *v == *expect ? (*old = *v, *v = *n) : (*old = *v, return 1); len bytes. */
int cpu_op_cmpxchg(void *v, void *expect, void *old, void *n, size_t len,
		   int cpu);
/* *v += count, len 1, 2, 4 or 8. */
int cpu_op_add(void *v, int64_t count, size_t len, int cpu);
int cpu_op_addv(intptr_t *v, int64_t count, int cpu);
int cpu_op_cmpeqv_storev(intptr_t *v, intptr_t expect, intptr_t newv, int cpu);
int cpu_op_cmpeqv_cmpeqv_storev(intptr_t *v, intptr_t expect,
				intptr_t *v2, intptr_t expect2,
				intptr_t newv, int cpu);
/*
 * If *v != expectnot: *load = *v, *v = *(*v + voffp), return 0; else 1.
 * The load through *v may fault when the node was freed and unmapped
 * meanwhile: it is marked expect_fault, and the EAGAIN means "retry".
 */
int cpu_op_cmpnev_storeoffp_load(intptr_t *v, intptr_t expectnot,
				 long voffp, intptr_t *load, int cpu);
int cpu_op_cmpeqv_storev_storev(intptr_t *v, intptr_t expect,
				intptr_t *v2, intptr_t newv2,
				intptr_t newv, int cpu);
int cpu_op_cmpeqv_storev_storev_release(intptr_t *v, intptr_t expect,
					intptr_t *v2, intptr_t newv2,
					intptr_t newv, int cpu);
int cpu_op_cmpeqv_memcpy_storev(intptr_t *v, intptr_t expect,
				void *dst, void *src, size_t len,
				intptr_t newv, int cpu);
int cpu_op_cmpeqv_memcpy_storev_release(intptr_t *v, intptr_t expect,
					void *dst, void *src, size_t len,
					intptr_t newv, int cpu);

/* "EINVAL" for EINVAL: test output names errnos. */
const char *cpu_op_errno_name(int err);

#endif /* CPU_OP_H */
