#!/bin/bash
# SPDX-License-Identifier: GPL-2.0+ OR MIT
#
# run_param_test.sh [-q | -l] [-b SECONDS] [EXTRA cpu_opv_param_test ARGS...]
#
# Walks cpu_opv_param_test over data structures x paths x injections,
# one TAP line per run. The default matrix is sized for a 4-CPU TCG
# guest and stops at a time budget (-b, default 150 s): rows past it are
# SKIPs saying so. -l is a soak: 10x the repetitions, 30 min budget.
# -q is a sample for every boot: each structure on both cpu_opv paths,
# and each injection on one structure in turn (32 rows, about 10 s in a
# TCG guest).
# MODES (environment) overrides the paths of the base rows.

cd "$(dirname "$0")" || exit 1

budget=150
reps=100
quick=0
while [ $# -gt 0 ]; do
	case $1 in
	-l) budget=1800; reps=1000; shift ;;
	-q) quick=1; shift ;;
	-b) budget=$2; shift 2 ;;
	*) break ;;
	esac
done
extra=("$@")
nr_cpus=$(getconf _NPROCESSORS_ONLN)
threads=$((2 * nr_cpus))

tests=("-T s" "-T l" "-T b" "-T b -M" "-T m" "-T m -M" "-T i")
# rseq only (also runs without cpu_opv), rseq with the cpu_opv fallback
# after one abort, cpu_opv only.
# -q leaves out rseq only: upstream rseq's param_test covers it.
if [ $quick -eq 1 ]; then
	read -r -a base_modes <<< "${MODES:--o1 -c}"
else
	read -r -a base_modes <<< "${MODES:--o0 -o1 -c}"
fi
rows=()
for t in "${tests[@]}"; do
	for m in "${base_modes[@]}"; do
		rows+=("$t $m")
	done
done
# Delays inside the rseq critical sections (1-6), before the cpu_opv
# call (7), after commits (8) and before rseq attempts (9).
i=0
for p in 1 2 3 4 5 6 7 8 9; do
	for t in "${tests[@]}"; do
		# -q: one structure per injection point, taking turns.
		if [ $quick -eq 0 ] || [ "$t" = "${tests[i % ${#tests[@]}]}" ]; then
			rows+=("$t -o1 -$p 2000")
		fi
	done
	i=$((i + 1))
done
# Yield, signal and sleep injection, on both slow-path users.
for inj in "-m 4 -y" "-m 2 -k" "-m 10 -s 1"; do
	for p in 7 8 9; do
		for t in "${tests[@]}"; do
			if [ $quick -eq 0 ]; then
				rows+=("$t -o1 -$p -1 $inj" "$t -c -$p -1 $inj")
			elif [ "$t" = "${tests[i % ${#tests[@]}]}" ]; then
				# -q: the two slow-path users take turns too.
				if [ $((i % 2)) -eq 0 ]; then
					rows+=("$t -o1 -$p -1 $inj")
				else
					rows+=("$t -c -$p -1 $inj")
				fi
			fi
		done
		i=$((i + 1))
	done
done

echo "TAP version 13"
echo "1..${#rows[@]}"
start=$SECONDS
n=0
fail=0
pass=0
for row in "${rows[@]}"; do
	n=$((n + 1))
	name="cpu_opv_param_test $row -t $threads -r $reps${extra[*]:+ ${extra[*]}}"
	if [ $((SECONDS - start)) -ge "$budget" ]; then
		echo "ok $n $name # SKIP time budget of ${budget}s spent"
		continue
	fi
	# shellcheck disable=SC2086 # a row is a list of options
	out=$(timeout 60 ./cpu_opv_param_test $row -t "$threads" -r "$reps" "${extra[@]}" 2>&1)
	rc=$?
	case $rc in
	0)	echo "ok $n $name"; pass=$((pass + 1)) ;;
	4)	echo "ok $n $name # SKIP $(sed -n 's/^1\.\.0 # SKIP //p' <<< "$out")" ;;
	*)	echo "not ok $n $name # exit $rc$([ $rc = 124 ] && echo ', timed out')"
		while IFS= read -r line; do echo "# $line"; done <<< "$out"
		fail=$((fail + 1)) ;;
	esac
done
echo "# $pass passed, $fail failed, $((n - pass - fail)) skipped, in $((SECONDS - start))s"
[ "$fail" -eq 0 ] || exit 1
[ "$pass" -gt 0 ] || exit 4
exit 0
