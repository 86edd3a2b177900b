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
# quick (every boot-test) or full (make soak): see selftests/run-in-guest.sh;
# bench (make bench): cpu_opv_bench only.
export PROFILE=${4:-quick}
# Seconds since the kernel started, and the CPUs it brought up: the host's
# report shows both (harness.boot.guest_facts).
echo "cpu-opv-guest: start uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(nproc)"
cd "$(dirname "$0")/../.." || exit 2
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1
# The host's venv, or the guest root's Python (vm/guest/init says which).
py=${CPU_OPV_PYTHON:-$PWD/build/venv/bin/python}
rc=0

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

if [ -d "build/$arch/selftests" ]; then
	echo "cpu-opv-guest: C selftests"
	mkdir -p "$results/selftests"
	selftests/run-in-guest.sh "build/$arch/selftests" "$results/selftests" || rc=1
fi

dmesg > "$results/dmesg.txt"
echo "cpu-opv-guest: done rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
exit $rc
