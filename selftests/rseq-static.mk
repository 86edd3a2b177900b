# SPDX-License-Identifier: GPL-2.0
#
# Read after tools/testing/selftests/rseq/Makefile by build.sh: the rseq
# programs link with -lrseq, which under -static needs a librseq.a.

$(OUTPUT)/librseq.a: rseq.c rseq.h rseq-*.h
	$(CC) $(CFLAGS) -c $< -o $(OUTPUT)/rseq.o
	$(CROSS_COMPILE)ar rcs $@ $(OUTPUT)/rseq.o

$(TEST_GEN_PROGS): $(OUTPUT)/librseq.a
