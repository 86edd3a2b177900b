#!/bin/bash
# Runs inside the guest for `make evaluate`, as root:
#
#   evaluate.sh RESULTS PROGRAM MODE...
#
# PROGRAM (cpu_opv_eval) once per MODE, its JSON into RESULTS/MODE.json
# and its stderr into RESULTS/MODE.err.  The markers are those of
# run-tests.sh, which the host reads to tell a finished script from a
# dead VM.
set -u
results=$1
prog=$2
shift 2
echo "cpu-opv-guest: start uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(nproc)"
rc=0
for mode in "$@"; do
	case $mode in
	# -H: take a CPU offline and online again (a VM's, never the host's).
	progress) args=(-t 2 -H) ;;
	maxvec)
		args=(-n 200)
		[ -d /sys/kernel/tracing/events ] ||
			mount -t tracefs tracefs /sys/kernel/tracing ||
			echo "cpu-opv-guest: cannot mount tracefs"
		;;
	*) args=(-r 7) ;;
	esac
	echo "cpu-opv-guest: cpu_opv_eval $mode ${args[*]}"
	timeout 300 "$prog" "$mode" "${args[@]}" > "$results/$mode.json" 2> "$results/$mode.err"
	status=$?
	if [ "$status" -ne 0 ]; then
		echo "cpu-opv-guest: cpu_opv_eval $mode exited $status: $(tail -c 300 "$results/$mode.err")"
		rc=1
	fi
done
echo "cpu-opv-guest: done rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
exit $rc
