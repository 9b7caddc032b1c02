# libbiomedclip - BiomedCLIP inference in C.   make | make test | make demo | make bench | make install
#
# Options:  JPEG=turbo   decode JPEG with libjpeg-turbo (PIL-identical pixels; needs libjpeg62-turbo-dev)
#           SANITIZE=1   build with ASan + UBSan (used by `make sanitize`)
#           OPT=...      optimisation flags (default -O2 -march=native)

CC      ?= cc
OPT     ?= -O2 -march=native
PREFIX  ?= /usr/local
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
SHARED_DATA ?= $(abspath ../shared/data)

CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fPIC -Iinclude -Ilib \
              -I/usr/include/openblas $(shell pkg-config --cflags openblas 2>/dev/null)
LDLIBS_BASE = -lopenblas -lm -lpthread

ifeq ($(JPEG),turbo)
CFLAGS_BASE += -DBMC_WITH_LIBJPEG
LDLIBS_BASE += -ljpeg
BUILD := $(BUILD)-turbo
endif
ifeq ($(SANITIZE),1)
OPT = -O1 -g -fno-omit-frame-pointer
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD := $(BUILD)-sanitize
endif

CFLAGS ?=
CFLAGS += $(CFLAGS_BASE) $(OPT)
LDLIBS = $(LDLIBS_BASE)

LIB_SRC   = $(wildcard lib/*.c)
LIB_OBJ   = $(LIB_SRC:lib/%.c=$(BUILD)/obj/lib/%.o)
CLI_SRC   = $(wildcard tools/cli/*.c)
CLI_OBJ   = $(CLI_SRC:tools/cli/%.c=$(BUILD)/obj/cli/%.o)
TEST_SRC  = $(wildcard tests/test_*.c)
TEST_BIN  = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC = $(wildcard bench/*.c)
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

STATIC = $(BUILD)/libbiomedclip.a
SHLIB  = $(BUILD)/libbiomedclip.so
CLI    = $(BUILD)/biomedclip

.PHONY: all lib cli tests test bench clean install weights demo sanitize
all: $(STATIC) $(SHLIB) $(CLI)
lib: $(STATIC) $(SHLIB)
cli: $(CLI)
tests: $(TEST_BIN) $(CLI)

$(BUILD)/obj/lib/%.o: lib/%.c $(wildcard lib/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/cli/%.o: tools/cli/%.c $(wildcard tools/cli/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SHLIB): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(STATIC) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(STATIC) $(LDFLAGS) -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS) $(LDLIBS)

# Every test: unit tests (cmocka), converter tests, parity against the PyTorch reference.
test: tests
	BUILD=$(BUILD) PYTHON=$(PYTHON) SHARED_DATA=$(SHARED_DATA) bash tests/run_all.sh

sanitize:
	$(MAKE) SANITIZE=1 test

bench: $(BENCH_BIN) $(CLI)
	BUILD=$(BUILD) PYTHON=$(PYTHON) bash bench/run.sh

clean:
	rm -rf build build-*
