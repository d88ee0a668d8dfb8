# lbchain -- build, test, bench, run. The first build runs scripts/install-deps.sh, which
# installs any missing Debian packages (idempotent).
#   make run      build ./sim and run the main scenario
#   make test     unit suites, then every scenario's expectations (./sim --check)
#   make asan     the unit suites under AddressSanitizer + UBSan (build tree build-asan/)
#   make bench    engine hold model and the bench-chain scenario
CC      ?= cc
PKGS    := gsl sqlite3 libcjson yaml-0.1 check libpcap libcrypto
OPT     ?= -O2
B       ?= build
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Iinclude -Isrc -Itests -D_GNU_SOURCE
DEPS_OK := build/.deps-ok

SRCS    := $(wildcard src/*/*.c models/*.c)
LIBOBJS := $(patsubst %.c,$(B)/%.o,$(SRCS))
TESTS   := $(wildcard tests/test_*.c)
SUITES  := $(patsubst tests/test_%.c,%,$(TESTS))
TOBJS   := $(patsubst %.c,$(B)/%.o,$(TESTS) tests/util.c) $(B)/tests/runner.o

.PHONY: all run test asan bench clean check-scenarios
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

build/bench_engine: bench/bench_engine.c build/libsim.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -DNDEBUG -o $@ $^ $(PKG_LIBS)

run: sim
	./sim scenarios/aks-dsr.yaml

test: sim build/test_runner
	./build/test_runner
	bash tests/cli.sh
	bash tests/report.sh
	bash tests/pictures.sh
	bash tests/pcap.sh
	@$(MAKE) --no-print-directory check-scenarios

# Every scenario's expectations, as regression tests.
check-scenarios: sim
	./sim --check scenarios/*.yaml

asan:
	@$(MAKE) --no-print-directory B=build-asan \
	  OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  build-asan/test_runner
	ASAN_OPTIONS=detect_leaks=1 ./build-asan/test_runner

bench: sim build/bench_engine
	@bash scripts/bench.sh

clean:
	rm -rf build build-asan sim

-include $(LIBOBJS:.o=.d) $(TOBJS:.o=.d) build/src/main.d
