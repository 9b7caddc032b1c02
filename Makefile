# libbiomedclip - BiomedCLIP inference in C.   make | make test | make demo | make bench | make install
#
# Options:  JPEG=stb     decode JPEG with stb_image instead of libjpeg-turbo (the default whenever
#                        libjpeg-turbo's headers are installed: PIL-identical pixels; builds into
#                        $(BUILD)-stb). JPEG=turbo insists on libjpeg-turbo.
#           SLIDE=0      build without whole-slide images (no OpenSlide, no HDF5; docs/SLIDES.md;
#                        builds into $(BUILD)-noslide; the default whenever libopenslide-dev or
#                        libhdf5-dev is missing)
#           TIFF=0       build without libtiff (TIFF files are then refused; the default uses
#                        libtiff whenever libtiff-4 is installed)
#           LCMS=0       build without littleCMS (CIELab TIFFs are then refused; the default uses
#                        lcms2 whenever it is installed and TIFF is built; builds into $(BUILD)-nolcms)
#           DICOM=0      build without DICOM (default: DICOM through DCMTK when libdcmtk-dev is
#                        installed; lib/image_dicom.cc is then compiled with $(BMC_CXX))
#           SANITIZE=1   build with ASan + UBSan (used by `make sanitize`)
#           OPT=...      optimisation flags (default -O2: baseline x86-64, kernels chosen at run time)
#           SERVE=0      build the CLI without `biomedclip serve` (no libmicrohttpd, libcjson)

CC      ?= cc
OPT     ?= -O2
PREFIX  ?= /usr/local
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
SHARED_DATA ?= $(abspath ../shared/data)

CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fPIC -fvisibility=hidden \
              -Iinclude -Ilib \
              -I/usr/include/openblas $(shell pkg-config --cflags openblas 2>/dev/null)
LDLIBS_BASE = -lopenblas -lm -lpthread

# JPEG: libjpeg-turbo (PIL's own decoder) unless JPEG=stb or its headers are missing
ifeq ($(JPEG),)
JPEG := $(if $(shell printf '\043include <stdio.h>\n\043include <jpeglib.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo y),turbo,stb)
endif
ifeq ($(JPEG),turbo)
FEATURE_CFLAGS += -DBMC_WITH_LIBJPEG
LDLIBS_BASE += -ljpeg
else ifeq ($(JPEG),stb)
override BUILD := $(BUILD)-stb
else
$(error JPEG=$(JPEG): use JPEG=turbo (libjpeg-turbo) or JPEG=stb (stb_image))
endif
# TIFF: libtiff (lib/image_tiff.c) unless TIFF=0 or libtiff-4 is not installed
ifeq ($(TIFF),)
TIFF := $(if $(shell pkg-config --exists libtiff-4 && echo y),1,0)
endif
ifeq ($(TIFF),1)
TIFF_CFLAGS := $(shell pkg-config --cflags libtiff-4 2>/dev/null)
TIFF_LIBS := $(or $(shell pkg-config --libs libtiff-4 2>/dev/null),-ltiff)
FEATURE_CFLAGS += -DBMC_WITH_LIBTIFF $(TIFF_CFLAGS)
LDLIBS_BASE += $(TIFF_LIBS)
else
override BUILD := $(BUILD)-notiff
endif
# littleCMS for CIELab TIFFs (lib/image_lab.c), as Pillow converts them, unless LCMS=0 or absent
# (only with libtiff: nothing else needs it)
ifeq ($(TIFF),1)
ifeq ($(LCMS),)
LCMS := $(if $(shell pkg-config --exists lcms2 && echo y),1,0)
endif
ifeq ($(LCMS),1)
FEATURE_CFLAGS += -DBMC_WITH_LCMS2 $(shell pkg-config --cflags lcms2 2>/dev/null)
LDLIBS_BASE += $(or $(shell pkg-config --libs lcms2 2>/dev/null),-llcms2)
else
override BUILD := $(BUILD)-nolcms
endif
endif
# DICOM through DCMTK (lib/*.cc, C++ behind a C interface): on when its headers are installed.
DICOM ?= $(shell test -f /usr/include/dcmtk/dcmdata/dcfilefo.h && echo 1 || echo 0)
# the C++ compiler that matches CC (clang++ for the ThreadSanitizer and fuzz builds)
BMC_CXX ?= $(if $(findstring clang,$(CC)),clang++,c++)
DICOM_LIBS = -ldcmjpls -ldcmjpeg -ldcmimgle -ldcmdata -loflog -lofstd -lz -lstdc++
ifeq ($(DICOM),1)
FEATURE_CFLAGS += -DBMC_WITH_DICOM
LDLIBS_BASE += $(DICOM_LIBS)
LIB_CXX_SRC = $(wildcard lib/*.cc)
else
LIB_CXX_SRC =
override BUILD := $(BUILD)-nodicom
endif
# the optional decoders' defines (also used by fuzz/fuzz.mk)
CFLAGS_BASE += $(FEATURE_CFLAGS)
# Whole-slide images: OpenSlide in the library (lib/slide_openslide.c), HDF5 in the CLI only;
# on unless SLIDE=0 or their development files are not installed
ifeq ($(SLIDE),)
SLIDE := $(if $(shell pkg-config --exists openslide hdf5 && echo y),1,0)
endif
CLI_LDLIBS =
ifeq ($(SLIDE),1)
CFLAGS_BASE += -DBMC_WITH_OPENSLIDE $(shell pkg-config --cflags openslide 2>/dev/null || echo -I/usr/include/openslide)
LDLIBS_BASE += -lopenslide
CLI_CFLAGS = -DBMC_WITH_HDF5 $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
CLI_LDLIBS = $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
else
override BUILD := $(BUILD)-noslide
endif
ifeq ($(SANITIZE),1)
# every kernel level is compiled in (cpu.c picks one at run time; tests/sh/test_cpu_levels.sh
# runs each level the CPU has)
OPT = -O1 -g -fno-omit-frame-pointer
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
override BUILD := $(BUILD)-sanitize
endif

CFLAGS ?=
CFLAGS += $(CFLAGS_BASE) $(OPT)
LDLIBS = $(LDLIBS_BASE)

LIB_SRC   = $(wildcard lib/*.c)
LIB_OBJ   = $(LIB_SRC:lib/%.c=$(BUILD)/obj/lib/%.o) $(LIB_CXX_SRC:lib/%.cc=$(BUILD)/obj/lib/%.o)
# C++ sources: the C flags without -std=c11, plus C++17
CXXFLAGS_LIB = $(filter-out -std=c11,$(CFLAGS)) -std=c++17
# `biomedclip serve` (docs/SERVER.md) links libmicrohttpd and libcjson; SERVE=0 leaves it out
# (serve_off.c then says so). Its page is compiled in from tools/cli/serve_page.html.
SERVE    ?= 1
CLI_SRC   = $(wildcard tools/cli/*.c)
ifeq ($(SERVE),1)
CLI_SRC  := $(filter-out tools/cli/serve_off.c,$(CLI_SRC))
CLI_OBJ   = $(CLI_SRC:tools/cli/%.c=$(BUILD)/obj/cli/%.o) $(BUILD)/obj/cli/serve_page.o
CLI_LIBS  = $(shell pkg-config --libs libmicrohttpd libcjson 2>/dev/null || echo -lmicrohttpd -lcjson)
else
CLI_SRC  := $(filter-out tools/cli/serve%.c,$(CLI_SRC)) tools/cli/serve_off.c
CLI_OBJ   = $(CLI_SRC:tools/cli/%.c=$(BUILD)/obj/cli/%.o)
CLI_LIBS  =
endif
TEST_SRC  = $(wildcard tests/test_*.c)
TEST_BIN  = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# helper programs that Python-driven tests run (built by `make tests`, not run by themselves)
TOOL_SRC  = $(wildcard tests/tool_*.c)
TOOL_BIN  = $(TOOL_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC = $(wildcard bench/*.c)
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

VERSION := $(shell sed -n 's/^\#define BMC_VERSION_STRING "\(.*\)"/\1/p' include/biomedclip.h)
SONAME   = libbiomedclip.so.$(firstword $(subst ., ,$(VERSION)))

STATIC = $(BUILD)/libbiomedclip.a
SHLIB  = $(BUILD)/libbiomedclip.so
CLI    = $(BUILD)/biomedclip

.PHONY: all lib cli tests test bench bench-matrix clean install uninstall weights demo sanitize
all: $(STATIC) $(SHLIB) $(CLI)
lib: $(STATIC) $(SHLIB)
cli: $(CLI)
tests: $(TEST_BIN) $(TOOL_BIN) $(CLI) $(SHLIB)

# The kernels of each level (lib/cpu.h) in their own files, compiled for that level; nothing in
# them runs unless cpu.c finds the CPU and the OS support it. Everything else is baseline x86-64.
AVX512_FLAGS = -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c
AVX2_FLAGS   = -mavx2 -mfma -mf16c
$(BUILD)/obj/lib/tiles.o $(BUILD)/obj/lib/ops_avx512.o: CFLAGS += $(AVX512_FLAGS)
AVX512_BF16_FLAGS = $(AVX512_FLAGS) -mavx512bf16
$(BUILD)/obj/lib/tiles_bf16.o: CFLAGS += $(AVX512_BF16_FLAGS)
# the AVX2 level's files (fuzz/fuzz.mk compiles the same list with the same flags)
AVX2_OBJS = tiles_avx2 ops_avx2 image_resize_avx2
$(AVX2_OBJS:%=$(BUILD)/obj/lib/%.o): CFLAGS += $(AVX2_FLAGS)

$(BUILD)/obj/lib/%.o: lib/%.c $(wildcard lib/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/lib/%.o: lib/%.cc $(wildcard lib/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(BMC_CXX) $(CXXFLAGS_LIB) -c $< -o $@

$(BUILD)/obj/cli/%.o: tools/cli/%.c $(wildcard tools/cli/*.h) include/biomedclip.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CLI_CFLAGS) -c $< -o $@

# The page as a C array (xxd -i names it serve_page_html).
$(BUILD)/gen/serve_page.c: tools/cli/serve_page.html
	@mkdir -p $(dir $@)
	cd tools/cli && xxd -i serve_page.html > $(abspath $@).tmp
	mv $@.tmp $@

$(BUILD)/obj/cli/serve_page.o: $(BUILD)/gen/serve_page.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SHLIB): $(LIB_OBJ) lib/exports.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/exports.map $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(CLI_LIBS) $(CLI_LDLIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(STATIC) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(STATIC) $(LDFLAGS) -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(STATIC) $(LDFLAGS) $(LDLIBS)

# Every test: unit tests (cmocka), converter tests, parity against the PyTorch reference.
# The Python package's tests (tests/py/test_python_*.py) load $(SHLIB) through $BIOMEDCLIP_LIB.
test: tests
	BUILD=$(BUILD) PYTHON=$(PYTHON) SHARED_DATA=$(SHARED_DATA) BIOMEDCLIP_LIB=$(abspath $(SHLIB)) \
	    bash tests/run_all.sh

# The same test data as the plain build (no second generation of the random checkpoints).
# BMC_THREADS_FULL=0: test_threads and test_parallel leave the full-size model to the plain build
# (instrumented, those two alone take 8 minutes; test_bert_parity and test_vit_parity still run
# every kernel on the full-size model under the sanitizers).
sanitize:
	BMC_THREADS_FULL=$${BMC_THREADS_FULL:-0} BMC_TESTDATA=$${BMC_TESTDATA:-$(BUILD)/testdata} $(MAKE) SANITIZE=1 test

bench: $(BENCH_BIN) $(CLI)
	BUILD=$(BUILD) PYTHON=$(PYTHON) bash bench/run.sh

# every kernel level x weight type (f32, f16, bf16) against ONNX Runtime and PyTorch (bench/matrix.sh)
bench-matrix: $(BUILD)/bench/bench $(CLI)
	BUILD=$(BUILD) PYTHON=$(PYTHON) bash bench/matrix.sh

clean:
	rm -rf build build-* python/build python/*.egg-info

# ---- Python package (python/, docs/PYTHON.md) ------------------------------------------------
# `pip install ./python` bundles ../build/libbiomedclip.so (or $BIOMEDCLIP_LIB); `make python`
# builds a wheel with this build's library inside, for any BUILD (build-turbo, ...):
#   pip install $(BUILD)/python/biomedclip-*.whl
.PHONY: python
python: $(SHLIB)
	BIOMEDCLIP_LIB=$(abspath $(SHLIB)) $(PYTHON) -m pip wheel --no-build-isolation --no-index \
	    --no-deps -w $(BUILD)/python ./python

# ---- install, weights, demo (README.md, docs/API.md) ------------------------------------------
# make install PREFIX=/opt/bmc [DESTDIR=...]: header, static + shared library (with a soname),
# pkg-config file, the CLI. Build against it: cc app.c $(pkg-config --cflags --libs --static biomedclip)
LIBDIR ?= $(PREFIX)/lib
install: $(STATIC) $(SHLIB) $(CLI)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/biomedclip.h $(DESTDIR)$(PREFIX)/include/biomedclip.h
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libbiomedclip.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libbiomedclip.so.$(VERSION)
	ln -sf libbiomedclip.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libbiomedclip.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LDLIBS_BASE)|g' tools/biomedclip.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/biomedclip.pc
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/biomedclip

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/biomedclip.h $(DESTDIR)$(LIBDIR)/libbiomedclip.a \
	      $(DESTDIR)$(LIBDIR)/libbiomedclip.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libbiomedclip.so.$(VERSION) $(DESTDIR)$(LIBDIR)/pkgconfig/biomedclip.pc \
	      $(DESTDIR)$(PREFIX)/bin/biomedclip

# Official weights: download (resumable, sha256-checked) and convert to weights/biomedclip.bmc.
weights:
	PYTHON=$(PYTHON) SHARED_DATA=$(SHARED_DATA) bash tools/fetch_weights.sh

# Zero-shot table for the 9 example images with the BiomedCLIP notebook's labels and template.
demo: $(CLI)
	CLI=$(CLI) PYTHON=$(PYTHON) SHARED_DATA=$(SHARED_DATA) bash tools/demo.sh

# ---- hardening (docs/ROBUSTNESS.md): libFuzzer targets, ThreadSanitizer run --------------------
include fuzz/fuzz.mk

# The cmocka unit tests alone; `make sanitize-unit` runs them under ASan + UBSan (a quicker
# check than the whole `make sanitize`, which CI runs). Test data: the plain build's.
.PHONY: test-unit sanitize-unit
test-unit: $(TEST_BIN)
	@export BMC_TESTDATA=$${BMC_TESTDATA:-$(BUILD)/testdata} SHARED_DATA=$(SHARED_DATA) CMOCKA_MESSAGE_OUTPUT=stdout; \
	failed=; for t in $(TEST_BIN); do echo "=== $$t"; $$t || failed="$$failed $$(basename $$t)"; done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi; echo "all $(words $(TEST_BIN)) unit tests passed"

sanitize-unit:
	BMC_TESTDATA=$${BMC_TESTDATA:-$(BUILD)/testdata} $(MAKE) SANITIZE=1 test-unit

# 8 threads sharing one model under ThreadSanitizer (clang; builds into $(BUILD)-tsan).
.PHONY: tsan
tsan:
	BUILD=$(BUILD) BMC_TESTDATA=$(or $(BMC_TESTDATA),$(BUILD)/testdata) bash tests/sh/test_tsan.sh
