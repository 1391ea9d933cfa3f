# cosync - convenience targets around CMake.
#
#   make demo           build (Release, gcc) and run examples/demo
#   make test           build and run the tests in eight configurations:
#                         test-gcc       gcc, assembly context switch
#                         test-asan      clang, AddressSanitizer + UBSan
#                         test-asan-gcc  gcc, AddressSanitizer + UBSan (gcc
#                                        inlines and scopes differently)
#                         test-lto       gcc, link-time optimisation, its
#                                        warnings errors too, with the
#                                        distributions' hardening flags
#                         test-ucontext  gcc, ucontext context switch
#                         test-tsan      gcc, ThreadSanitizer, Debug (tests labelled `threads` or `tsan`)
#                         test-valgrind  the test-gcc build, under valgrind
#                         test-aarch64   cross-built, run under qemu-user
#                       each one can also be run alone: make test-asan
#   make bench          build (Release) and run bench/run.sh
#   make test-aarch64   run tests/aarch64/run.sh
#   make format         clang-format every C file
#   make clean          remove build/
#
# Variables: JOBS (parallel jobs, default 2), CTEST_ARGS (extra ctest
# arguments, e.g. CTEST_ARGS='-R test_lock').

JOBS ?= 2
CTEST_ARGS ?=
BUILD := build
ENSURE_TOOLS := scripts/ensure-tools.sh

CMAKE_CONFIGURE = cmake -S . -B $(1) -DCMAKE_C_COMPILER=$(2) -DCMAKE_BUILD_TYPE=Release $(3)
# The tests run with the debug reports on (they check them).
TEST_ARGS := -DCOSYNC_DEBUG=ON
CTEST = cd $(1) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

SANITIZER_BUILD_ARGS := -DCOSYNC_BUILD_BENCH=OFF
ASAN_SANITIZE := address,undefined

.PHONY: all demo test test-gcc test-asan test-asan-gcc test-lto test-ucontext test-tsan test-valgrind bench bench-instructions test-aarch64 \
        format clean tools tools-go release

all: release

tools:
	@bash $(ENSURE_TOOLS)

tools-go:
	@bash $(ENSURE_TOOLS) --go

# --------------------------------------------------------------------------
release: tools
	$(call CMAKE_CONFIGURE,$(BUILD)/release,gcc,)
	cmake --build $(BUILD)/release -j$(JOBS)

demo: release
	./$(BUILD)/release/examples/demo

bench: tools-go
	$(call CMAKE_CONFIGURE,$(BUILD)/release,gcc,)
	cmake --build $(BUILD)/release -j$(JOBS)
	bash bench/run.sh $(BUILD)/release

# Instructions per operation of each workload (callgrind): a count that
# does not move with the machine's noise, for judging a change's cost.
bench-instructions: tools
	$(call CMAKE_CONFIGURE,$(BUILD)/release,gcc,)
	cmake --build $(BUILD)/release -j$(JOBS)
	bash bench/instructions.sh $(BUILD)/release

test-aarch64:
	bash tests/aarch64/run.sh

# The gcc configuration's tests again, under valgrind's memcheck.
test-valgrind: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-gcc,gcc,$(TEST_ARGS))
	cmake --build $(BUILD)/test-gcc -j$(JOBS)
	bash scripts/valgrind-tests.sh $(BUILD)/test-gcc

# --------------------------------------------------------------------------
# Tests. `make test` runs every configuration even if one fails, prints a
# summary, and fails if any configuration failed.
TEST_CONFIGS := gcc asan asan-gcc lto ucontext tsan valgrind aarch64

test: tools
	@mkdir -p $(BUILD); pass=""; fail=""; \
	for c in $(TEST_CONFIGS); do \
	    echo; echo "======== test-$$c ========"; \
	    { $(MAKE) --no-print-directory test-$$c SKIP_TOOLS=1; echo $$? > $(BUILD)/test-$$c.status; } \
	        2>&1 | tee $(BUILD)/test-$$c.log; \
	    if [ "$$(cat $(BUILD)/test-$$c.status)" = 0 ]; then \
	        pass="$$pass $$c"; else fail="$$fail $$c"; fi; \
	done; \
	echo; echo "======== summary ========"; \
	for c in $$pass; do echo "  PASS  test-$$c"; done; \
	for c in $$fail; do echo "  FAIL  test-$$c   (rerun: make test-$$c)"; done; \
	total=0; failed=0; \
	for c in $(TEST_CONFIGS); do \
	    counts=$$(awk '/tests passed, [0-9]+ tests? failed out of [0-9]+/ { f = $$4; n = $$NF } \
	        /^[a-z0-9]+ tests: [0-9]+ passed, [0-9]+ failed/ { n = $$3 + $$5; f = $$5 } \
	        END { print n + 0, f + 0 }' $(BUILD)/test-$$c.log); \
	    total=$$((total + $${counts% *})); failed=$$((failed + $${counts#* })); \
	done; \
	if [ -n "$$fail" ]; then \
	    [ $$failed -gt 0 ] || failed=$$(echo $$fail | wc -w); \
	    [ $$total -ge $$failed ] || total=$$failed; \
	    echo "make test: FAILED"; echo "$$((total - failed)) passed, $$failed failed"; exit 1; fi; \
	echo "make test: all configurations passed"; \
	echo "$$((total - failed)) passed, $$failed failed"

# The individual configurations check the tools themselves unless called
# from `make test`, which has done it once.
ifeq ($(SKIP_TOOLS),1)
TEST_DEPS :=
else
TEST_DEPS := tools
endif

test-gcc: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-gcc,gcc,$(TEST_ARGS))
	cmake --build $(BUILD)/test-gcc -j$(JOBS)
	$(call CTEST,$(BUILD)/test-gcc)

test-asan: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-asan,clang,-DCOSYNC_SANITIZE=$(ASAN_SANITIZE) $(SANITIZER_BUILD_ARGS) $(TEST_ARGS))
	cmake --build $(BUILD)/test-asan -j$(JOBS)
	$(call CTEST,$(BUILD)/test-asan)

test-asan-gcc: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-asan-gcc,gcc,-DCOSYNC_SANITIZE=$(ASAN_SANITIZE) $(SANITIZER_BUILD_ARGS) $(TEST_ARGS))
	cmake --build $(BUILD)/test-asan-gcc -j$(JOBS)
	$(call CTEST,$(BUILD)/test-asan-gcc)

# Whole-program inlining across the library and the tests: it must keep the
# per-file choices (sched.c's missing red zone) and give no new warnings.
# At link time gcc has dropped the pragma in cosync/queue.h that silences
# the bounds warnings of the queue's element copy (the branches for the
# sizes a queue does not have), so those three stay quiet there.
# The same build has the hardening a distribution builds packages with
# (Debian's dpkg-buildflags with hardening=+all, and _FORTIFY_SOURCE=3):
# stack canaries and stack-clash probes in task frames, CET markers, the
# checked string functions, and full RELRO.
HARDENING_FLAGS := -fstack-protector-strong -fstack-clash-protection -fcf-protection \
                   -D_FORTIFY_SOURCE=3 -Wformat -Werror=format-security
LTO_FLAGS := -flto=auto -Wall -Wextra -Werror $(HARDENING_FLAGS)
LTO_LINK_FLAGS := $(LTO_FLAGS) -Wno-array-bounds -Wno-stringop-overflow -Wno-stringop-overread \
                  -Wl,-z,relro,-z,now
test-lto: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-lto,gcc,"-DCMAKE_C_FLAGS=$(LTO_FLAGS)" "-DCMAKE_EXE_LINKER_FLAGS=$(LTO_LINK_FLAGS)" "-DCMAKE_SHARED_LINKER_FLAGS=$(LTO_LINK_FLAGS)" -DCOSYNC_BUILD_BENCH=OFF $(TEST_ARGS))
	cmake --build $(BUILD)/test-lto -j$(JOBS)
	$(call CTEST,$(BUILD)/test-lto)

test-ucontext: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-ucontext,gcc,-DCOSYNC_CONTEXT=ucontext $(TEST_ARGS))
	cmake --build $(BUILD)/test-ucontext -j$(JOBS)
	$(call CTEST,$(BUILD)/test-ucontext)

test-tsan: $(TEST_DEPS)
	$(call CMAKE_CONFIGURE,$(BUILD)/test-tsan,gcc,-DCOSYNC_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug $(SANITIZER_BUILD_ARGS) $(TEST_ARGS))
	cmake --build $(BUILD)/test-tsan -j$(JOBS)
	@if (cd $(BUILD)/test-tsan && ctest -N -L '^(threads|tsan)$$') | grep -q 'Total Tests: [1-9]'; then \
	    echo "cd $(BUILD)/test-tsan && ctest --output-on-failure -j$(JOBS) -L '^(threads|tsan)$$' $(CTEST_ARGS)"; \
	    cd $(BUILD)/test-tsan && ctest --output-on-failure -j$(JOBS) -L '^(threads|tsan)$$' $(CTEST_ARGS); \
	else \
	    echo "test-tsan: no test has the label 'threads' or 'tsan'; nothing to run under ThreadSanitizer"; \
	fi

# --------------------------------------------------------------------------
FORMAT_DIRS := include src tests bench examples

format:
	@command -v clang-format >/dev/null || { echo "clang-format is not installed (apt-get install clang-format)"; exit 1; }
	find $(FORMAT_DIRS) -name '*.[ch]' -print0 2>/dev/null | xargs -0 -r clang-format -i
	find . -maxdepth 1 -name '*.[ch]' -print0 | xargs -0 -r clang-format -i

clean:
	rm -rf $(BUILD)
