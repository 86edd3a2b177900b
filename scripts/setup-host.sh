#!/usr/bin/env bash
# Install what the host needs to build and boot the test kernels: Debian
# packages (only when one is missing, so a warm run costs a dpkg query) and
# a deb-src entry derived from the existing deb entries, which the fetch
# stage needs for `apt-get source`.  Idempotent; uses sudo when not root.
set -euo pipefail

PKGS=(
	build-essential bc bison flex cpio kmod libelf-dev libssl-dev ccache
	git rsync xz-utils python3-venv udev sparse qemu-utils
	shellcheck	# make lint
)
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || {
		echo "setup: not root and no sudo: install ${PKGS[*]} python3 and the vm/arch/*.toml host_packages by hand" >&2
		exit 2
	}
	SUDO=(sudo)
fi

# deb-src: copy each deb822 stanza of the system's sources with Types: deb-src.
srcfile=/etc/apt/sources.list.d/cpu-opv-deb-src.sources
need_update=0
if [ ! -e "$srcfile" ] && [ -e /etc/apt/sources.list.d/debian.sources ]; then
	sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
		"${SUDO[@]}" tee "$srcfile" >/dev/null
	need_update=1
elif [ ! -e "$srcfile" ] && [ -e /etc/apt/sources.list ] &&
	! grep -q '^deb-src' /etc/apt/sources.list; then
	grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
		"${SUDO[@]}" tee /etc/apt/sources.list.d/cpu-opv-deb-src.list >/dev/null
	need_update=1
fi

# The package list below is read with Python; a minimal Debian 12
# (debootstrap's minbase, some container images) has none yet.  The
# deb-src entry is in place first, so that this one update serves both.
updated=0
if ! command -v python3 >/dev/null; then
	echo "setup: apt-get update; installing python3 (to read vm/arch/)"
	"${SUDO[@]}" apt-get update -qq
	updated=1
	DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
		--no-install-recommends python3 >/dev/null
fi

# Each architecture's own (QEMU, cross compiler, its libc for the static
# selftests) from its data file, vm/arch/<name>.toml.
here=$(dirname "$(realpath "$0")")
mapfile -t -O ${#PKGS[@]} PKGS < <(python3 -c '
import sys, tomllib, pathlib
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.toml")):
    print("\n".join(tomllib.loads(f.read_text())["host_packages"]))
' "$here/../vm/arch")

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ $updated -eq 0 ] && { [ ${#missing[@]} -gt 0 ] || [ $need_update -eq 1 ]; }; then
	echo "setup: apt-get update"
	"${SUDO[@]}" apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
fi
