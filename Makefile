# lbchain -- build, test, bench, run. Dependencies are checked (and installed when
# missing) by scripts/install-deps.sh before the first build.
CC      ?= cc
PKGS    := gsl sqlite3 libcjson yaml-0.1 check libpcap
OPT     ?= -O2
CFLAGS  += -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Iinclude -Isrc -D_GNU_SOURCE
DEPS_OK := build/.deps-ok

SRCS    := $(wildcard src/*/*.c models/*.c)
OBJS    := $(patsubst %.c,build/%.o,$(SRCS))
TESTS   := $(wildcard tests/test_*.c)
TOBJS   := $(patsubst %.c,build/%.o,$(TESTS)) build/tests/runner.o build/tests/util.o
SUITES  := $(patsubst tests/test_%.c,%,$(TESTS))

.PHONY: all run test asan bench clean deps check-scenarios
all: sim

$(DEPS_OK): scripts/install-deps.sh
	@bash scripts/install-deps.sh
	@mkdir -p build && touch $@

# pkg-config is only asked once the dependencies are there.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

build/%.o: %.c $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/libsim.a: $(filter-out build/src/main.o,$(OBJS))
	@rm -f $@
	ar rcs $@ $^

sim: build/src/main.o build/libsim.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# The test runner lists every suite found in tests/test_*.c (each defines suite_<name>).
build/tests/runner.c: $(TESTS) tests/runner.c.in
	@mkdir -p build/tests
	@{ for s in $(SUITES); do echo "Suite *suite_$$s(void);"; done; \
	   echo "#define SUITES \\"; for s in $(SUITES); do echo "  X($$s) \\"; done; echo; \
	   cat tests/runner.c.in; } > $@
build/tests/runner.o: build/tests/runner.c $(DEPS_OK)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests -c $< -o $@

build/test_runner: $(TOBJS) build/libsim.a
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

run: sim
	./sim scenarios/core-nat.yaml

# Unit suites, then every scenario's expectations (regression tests).
test: sim build/test_runner
	./build/test_runner
	$(MAKE) --no-print-directory check-scenarios

check-scenarios: sim
	./sim --quiet --check --out build/check-results scenarios/*.yaml

asan:
	$(MAKE) --no-print-directory BUILDDIR=asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" clean-objs build/test_runner
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ./build/test_runner
	$(MAKE) --no-print-directory clean-objs

bench: sim
	@bash scripts/bench.sh

clean-objs:
	rm -rf build/src build/models build/tests build/libsim.a build/test_runner sim

clean:
	rm -rf build sim

-include $(OBJS:.o=.d) $(TOBJS:.o=.d)
