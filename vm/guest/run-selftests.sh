#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-selftests.sh OUTDIR RESULTSDIR
#
# Runs, in the guest (as root), every program of OUTDIR/kselftest-list.txt
# as written by build.sh, each from its suite directory and under
# `timeout`. For each it writes RESULTSDIR/<suite>/<program>.tap (its TAP
# output; programs that print plain text get a one-test TAP wrapper) and
# RESULTSDIR/<suite>/<program>.rc (its exit code), and prints one summary
# line, also saved in RESULTSDIR/summary.txt.
#
# Status: PASS (exit 0), SKIP (exit 4), TIMEOUT (124/137), FAIL (other).
# Exit: 0 if nothing failed or timed out, 1 otherwise, 2 usage error.
#
# Timeouts: each directory's kselftest `settings` file (timeout=N) when it
# sets one above 0, else the budgets in timeout_for.
#
# Environment: PROFILE, quick or full (default); TIMEOUT, seconds per
# program where no settings file sets a limit (default 120);
# RSEQ_PARAM_ARGS, extra param_test arguments for rseq's
# run_param_test.sh, whose full matrix takes hours under TCG
# (default "-r 50"); RSEQ_PARAM_TIMEOUT (default 600).

if [ $# -ne 2 ] || [ ! -f "$1/kselftest-list.txt" ]; then
	echo "usage: $0 OUTDIR RESULTSDIR (OUTDIR as built by build.sh)" >&2
	exit 2
fi
out=$(realpath "$1")
results=$(realpath -m "$2")
mkdir -p "$results" || exit 2

# kselftest's per-directory settings file (tools/testing/selftests/*/settings,
# installed next to the programs): its last timeout=N line, N seconds for
# every program of the directory, 0 for no limit.  Empty when there is none.
settings_timeout() {
	[ -r "$out/$1/settings" ] || return 0
	sed -n 's/^timeout=\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$out/$1/settings" | tail -n 1
}

# The settings file decides, as in kselftest's runner.  Where it says
# nothing, or 0 (kselftest: no limit), our own bound applies instead, since
# every wait here has a timeout: the programs' budgets under TCG, or
# TIMEOUT.
timeout_for() {
	local limit
	# make soak's 1,000 hotplug cycles, bounded by the program's own -t.
	if [ "$PROFILE:${1#*:}" = full:hotplug_cpu_opv_test ]; then
		echo 1800
		return
	fi
	limit=$(settings_timeout "${1%%:*}")
	if [ -n "$limit" ] && [ "$limit" -gt 0 ]; then
		echo "$limit"
		return
	fi
	case $1 in
	rseq:run_param_test.sh) echo "${RSEQ_PARAM_TIMEOUT:-600}" ;;
	rseq:basic_percpu_ops*) echo "${PERCPU_OPS_TIMEOUT:-1200}" ;;	# 26 s natively, 265 s under TCG
	*) echo "${TIMEOUT:-120}" ;;
	esac
}

args_for() {
	case $PROFILE:$1 in
	*:rseq:run_param_test.sh) echo "${RSEQ_PARAM_ARGS--r 50}" ;;
	quick:cpu-opv*:run_param_test.sh) echo "-q" ;;
	quick:cpu-opv*:hotplug_cpu_opv_test) echo "-c 40 -t 45" ;;
	full:cpu-opv*:hotplug_cpu_opv_test) echo "-c 1000 -t 1500" ;;
	quick:cpu-opv*:mm_race_cpu_opv_test) echo "-t 8" ;;
	# rseq alone never completes the single-stepped increment and the
	# cpu_opv fallback does in ~300 steps: 2,000 steps (~130 aborted rseq
	# attempts) show both.  The default 10,000 kept the guest idle for
	# 35-45 s under TCG, each step a ptrace stop; make soak keeps them.
	quick:cpu-opv*:single_step_test) echo "-s 2000" ;;
	full:cpu-opv*:mm_race_cpu_opv_test) echo "-t 60" ;;
	esac
}

# PROFILE=quick (what every boot-test runs) leaves out the programs whose
# size is fixed and which take 4 to 7 minutes each in a 4-CPU TCG
# guest (measured: 263 s, 265 s and 429 s for rseq's run_param_test.sh); `make
# soak` runs them (PROFILE=full).
PROFILE=${PROFILE:-full}
soak_only() {
	case $PROFILE:$1 in
	quick:rseq:basic_percpu_ops_test | quick:rseq:basic_percpu_ops_mm_cid_test | \
	quick:rseq:run_param_test.sh) return 0 ;;
	esac
	return 1
}

echo "# $(uname -r) $(uname -m), $(nproc) CPUs, uid $(id -u)" | tee "$results/summary.txt"
failed=0
while IFS=: read -r suite prog; do
	[ -n "$prog" ] || continue
	mkdir -p "$results/$suite"
	tap=$results/$suite/$prog.tap
	if soak_only "$suite:$prog"; then
		printf 'TAP version 13\n1..0 # SKIP soak only (4 to 7 min under TCG): make soak\n' > "$tap"
		printf '%-36s %-7s soak only\n' "$suite/$prog" SKIP | tee -a "$results/summary.txt"
		continue
	fi
	limit=$(timeout_for "$suite:$prog")
	start=$SECONDS
	# shellcheck disable=SC2046 # the extra arguments are a word list
	(cd "$out/$suite" && timeout -k 10 "$limit" "./$prog" $(args_for "$suite:$prog")) \
		> "$tap.raw" 2>&1 < /dev/null
	rc=$?
	secs=$((SECONDS - start))
	echo "$rc" > "$results/$suite/$prog.rc"
	case $rc in
	0) status=PASS ;;
	4) status=SKIP ;;
	124 | 137) status=TIMEOUT ;;
	*) status=FAIL ;;
	esac
	if grep -q '^TAP version' "$tap.raw"; then
		mv "$tap.raw" "$tap"
	else
		{
			echo "TAP version 13"
			echo "1..1"
			sed 's/^/# /' "$tap.raw"
			case $status in
			PASS) echo "ok 1 $prog" ;;
			SKIP) echo "ok 1 $prog # SKIP" ;;
			*) echo "not ok 1 $prog # $status, exit $rc" ;;
			esac
		} > "$tap"
		rm -f "$tap.raw"
	fi
	skip=$(grep -c '^ok .*# SKIP' "$tap")
	counts="pass $(($(grep -c '^ok ' "$tap") - skip)), fail $(grep -c '^not ok ' "$tap"), skip $skip"
	printf '%-36s %-7s rc=%-3s %4ss  %s\n' "$suite/$prog" "$status" "$rc" \
		"$secs" "$counts" | tee -a "$results/summary.txt"
	case $status in FAIL | TIMEOUT) failed=1 ;; esac
done < "$out/kselftest-list.txt"
exit $failed
