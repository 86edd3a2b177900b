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
echo "cpu-opv-guest: start"
cd "$(dirname "$0")/../.." || exit 2
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1
py=$PWD/build/venv/bin/python
rc=0

# make bench: the micro-benchmark alone, on an otherwise idle guest.
if [ "$PROFILE" = bench ]; then
	echo "cpu-opv-guest: benchmark"
	"build/$arch/selftests/cpu-opv/cpu_opv_bench" > "$results/bench.json" || rc=1
	echo "cpu-opv-guest: done rc=$rc"
	exit $rc
fi

# KUnit ran at boot; keep its KTAP as the kernel printed it.
dmesg > "$results/dmesg-boot.txt"

echo "cpu-opv-guest: pytest suites"
timeout 1200 "$py" -m pytest -p harness.guest.tap_plugin --tap-dir "$results/pytest" \
	-p no:cacheprovider -q -rs --durations=8 harness/suites || rc=1

if [ -d "build/$arch/selftests" ]; then
	echo "cpu-opv-guest: C selftests"
	mkdir -p "$results/selftests"
	selftests/run-in-guest.sh "build/$arch/selftests" "$results/selftests" || rc=1
fi

dmesg > "$results/dmesg.txt"
echo "cpu-opv-guest: done rc=$rc"
exit $rc
