# distill_sweep — build, test, benchmark, install.
#   make            bin/distill_sweep
#   make check      every test (unit tests with Check, then the integration scripts)
#   make check-sanitize   the unit tests under AddressSanitizer + UBSan
#   make check-faults   fault scenarios: NaN, damaged files, kill -9, full disk (tests/faults/)
#   make check-valgrind the unit tests and a one-rank sweep under valgrind
#   make fuzz       libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ (tests/fuzz/README.md)
#   make bench      benchmarks, one "bench <name> <value> <unit>" line each
#   make demo       MNIST (as make data; else Fashion-MNIST), then a small sweep on 2 ranks
#                   (jobs/demo.job): the README's main command
#   make data       download MNIST to data/mnist (MD5-checked)
#   make deps       install the Debian packages (as root) or print the command to run
#   make install PREFIX=/usr/local

CC      := mpicc
PREFIX  ?= /usr/local
PKGS    := ompi-c hdf5-openmpi openblas zlib inih dnnl
# Debian's libdnnl-dev has no dnnl.pc: use the project's (scripts/pkgconfig) when the system has none.
PKGCONF := pkg-config
ifneq ($(shell $(PKGCONF) --exists dnnl && echo yes),yes)
  PKGCONF := PKG_CONFIG_PATH=$(if $(PKG_CONFIG_PATH),$(PKG_CONFIG_PATH):)$(CURDIR)/scripts/pkgconfig pkg-config
endif
OPT     ?= -O3 -march=native
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
  PKG_OK := $(shell $(PKGCONF) --exists $(PKGS) check && echo yes)
  # On a fresh machine, as root: install the Debian packages first (scripts/deps.sh).
  ifneq ($(PKG_OK),yes)
    ifeq ($(shell id -u),0)
      $(info missing libraries: installing them with scripts/deps.sh)
      DEPS_RC := $(shell bash scripts/deps.sh >&2; echo $$?)
      PKG_OK := $(shell $(PKGCONF) --exists $(PKGS) check && echo yes)
    endif
  endif
  ifneq ($(PKG_OK),yes)
    $(error missing libraries ($(shell $(PKGCONF) --print-errors --exists $(PKGS) check 2>&1 | head -1)); run 'make deps' (as root) or: $(shell scripts/deps.sh --print))
  endif
  PKG_CFLAGS := $(shell $(PKGCONF) --cflags $(PKGS))
  PKG_LIBS   := $(shell $(PKGCONF) --libs $(PKGS))
  CHECK_CFLAGS := $(shell $(PKGCONF) --cflags check)
  CHECK_LIBS   := $(shell $(PKGCONF) --libs check)
endif

CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra $(OPT) -g -fopenmp \
           -Iinclude $(PKG_CFLAGS)
LDLIBS  := $(PKG_LIBS) -lm

BUILD   ?= build
LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_SRC := $(filter-out src/cli/%,$(LIB_SRC))
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/version.o
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SCRIPTS := $(sort $(wildcard tests/it_*.sh))

.PHONY: all check check-unit check-sanitize bench deps data demo install clean

all: bin/distill_sweep

bin/distill_sweep: $(CLI_OBJ) $(BUILD)/libds.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libds.a: $(LIB_OBJ)
	ar rcs $@ $^

# The code version (git describe) in its own file, rewritten only when it changes, so that
# provenance attributes never carry a stale version and nothing else recompiles.
$(BUILD)/version.c: FORCE
	@mkdir -p $(BUILD)
	@printf 'const char ds_build_version[] = "%s";\n' '$(VERSION)' > $@.new
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@

$(BUILD)/version.o: $(BUILD)/version.c
	$(CC) -c -o $@ $<

FORCE:

$(BUILD)/%.o: %.c $(wildcard include/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libds.a tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Itests -o $@ $< $(BUILD)/libds.a $(CHECK_LIBS) $(LDLIBS)

# MPI test programs tests/mpi/*.c (run by tests/it_*.sh under mpirun), e.g. build/tests/mpi/gang_check.
MPI_TEST_SRC := $(sort $(wildcard tests/mpi/*.c))
MPI_TEST_BIN := $(MPI_TEST_SRC:tests/%.c=$(BUILD)/tests/%)

$(MPI_TEST_BIN): $(BUILD)/tests/mpi/%: tests/mpi/%.c $(BUILD)/libds.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libds.a $(LDLIBS)

# Unit tests run with one BLAS thread: results must not depend on the machine's core count.
check-unit: $(TEST_BIN)
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; OPENBLAS_NUM_THREADS=1 $$t; done

check: check-unit bin/distill_sweep $(MPI_TEST_BIN)
	@set -e; for s in $(TEST_SCRIPTS); do echo "== $$s"; bash $$s; done
	@echo "make check: all tests passed"

check-sanitize:
	$(MAKE) BUILD=build-san OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" check-unit

# Valgrind over the unit tests and a tiny one-rank sweep (tests/valgrind.sh), built into build-vg/
# without -march=native: valgrind cannot execute AVX-512.
.PHONY: check-valgrind vg-targets
check-valgrind:
	$(MAKE) BUILD=build-vg OPT="-O1" vg-targets
	bash tests/valgrind.sh build-vg

vg-targets: $(TEST_BIN) $(BUILD)/bin/distill_sweep

$(BUILD)/bin/distill_sweep: $(CLI_OBJ) $(BUILD)/libds.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer targets tests/fuzz/fuzz_*.c: the library rebuilt with clang, coverage
# instrumentation, ASan and UBSan into build-fuzz/ (clang 14 + libclang-rt-14-dev). Run e.g.
#   build-fuzz/fuzz_idx -max_total_time=600 tests/fuzz/corpus/idx
FUZZ_CC    ?= clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OPT   := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) -Wno-pass-failed
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%)
.PHONY: fuzz fuzz-targets

fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT="$(FUZZ_OPT)" fuzz-targets

fuzz-targets: $(FUZZ_BIN)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/entry.c tests/fuzz/entry.h $(BUILD)/libds.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< tests/fuzz/entry.c $(BUILD)/libds.a $(LDLIBS)

# The regression test replays the fuzzers' files through the same entry points.
$(BUILD)/tests/test_fuzz_regress: tests/fuzz/entry.c tests/fuzz/entry.h

# Fault scenarios (tests/faults/*.sh): NaN in training, damaged files at restart, kill -9 at
# 21 moments, a full disk. 'make check' runs the quick one (tests/it_fault_nan.sh).
FAULT_SCRIPTS := $(sort $(wildcard tests/faults/*.sh))
.PHONY: check-faults
check-faults: bin/distill_sweep
	@set -e; for s in $(FAULT_SCRIPTS); do echo "== $$s"; bash $$s; done
	@echo "make check-faults: all fault scenarios passed"

# Every tests/bench/bench_*.c is a benchmark program; tests/bench/run.sh runs them all (and the
# PyTorch twins when python3-torch is installed) and prints the ratios.
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

bench: bin/distill_sweep $(BENCH_BIN)
	@bash tests/bench/run.sh $(BUILD)/bench

$(BUILD)/bench/%: tests/bench/%.c tests/bench/bench_util.h $(BUILD)/libds.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libds.a $(LDLIBS)

deps:
	@bash scripts/deps.sh

data:
	@bash scripts/get_mnist.sh data/mnist

# The demo's data: MNIST as 'make data' gets it (MD5-checked; files already there are kept), unless
# $$MNIST_DIR names a folder. When the download cannot succeed (offline), one line says so and the
# sweep (jobs/demo.job: dataset = auto) falls back to Fashion-MNIST, saying so in its log.
.PHONY: demo-data
demo-data:
	@if [ -z "$${MNIST_DIR:-}" ]; then mkdir -p data; \
	    if bash scripts/get_mnist.sh data/mnist 2>data/get_mnist.log; then echo "make demo: MNIST in data/mnist (MD5-checked)"; \
	    else echo "make demo: MNIST could not be downloaded into data/mnist (see data/get_mnist.log)"; fi; fi

demo: bin/distill_sweep demo-data
	bash scripts/mpirun.sh -np 2 bin/distill_sweep jobs/demo.job

install: bin/distill_sweep
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/distill_sweep/jobs $(DESTDIR)$(PREFIX)/share/distill_sweep/slurm
	install -m 755 bin/distill_sweep $(DESTDIR)$(PREFIX)/bin/
	install -m 755 scripts/get_mnist.sh $(DESTDIR)$(PREFIX)/bin/distill_sweep-get-mnist
	install -m 644 jobs/*.job $(DESTDIR)$(PREFIX)/share/distill_sweep/jobs/
	-install -m 644 slurm/*.sbatch $(DESTDIR)$(PREFIX)/share/distill_sweep/slurm/ 2>/dev/null

clean:
	rm -rf build build-san bin
