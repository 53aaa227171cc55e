# hookline: `make run` starts the service, `make test` runs every test.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# ctest's parallel level in make test. Most suites wait (on servers, receivers, retry schedules,
# browsers) far more than they compute, so `make test TEST_JOBS=4` finishes sooner on 2 cores; the
# default stays at the core count until a quiet run shows the load-sensitive suites (rate limit,
# kill -9 backlogs, attempt timeouts) hold at twice it. Suites that must not overlap say so
# themselves (RESOURCE_LOCK in CMakeLists.txt).
TEST_JOBS ?= $(JOBS)
LISTEN ?= 127.0.0.1:8080
DATA ?= data
PREFIX ?= /usr/local
# Debian's python3, where deps-test installs the harness's modules (CMakeLists.txt picks the same).
PYTHON3 ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)

.PHONY: run build test tsan coverage bench bench-pg deps deps-test install uninstall fuzz clean format

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHL_TESTS=OFF >/dev/null
	cmake --build build -j $(JOBS)

run: build
	mkdir -p $(DATA)
	./build/hookline serve --listen $(LISTEN) --database $(DATA)/hookline.db --mode development

# Every test: unit, end-to-end (SQLite and PostgreSQL), interop, and each fuzz target for a few
# seconds from its seed corpus (build-fuzz, see `fuzz`). A test that cannot run exits 77 and ctest
# lists it as not run, never as passed; HL_REQUIRE_ALL=1 makes that a failure here, since deps-test
# installed PostgreSQL, node, npm and clang.
test: deps-test fuzz
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DHL_ASAN=ON -DHL_UBSAN=ON -DHL_WERROR=ON \
	  -DHL_FUZZ_BUILD_DIR=$(CURDIR)/build-fuzz >/dev/null
	cmake --build build-test -j $(JOBS)
	HL_REQUIRE_ALL=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-test --output-on-failure -j $(TEST_JOBS)

# The threaded parts (dispatcher, group commit, HTTP pool, parked requests) under ThreadSanitizer:
# the delivery, operations and serving suites against a TSan build; any report stops the server
# and fails the test.
tsan: deps-test
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHL_TSAN=ON -DHL_TESTS=OFF >/dev/null
	cmake --build build-tsan -j $(JOBS)
	for t in test_delivery test_operations test_serving; do \
	  TSAN_OPTIONS=halt_on_error=1:exitcode=66 HOOKLINE_BIN=$(CURDIR)/build-tsan/hookline \
	    $(PYTHON3) -u tests/e2e/$$t.py || exit 1; done

# Line coverage of src/ by every test but the fuzz targets (build-cov, gcov, no sanitizers);
# the summary goes to the terminal and build-cov/coverage.txt.
coverage: deps-coverage
	cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug -DHL_COVERAGE=ON >/dev/null
	cmake --build build-cov -j $(JOBS)
	find build-cov -name '*.gcda' -delete
	HL_REQUIRE_ALL=1 ctest --test-dir build-cov -E '^fuzz/' -j $(JOBS) || true
	gcovr -r . --object-directory build-cov --filter src/ -s -o build-cov/coverage.txt
	tail -3 build-cov/coverage.txt

bench: deps-bench
	bench/run.sh

# One, two and three nodes on PostgreSQL beside SQLite (starts its own PostgreSQL, fsync on).
bench-pg: deps-bench
	bench/run-pg.sh

# bin/hookline, libhookline (shared and static) with <hookline/verify.h>, hookline.pc and the CMake
# package under PREFIX (default /usr/local); DESTDIR stages them elsewhere, for packaging.
# uninstall removes what install put there (scripts/install.sh says how).
install: build
	scripts/install.sh install "$(PREFIX)" "$(DESTDIR)"

uninstall:
	scripts/install.sh uninstall "$(PREFIX)" "$(DESTDIR)"

# The libFuzzer targets (tests/fuzz/*_fuzz.c) with clang, ASan and UBSan. make test runs each for
# a few seconds; longer by hand: scripts/fuzz-run.sh build-fuzz/NAME_fuzz with HL_FUZZ_SECONDS.
fuzz: deps-test
	CC=clang cmake -S . -B build-fuzz -DHL_FUZZ=ON -DHL_ASAN=ON -DHL_UBSAN=ON -DHL_TESTS=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzzers

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

deps-coverage:
	@scripts/deps.sh coverage

clean:
	rm -rf build build-test build-fuzz build-bench
