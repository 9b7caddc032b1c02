# fuzz.mk - libFuzzer targets (included by the Makefile).   make fuzz | make fuzz-smoke
#
# Everything is rebuilt with clang -fsanitize=fuzzer-no-link,address,undefined into
# $(FUZZ_BUILD); each fuzz/fuzz_*.c links the library objects with -fsanitize=fuzzer.
# fuzz_cli also links the CLI's objects, main() renamed (tools/cli/main.c -Dmain=cli_main_for_fuzz).
# Run one:  $(FUZZ_BUILD)/fuzz_loader fuzz/corpus/loader -max_total_time=60
FUZZ_CC    ?= clang
FUZZ_BUILD ?= $(BUILD)-fuzz
FUZZ_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wno-unused-parameter -Wno-unused-function -g -O1 -march=native $(FUZZ_SAN) \
              -fsanitize=fuzzer-no-link $(FEATURE_CFLAGS) -Iinclude -Ilib -Itools/cli -I/usr/include/openblas \
              $(shell pkg-config --cflags openblas 2>/dev/null)
# C++ sources (lib/image_dicom.cc) with clang++
FUZZ_CXX    ?= clang++
FUZZ_CXXFLAGS = $(filter-out -std=c11,$(FUZZ_CFLAGS)) -std=c++17
FUZZ_SRC      = $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN      = $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ  = $(LIB_SRC:lib/%.c=$(FUZZ_BUILD)/obj/lib/%.o) $(LIB_CXX_SRC:lib/%.cc=$(FUZZ_BUILD)/obj/lib/%.o)
# without the server (serve_off.c): the fuzzed commands read files, and libmicrohttpd is not
# instrumented
FUZZ_CLI_SRC  = $(filter-out tools/cli/main.c tools/cli/serve%.c,$(wildcard tools/cli/*.c)) tools/cli/serve_off.c
FUZZ_CLI_OBJ  = $(FUZZ_CLI_SRC:tools/cli/%.c=$(FUZZ_BUILD)/obj/cli/%.o) $(FUZZ_BUILD)/obj/cli/main_for_fuzz.o
FUZZ_SECONDS ?= 20
FUZZ_CLI_CFLAGS ?= # extra flags for the CLI's objects only

.PHONY: fuzz fuzz-smoke
fuzz: $(FUZZ_BIN)

# each kernel level's files with that level's flags, as in the Makefile (lib/cpu.h)
$(FUZZ_BUILD)/obj/lib/tiles.o $(FUZZ_BUILD)/obj/lib/ops_avx512.o: FUZZ_CFLAGS += $(AVX512_FLAGS)
$(FUZZ_BUILD)/obj/lib/tiles_bf16.o: FUZZ_CFLAGS += $(AVX512_BF16_FLAGS)
$(AVX2_OBJS:%=$(FUZZ_BUILD)/obj/lib/%.o): FUZZ_CFLAGS += $(AVX2_FLAGS)
$(FUZZ_BUILD)/obj/lib/%.o: lib/%.c $(wildcard lib/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/lib/%.o: lib/%.cc $(wildcard lib/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/cli/main_for_fuzz.o: tools/cli/main.c $(wildcard tools/cli/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CLI_CFLAGS) -Dmain=cli_main_for_fuzz -c $< -o $@

$(FUZZ_BUILD)/obj/cli/%.o: tools/cli/%.c $(wildcard tools/cli/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CLI_CFLAGS) -c $< -o $@

# with C++ objects (DICOM) the link is clang++'s, so that the sanitizers' C++ runtime (operator
# new / delete, UBSan's vptr checks) comes in; the C sources stay C (-x c)
FUZZ_LINK = $(if $(LIB_CXX_SRC),$(FUZZ_CXX),$(FUZZ_CC))

$(FUZZ_BUILD)/fuzz_cli: fuzz/fuzz_cli.c $(FUZZ_LIB_OBJ) $(FUZZ_CLI_OBJ)
	$(FUZZ_LINK) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ -x c $< -x none $(filter-out $<,$^) $(LDLIBS_BASE)

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	$(FUZZ_LINK) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ -x c $< -x none $(filter-out $<,$^) $(LDLIBS_BASE)

# Each target for FUZZ_SECONDS on a scratch copy of its committed corpus (tests/sh/test_fuzz_smoke.sh).
fuzz-smoke: fuzz
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/sh/test_fuzz_smoke.sh
