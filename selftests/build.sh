#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh ARCH KSRC OUTDIR
#
# Builds static binaries of the cpu_opv selftests (selftests/cpu-opv, built
# as tools/testing/selftests/cpu-opv of KSRC) and of KSRC's own rseq
# selftests, with the kselftest Makefiles, into OUTDIR/cpu-opv and
# OUTDIR/rseq, and writes OUTDIR/kselftest-list.txt ("suite:program"
# lines, what run-selftests.sh runs). KSRC is only read: the selftests
# framework is copied to OUTDIR/.build, the uapi headers are installed
# there from KSRC. A KSRC without include/uapi/linux/cpu_opv.h (vanilla)
# gets the rseq selftests only. Running it again with nothing changed
# rebuilds nothing.
#
# ARCH: a name with a data file in vm/arch/ (x86_64, arm64, arm, powerpc).
# Exit: 0 built, 1 build failed, 2 usage error.

set -euo pipefail

usage() {
	echo "usage: $0 ARCH KSRC OUTDIR  (ARCH: a name in vm/arch/)" >&2
	exit 2
}

[ $# -eq 3 ] || usage
arch=$1
ksrc=$(realpath -e "$2") || usage
out=$(realpath -m "$3")
here=$(dirname "$(realpath "$0")")

# The per-architecture facts (kernel ARCH, cross compiler, extra CFLAGS)
# come from the environment when the harness runs this, else from
# vm/arch/ARCH.toml, their one source.
data=$here/../vm/arch/$arch.toml
[ -f "$data" ] || usage
toml() {
	python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))[sys.argv[2]])' \
		"$data" "$1"
}
karch=${KERNEL_ARCH-$(toml kernel_arch)}
cflags=${SELFTEST_CFLAGS-$(toml selftest_cflags)}
if [ -z "${CROSS_COMPILE+set}" ]; then
	cross=
	[ "$(uname -m)" = "$(toml machine)" ] || cross=$(toml cross_compile)
else
	cross=$CROSS_COMPILE
fi
[ -f "$ksrc/tools/testing/selftests/rseq/rseq.h" ] || {
	echo "$0: $ksrc is not a kernel tree with rseq selftests" >&2
	exit 2
}
command -v "${cross}gcc" >/dev/null || {
	echo "$0: ${cross}gcc not found" >&2
	exit 1
}

scratch=$out/.build
sel=$scratch/tools/testing/selftests
jobs=$(nproc)
mkdir -p "$sel" "$out"

run() {
	echo "+ $*" >&2
	"$@"
}

# uapi headers of KSRC: <linux/rseq.h>, <linux/cpu_opv.h>, <asm/unistd.h>.
run make -s -C "$ksrc" O="$scratch/obj-$arch" ARCH="$karch" \
	INSTALL_HDR_PATH="$scratch/usr-$arch" headers_install
khdr="-isystem $scratch/usr-$arch/include"

# The selftests framework, copied with its timestamps so make stays
# incremental; tools/include is read in place.
run rsync -a "$ksrc/tools/testing/selftests/"{lib.mk,kselftest.h,kselftest_harness.h,kselftest,rseq} "$sel/"
ln -sfn "$ksrc/tools/include" "$scratch/tools/include"

suites=(rseq)
if [ -f "$ksrc/include/uapi/linux/cpu_opv.h" ]; then
	run rsync -a --delete "$here/cpu-opv/" "$sel/cpu-opv/"
	suites+=(cpu-opv)
else
	echo "$0: $ksrc has no include/uapi/linux/cpu_opv.h: rseq selftests only" >&2
fi

kmake() {
	local suite=$1
	shift
	mkdir -p "$scratch/$arch-$suite"
	run make -s -j"$jobs" -C "$sel/$suite" CROSS_COMPILE="$cross" \
		OUTPUT="$scratch/$arch-$suite" KHDR_INCLUDES="$khdr" "$@"
}

# rseq links its programs against librseq.so. Build that shared object
# first without -static, then the programs with -static against a
# librseq.a made by rseq-static.mk.
kmake rseq "$scratch/$arch-rseq/librseq.so"
kmake rseq -f Makefile -f "$here/rseq-static.mk" USERCFLAGS=-static \
	INSTALL_PATH="$out/rseq" install
[ "${#suites[@]}" -lt 2 ] ||
	kmake cpu-opv USERCFLAGS="$cflags" USERLDFLAGS=-static \
		INSTALL_PATH="$out/cpu-opv" install

# The cpu_opv selftests again for each other ABI of this kernel that names a
# compiler in vm/arch/ARCH.toml (x86_64: i386 binaries through the compat
# syscall table), as the suite cpu-opv-ABI.
compat=()
if [ "${#suites[@]}" -ge 2 ]; then
	while IFS='|' read -r name cc hdrarch abicflags; do
		[ -n "$cc" ] || continue
		command -v "${cc}gcc" >/dev/null || {
			echo "$0: ${cc}gcc not found (for the $name selftests)" >&2
			exit 1
		}
		# An ABI of another kernel architecture (arm64's 32-bit arm) needs
		# that architecture's uapi headers: <asm/unistd.h> differs.
		abihdr=$khdr
		if [ -n "$hdrarch" ]; then
			run make -s -C "$ksrc" O="$scratch/obj-$arch-$name" ARCH="$hdrarch" \
				INSTALL_HDR_PATH="$scratch/usr-$arch-$name" headers_install
			abihdr="-isystem $scratch/usr-$arch-$name/include"
		fi
		mkdir -p "$scratch/$arch-cpu-opv-$name"
		run make -s -j"$jobs" -C "$sel/cpu-opv" CROSS_COMPILE="$cc" \
			OUTPUT="$scratch/$arch-cpu-opv-$name" KHDR_INCLUDES="$abihdr" \
			USERCFLAGS="$abicflags" USERLDFLAGS=-static \
			INSTALL_PATH="$out/cpu-opv-$name" install
		compat+=("$name")
	done < <(python3 -c 'import sys, tomllib
for a in tomllib.load(open(sys.argv[1], "rb")).get("abi", []):
	print("|".join(a.get(k, "") for k in ("name", "selftest_cross_compile",
					       "headers_arch", "selftest_cflags")))' "$data")
fi

{
	for suite in "${suites[@]}"; do
		make -s -C "$sel/$suite" OUTPUT="$scratch/$arch-$suite" COLLECTION="$suite" emit_tests
	done
	for name in "${compat[@]}"; do
		make -s -C "$sel/cpu-opv" OUTPUT="$scratch/$arch-cpu-opv-$name" \
			COLLECTION="cpu-opv-$name" emit_tests
	done
} > "$out/kselftest-list.txt"
echo "built $arch: $(wc -l < "$out/kselftest-list.txt") programs in $out (list: $out/kselftest-list.txt)"
