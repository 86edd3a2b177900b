#!/bin/bash
# Runs inside the guest (virtme-ng --exec) as root: every suite, each
# writing (K)TAP into the results directory, which the host reads after the
# VM has exited.  The host alone judges pass/fail; the markers tell it how
# far the guest got.
set -u
arch=$1
results=$2
# "required" when the kernel was built with CONFIG_CPU_OPV=y: then a
# failing probe fails the suite instead of skipping it.
if [ "${3:-}" = required ]; then
	export CPU_OPV_REQUIRED=1
fi
# quick (every boot-test) or full (make soak): see vm/guest/run-selftests.sh;
# bench (make bench): cpu_opv_bench only; fuzz (make fuzz): the fuzzer only.
export PROFILE=${4:-quick}
# The fuzzer's run, "calls,seed,workers,seconds" (harness/fuzzing.py); none:
# no fuzzing.
IFS=, read -r fuzz_calls fuzz_seed fuzz_workers fuzz_time <<< "${5:-}"
# Seconds since the kernel started, and the CPUs it brought up: the host's
# report shows both (harness.boot.guest_facts).
echo "cpu-opv-guest: start uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(nproc)"
echo "cpu-opv-guest: $arch guest, $(uname -m) kernel $(uname -r)"
cd "$(dirname "$0")/../.." || exit 2
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1
# The host's venv, or the guest root's Python (vm/guest/init says which).
py=${CPU_OPV_PYTHON:-$PWD/build/venv/bin/python}
rc=0

run_fuzz() {
	[ -n "$fuzz_calls" ] || return 0
	echo "cpu-opv-guest: fuzz"
	mkdir -p "$results/fuzz"
	# The fuzzer stops itself at fuzz_time; the timeout is for a hang.
	timeout $((fuzz_time > 0 ? fuzz_time + 300 : 86400)) "$py" -m harness.fuzz \
		--calls "$fuzz_calls" --seed "$fuzz_seed" --workers "$fuzz_workers" \
		--time "$fuzz_time" --tap "$results/fuzz/fuzz.tap" || rc=1
}

if [ "$PROFILE" = fuzz ]; then
	run_fuzz
	dmesg > "$results/dmesg.txt"
	echo "cpu-opv-guest: done rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
	exit $rc
fi

# make bench: the micro-benchmark alone, on an otherwise idle guest.
if [ "$PROFILE" = bench ]; then
	echo "cpu-opv-guest: benchmark"
	# Built next to the results, in build/<arch>-bench/.
	"$(dirname "$results")/selftests/cpu-opv/cpu_opv_bench" > "$results/bench.json" || rc=1
	echo "cpu-opv-guest: done rc=$rc"
	exit $rc
fi

# KUnit ran at boot; keep its KTAP as the kernel printed it.
dmesg > "$results/dmesg-boot.txt"

echo "cpu-opv-guest: pytest suites"
timeout 1200 "$py" -m pytest -p vm.guest.tap_plugin --tap-dir "$results/pytest" \
	-p no:cacheprovider -q -rs --durations=8 --color=no harness/suites || rc=1

# Built by the host next to the results (build/<arch>[-variant]/selftests):
# the DEBUG=1 kernel's run must not depend on the test kernel's directory.
selftests_dir=$(dirname "$results")/selftests
echo "cpu-opv-guest: C selftests"
if [ -d "$selftests_dir" ]; then
	mkdir -p "$results/selftests"
	vm/guest/run-selftests.sh "$selftests_dir" "$results/selftests" || rc=1
else
	echo "cpu-opv-guest: no C selftests in $selftests_dir"
	rc=1
fi

# Last: a bounded fuzz run, on whatever state the suites left.
run_fuzz

dmesg > "$results/dmesg.txt"
echo "cpu-opv-guest: done rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
exit $rc
