# tokentap - top-level Makefile.
#
#   make              build/libtokentap.so, build/tokentapd, build/tokentap,
#                     build/tokentap-probe (each part adds its own targets)
#   make test         installs missing Debian packages, then every test
#   make demo         the end-to-end demo on the embedded defaults
#   make fuzz         every libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench        the benchmarks under bench/
#   make V=1 ...      show the full commands
#
# Each part keeps its own rules in a fragment (decoder/decoder.mk,
# agent/agent.mk, collector/collector.mk, probes/probes.mk) included below.
# Tests are built with ASan and UBSan under build/san/.

.DELETE_ON_ERROR:
.SUFFIXES:

BUILD    ?= build
SAN      := $(BUILD)/san
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
ifeq ($(origin CC),default)
CC       := cc
endif
CLANG    ?= clang

ifeq ($(V),1)
Q   :=
msg :=
else
Q   := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

PKGS_CFLAGS := -I/usr/include/cjson
WARN        := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
BASE_CFLAGS := -std=gnu11 -g -D_GNU_SOURCE -Iinclude -I. $(PKGS_CFLAGS) $(WARN)
CFLAGS      ?= -O2
ALL_CFLAGS  := $(BASE_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
SAN_CFLAGS  := $(BASE_CFLAGS) -O1 -fPIC $(SAN_FLAGS)

DECODER_LIBS := -lcjson -lnghttp2 -lz -lbrotlidec -lzstd -lcrypto
TEST_LIBS    := -lcmocka -lbrotlienc

# Filled by the fragments.
ALL_TARGETS :=
UNIT_TESTS  :=
E2E_TESTS   :=
FUZZ_TARGETS :=
BENCHES     :=
INSTALL_BIN :=
INSTALL_LIB :=

.PHONY: all
all: build-all

# Every fragment must exist: a missing one is an error, not a lost part.
include common/common.mk
include decoder/decoder.mk
include ship/ship.mk
include agent/agent.mk
include collector/collector.mk
include probes/probes.mk
include tests/hardening.mk

# The mock provider's own end-to-end check, and the tree's rooms.
E2E_TESTS += tests/e2e/test_mock_selfcheck.sh tests/e2e/test_layout.sh

.PHONY: build-all
build-all: $(ALL_TARGETS)

# Generic object rules: normal and sanitized builds of any source file.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(SAN)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC-SAN,$<)$(CC) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

.PHONY: deps
deps:
	$(Q)scripts/deps.sh

.PHONY: unit-tests
unit-tests: $(UNIT_TESTS)

# `make test` installs what it needs (Debian packages; the pinned LLM
# programs from npm, scripts/npm-apps.sh), builds everything, then runs the
# unit tests (sanitized) and the end-to-end tests, and prints one summary.
.PHONY: test
test: deps
	$(Q)$(MAKE) --no-print-directory build-all unit-tests
	$(Q)scripts/npm-apps.sh install
	$(Q)tests/run.sh $(UNIT_TESTS) $(E2E_TESTS)

.PHONY: check
check: test

.PHONY: fuzz
FUZZ_SECONDS ?= 60
fuzz: deps $(FUZZ_TARGETS)
	$(Q)fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

.PHONY: fuzz-long
fuzz-long: $(FUZZ_TARGETS)
	$(Q)fuzz/run.sh $(or $(FUZZ_SECONDS),3600) $(FUZZ_TARGETS)

.PHONY: bench
bench: bench-deps
.PHONY: bench-deps
bench-deps:
	$(Q)scripts/deps.sh bench
bench: build-all $(BENCHES)
	$(Q)for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

.PHONY: install
install: build-all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/tokentap
	$(if $(INSTALL_BIN),install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/)
	$(if $(INSTALL_LIB),install -m 0755 $(INSTALL_LIB) $(DESTDIR)$(PREFIX)/lib/tokentap/)

.PHONY: clean
clean:
	rm -rf $(BUILD)

# The README's main command: the whole product, end to end, on the
# embedded defaults.
.PHONY: demo
demo: deps
	$(Q)$(MAKE) --no-print-directory build-all
	$(Q)demo/run.sh
