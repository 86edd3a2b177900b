/* SPDX-License-Identifier: GPL-2.0+ OR MIT */
/*
 * bench.h: the timing of the cpu_opv benchmarks (cpu_opv_bench and
 * cpu_opv_eval).
 *
 * A case is a function that does its operation n times. Every case is
 * timed RUNS times, and in each run the first case (the reference, a
 * getppid() system call) is timed too, so that a case's cost is also a
 * ratio to a system call measured in the same run: under an emulator
 * (QEMU TCG) absolute times say little, ratios still compare.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_RUNS	15

struct bench {
	const char *name;
	long iters;		/* calls per run, before scaling */
	void (*fn)(long n);
	const char *skip;	/* why the case cannot run here, else NULL */
	double ns[BENCH_MAX_RUNS], ratio[BENCH_MAX_RUNS];
};

static inline double bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline double bench_ns_per_call(void (*fn)(long), long n)
{
	double start = bench_now_ns();

	fn(n);
	return (bench_now_ns() - start) / n;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of n values, n <= BENCH_MAX_RUNS; v is left as it was. */
static inline double bench_median(const double *v, int n)
{
	double s[BENCH_MAX_RUNS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), bench_cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static inline double bench_min(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

static inline double bench_max(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

/* RUNS between 1 and BENCH_MAX_RUNS, SCALE above 0: else complain. */
static inline int bench_check_args(const char *prog, int runs, double scale)
{
	if (runs >= 1 && runs <= BENCH_MAX_RUNS && scale > 0)
		return 0;
	fprintf(stderr, "%s: RUNS is 1 to %d, SCALE > 0\n", prog, BENCH_MAX_RUNS);
	return -1;
}

/*
 * Time every case that is not skipped, @runs times over; b[0] is the
 * reference. Each timing follows a warm-up of a tenth of its calls.
 */
static inline void bench_run(struct bench *b, int nb, int runs, double scale)
{
	int r, i;

	for (r = 0; r < runs; r++) {
		for (i = 0; i < nb; i++) {
			long n = b[i].iters * scale;

			if (b[i].skip)
				continue;
			if (n < 1)
				n = 1;
			b[i].fn(n / 10 + 1);
			b[i].ns[r] = bench_ns_per_call(b[i].fn, n);
			b[i].ratio[r] = b[i].ns[r] / b[0].ns[r];
		}
	}
}

/*
 * The cases as JSON members, one a line: the medians over the runs of the
 * time per call and of the ratio to the reference, and the ratio's range;
 * a skipped case says why.
 */
static inline void bench_print_cases(FILE *f, const struct bench *b, int nb,
				     int runs)
{
	int i;

	for (i = 0; i < nb; i++) {
		fprintf(f, "%s\n  \"%s\": ", i ? "," : "", b[i].name);
		if (b[i].skip) {
			fprintf(f, "{\"skip\": \"%s\"}", b[i].skip);
			continue;
		}
		fprintf(f, "{\"ns\": %.1f, \"ratio\": %.4f, ",
			bench_median(b[i].ns, runs), bench_median(b[i].ratio, runs));
		fprintf(f, "\"ratio_min\": %.4f, \"ratio_max\": %.4f}",
			bench_min(b[i].ratio, runs), bench_max(b[i].ratio, runs));
	}
}

#endif /* BENCH_H */
