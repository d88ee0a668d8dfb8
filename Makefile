# lbchain -- build, test, bench, run. The first build runs scripts/install-deps.sh, which
# installs any missing Debian packages (idempotent).
#   make run      build ./sim and run the main scenario
#   make test     unit suites, the shell tests (cli, shard, report, pcap, real, realchain),
#                 then every scenario's expectations (./sim --check)
#   make asan     the unit suites and every scenario (tests/asan-scenarios.sh: loss and
#                 one-packet queues on every link) under AddressSanitizer + UBSan, built
#                 with clang (its UBSan also checks pointer arithmetic) in build-asan/
#   make bench    engine hold model and the bench-chain scenario
#   make real-demo   real-socket mode against an nginx stand-in on 127.0.0.1, with --compare
#   make bench-real  real mode's request rate against nginx, next to wrk's
#   make realtest    the chain built in network namespaces vs the simulation (needs root)
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

.PHONY: all run test asan bench clean check-scenarios real-demo bench-real realtest
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

build/bench_engine: bench/bench_engine.c build/libsim.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -DNDEBUG -o $@ $^ $(PKG_LIBS)

run: sim
	./sim scenarios/aks-dsr.yaml

test: sim build/test_runner build/realsrv
	./build/test_runner
	bash tests/cli.sh
	bash tests/shard.sh
	bash tests/report.sh
	bash tests/pcap.sh
	bash tests/real.sh
	bash tests/realchain.sh
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

bench: sim build/bench_engine
	@bash scripts/bench.sh

real-demo: sim build/realsrv
	@bash scripts/real-demo.sh

bench-real: sim build/realsrv
	@bash scripts/bench-real.sh

clean:
	rm -rf build build-asan sim

-include $(LIBOBJS:.o=.d) $(TOBJS:.o=.d) build/src/main.d
