# lbchain -- build, test, bench, run. The first build runs scripts/install-deps.sh, which
# installs any missing Debian packages (idempotent).
#   make run      build ./sim and run the main scenario
#   make test     unit suites, then every scenario's expectations (./sim --check)
#   make asan     the unit suites, every scenario (tests/asan-scenarios.sh: loss and
#                 one-packet queues on every link) and the loader's reproducers
#                 (tests/fuzz-regress.sh) under AddressSanitizer + UBSan, built with clang
#                 (its UBSan also checks pointer arithmetic) in build-asan/
#   make bench    engine hold model and the bench-chain scenario
#   make real-demo   real-socket mode against an nginx stand-in on 127.0.0.1, with --compare
#   make bench-real  real mode's request rate against nginx, next to wrk's
#   make realtest    the chain built in network namespaces vs the simulation (needs root)
#   make fuzz        the libFuzzer targets (fuzz/) for FUZZ_TIME seconds each (not part of test)
CC      ?= cc
PKGS    := gsl sqlite3 libcjson yaml-0.1 check libpcap libcrypto libcurl
OPT     ?= -O2
B       ?= build
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Iinclude -Isrc -Itests -D_GNU_SOURCE
DEPS_OK := build/.deps-ok

SRCS    := $(wildcard src/*/*.c models/*.c)
LIBOBJS := $(patsubst %.c,$(B)/%.o,$(SRCS))
TESTS   := $(wildcard tests/test_*.c)
SUITES  := $(patsubst tests/test_%.c,%,$(TESTS))
TOBJS   := $(patsubst %.c,$(B)/%.o,$(TESTS) tests/util.c) $(B)/tests/runner.o

.PHONY: all run test asan bench clean check-scenarios real-demo bench-real realtest fuzz \
        fuzz-build fuzz-coverage
all: sim

$(DEPS_OK): scripts/install-deps.sh
	@bash scripts/install-deps.sh
	@mkdir -p build && touch $@

# pkg-config is only asked once the dependencies are there (recursive expansion).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

$(B)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libsim.a: $(LIBOBJS)
	@rm -f $@
	ar rcs $@ $^

sim: build/src/main.o build/libsim.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# The program in another build tree (build-asan/sim).
$(B)/sim: $(B)/src/main.o $(B)/libsim.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# The test runner lists every suite in tests/test_*.c (each defines suite_<name>).
$(B)/tests/runner.c: $(TESTS) tests/runner.c.in
	@mkdir -p $(B)/tests
	@{ echo "#include <check.h>"; for s in $(SUITES); do echo "Suite *suite_$$s(void);"; done; \
	   echo "#define SUITES \\"; for s in $(SUITES); do echo "  X($$s) \\"; done; echo; \
	   cat tests/runner.c.in; } > $@
$(B)/tests/runner.o: $(B)/tests/runner.c | $(DEPS_OK)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(B)/test_runner: $(TOBJS) $(B)/libsim.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# Misbehaving HTTP servers on loopback for tests/real.sh (no library: a plain program).
build/realsrv: tests/realsrv.c | $(DEPS_OK)
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $<

# tests/kernel-timers.sh: a socket whose kernel timers it watches in its namespaces, and
# the simulator's TCP and conntrack models printing the same timers.
build/ktimer: tests/ktimer.c | $(DEPS_OK)
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $<

build/tcp_schedule: tests/tcp_schedule.c build/libsim.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/bench_engine: bench/bench_engine.c build/libsim.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -DNDEBUG -o $@ $^ $(PKG_LIBS)

run: sim
	./sim scenarios/aks-dsr.yaml

test: sim build/test_runner build/realsrv build/ktimer build/tcp_schedule
	./build/test_runner
	bash tests/cli.sh
	bash tests/fuzz-regress.sh
	bash tests/report.sh
	bash tests/pictures.sh
	bash tests/pcap.sh
	bash tests/real.sh
	bash tests/realchain.sh
	bash tests/kernel-timers.sh
	@$(MAKE) --no-print-directory check-scenarios

# Every scenario's expectations, as regression tests.
check-scenarios: sim
	./sim --check scenarios/*.yaml

# The scenarios built for real in network namespaces (root), simulated and run with
# --real against that, compared; and the kube-proxy packet-fate differential.
realtest: sim
	@bash scripts/realtest.sh

# clang from scripts/install-deps.sh; the tree is rebuilt when the compiler changes.
ASAN_CC ?= clang
asan: $(DEPS_OK)
	@[ -f build-asan/.cc-$(ASAN_CC) ] || { rm -rf build-asan; mkdir -p build-asan; \
	  touch build-asan/.cc-$(ASAN_CC); }
	@$(MAKE) --no-print-directory B=build-asan CC=$(ASAN_CC) \
	  OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  build-asan/test_runner build-asan/sim
	ASAN_OPTIONS=detect_leaks=1 CK_TIMEOUT_MULTIPLIER=4 ./build-asan/test_runner
	bash tests/asan-scenarios.sh build-asan/sim
	bash tests/fuzz-regress.sh build-asan/sim

bench: sim build/bench_engine
	@bash scripts/bench.sh

real-demo: sim build/realsrv
	@bash scripts/real-demo.sh

bench-real: sim build/realsrv
	@bash scripts/bench-real.sh

# Fuzzing (clang from Debian: clang-14 and its libFuzzer). The library is built again with
# ASan + UBSan + libFuzzer's coverage into build-fuzz/; scripts/fuzz.sh runs each target
# for FUZZ_TIME seconds from scenarios/ (so that seeds' file: includes resolve), seeded
# from scenarios/ and tests/fuzz/regress/, and keeps its corpus in build-fuzz/corpus-*.
# Crashes land in build-fuzz/crash-*; copy each, minimised, into tests/fuzz/regress/.
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 60
FUZZ_B    := build-fuzz
FUZZ_OPT  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
             -fno-sanitize-recover=all
FUZZ_BINS := $(FUZZ_B)/fuzz_scenario $(FUZZ_B)/fuzz_expect

fuzz: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_TIME) $(FUZZ_BINS)

# clang warns about things gcc does not: shown, but not errors here (gcc's -Werror rules).
FUZZ_CFLAGS = -std=gnu11 $(FUZZ_OPT) -Wall -Wextra -Iinclude -Isrc -Itests -D_GNU_SOURCE

fuzz-build: | $(DEPS_OK)
	@$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" $(FUZZ_B)/libsim.a
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

$(FUZZ_B)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_B)/libsim.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

# Line coverage of the fuzz corpus (llvm-cov): what the fuzzer reached in src/scenario.
fuzz-coverage: | $(DEPS_OK)
	@bash scripts/fuzz.sh --coverage

clean:
	rm -rf build build-asan build-fuzz sim

-include $(LIBOBJS:.o=.d) $(TOBJS:.o=.d) build/src/main.d
