# cpu_opv: the kernel series, its harness and its tests.
#
#   make boot-test [ARCH=x86_64] [KERNEL_SRC=/path/to/linux]   the main job
#   make test                                                   host checks, then boot-test
#
# Every target installs what it needs first (Debian packages through
# scripts/setup-host.sh, a virtualenv in build/venv) and is quick when it is
# already there.  Exit status: 0 passed, 1 a test failed, 2 infrastructure.

ARCH ?= x86_64
KERNEL_SRC ?=
BOOT_TIMEOUT ?= 1800
EXTRA_CONFIG ?=
export ARCH KERNEL_SRC BOOT_TIMEOUT EXTRA_CONFIG

VENV := build/venv
PY := $(VENV)/bin/python
# vng and friends come from the virtualenv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
HARNESS := PYTHONPATH=$(CURDIR) $(PY) -m harness

PY_SOURCES := harness

.PHONY: all setup fetch patch config kernel selftests boot-test shell soak test check lint \
	typecheck unit-test checkpatch series-check sparse clean help

all: boot-test

help:
	@sed -n '2,9p' Makefile

# --- setup ------------------------------------------------------------------

build/.host-ready: scripts/setup-host.sh
	@echo "setup: host packages (scripts/setup-host.sh)"
	@bash scripts/setup-host.sh
	@mkdir -p build && touch $@

$(VENV)/.ready: requirements.txt build/.host-ready
	@echo "setup: virtualenv $(VENV) from requirements.txt"
	@python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

setup: $(VENV)/.ready

# --- the pipeline -------------------------------------------------------------

fetch patch config kernel selftests boot-test shell: $(VENV)/.ready
	@$(HARNESS) $@

# --- the series' own checks ---------------------------------------------------
# checkpatch takes seconds and is part of `make check`; series-check builds
# every prefix of the series (minutes each) and sparse rebuilds the series'
# objects with C=2 W=1: run them by hand.

checkpatch series-check sparse: $(VENV)/.ready
	@$(HARNESS) $@

# --- host-only checks (seconds, no VM) ---------------------------------------

lint: $(VENV)/.ready
	@echo "check: ruff"
	@$(VENV)/bin/ruff check $(PY_SOURCES)

typecheck: $(VENV)/.ready
	@echo "check: mypy --strict"
	@$(VENV)/bin/mypy --strict $(PY_SOURCES)

unit-test: $(VENV)/.ready
	@echo "check: harness unit tests"
	@PYTHONPATH=$(CURDIR) $(PY) -m pytest -q -p no:cacheprovider harness/tests

# The long stress tests too: upstream rseq's basic_percpu_ops_test and
# run_param_test.sh, which take many minutes each under TCG.
soak: $(VENV)/.ready
	@PROFILE=full BOOT_TIMEOUT=10800 $(HARNESS) boot-test

check: lint typecheck unit-test checkpatch

test: check
	@$(MAKE) --no-print-directory boot-test

clean:
	rm -rf build/$(ARCH)
