# collector/ - tokentapd (the daemon) and tokentap (the command).
#
# The collector modules go into one static library that the two programs,
# the unit tests (sanitized copy), the fuzzers and the benchmark share.
# data/prices.json is embedded by the assembler (.incbin) in prices_data.c.

COL_SRCS := collector/rec.c collector/batch.c collector/prices.c \
            collector/prices_data.c collector/config.c collector/store.c \
            collector/usage.c collector/metrics.c collector/server.c \
            collector/budget.c collector/detect.c collector/alert.c \
            collector/probestats.c collector/exekind.c \
            collector/rollup.c
COL_CLI_SRCS := collector/tokentap.c collector/report.c
COL_LIB      := $(BUILD)/libttcollector.a
COL_SAN_LIB  := $(SAN)/libttcollector.a
COL_LIBS     := -lcjson -lsqlite3 -lmicrohttpd -lcurl -lelf -lpthread -lm
TOKENTAPD    := $(BUILD)/tokentapd
TOKENTAP     := $(BUILD)/tokentap

# .incbin is invisible to -MMD: name the data file here.
$(BUILD)/obj/collector/prices_data.o $(SAN)/obj/collector/prices_data.o: data/prices.json
# `tokentap run` looks for the agent under the install prefix too.
$(BUILD)/obj/collector/tokentap.o: ALL_CFLAGS += -DTT_PREFIX='"$(PREFIX)"'
$(SAN)/obj/collector/tokentap.o: SAN_CFLAGS += -DTT_PREFIX='"$(PREFIX)"'

$(COL_LIB): $(COL_SRCS:%.c=$(BUILD)/obj/%.o) collector/collector.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(COL_SAN_LIB): $(COL_SRCS:%.c=$(SAN)/obj/%.o) collector/collector.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(TOKENTAPD): $(BUILD)/obj/collector/tokentapd.o $(COL_LIB) $(COMMON_LIB)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(COL_LIBS)

$(TOKENTAP): $(COL_CLI_SRCS:%.c=$(BUILD)/obj/%.o) $(COL_LIB) $(SHIP_LIB) $(COMMON_LIB)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(COL_LIBS)

ALL_TARGETS += $(TOKENTAPD) $(TOKENTAP)
INSTALL_BIN += $(TOKENTAPD) $(TOKENTAP)

# Unit tests: tests/test_col_<module>.c against the sanitized library.
COL_TESTS := $(patsubst tests/%.c,$(SAN)/tests/%,$(wildcard tests/test_col_*.c))
UNIT_TESTS += $(COL_TESTS)


$(COL_TESTS): $(SAN)/tests/%: $(SAN)/obj/tests/%.o $(COL_SAN_LIB) $(COMMON_SAN_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(COL_LIBS) $(TEST_LIBS)

# End-to-end tests drive the built daemon and CLI with curl.
COL_E2E := $(wildcard tests/e2e/test_collector_*.sh) tests/e2e/test_adv_store.sh
E2E_TESTS += $(COL_E2E)

# libFuzzer targets: the record-batch parser/validator and the config parser.
COL_FUZZ := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_col_*.c))
COL_FUZZ_SRCS := common/buf.c common/json.c collector/rec.c collector/batch.c collector/prices.c \
                 collector/prices_data.c collector/config.c collector/probestats.c \
                 collector/budget.c collector/store.c collector/rollup.c
FUZZ_TARGETS += $(COL_FUZZ)

$(COL_FUZZ): $(BUILD)/fuzz/%: fuzz/%.c $(COL_FUZZ_SRCS) $(wildcard collector/*.h) data/prices.json
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)$(CLANG) $(FUZZ_CFLAGS) -Icollector -o $@ $< $(COL_FUZZ_SRCS) -lcjson -lsqlite3 -lpthread -lm

# Benchmark: drives a real tokentapd over HTTP.
COL_BENCH := $(BUILD)/bench/bench_ingest
BENCHES += $(COL_BENCH)
$(COL_BENCH): $(BUILD)/obj/bench/bench_ingest.o | $(TOKENTAPD)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ -lcurl -lpthread -lm

# A sanitized daemon for hunting memory errors by hand:
#   make build/san/tokentapd && TOKENTAPD_BIN=build/san/tokentapd tests/e2e/test_collector_api.sh
$(SAN)/tokentapd: $(SAN)/obj/collector/tokentapd.o $(COL_SAN_LIB) $(COMMON_SAN_LIB)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(COL_LIBS)

# Budgets, leases, enforce mode, detectors and alerts, end to end (issue #6).
E2E_TESTS += $(wildcard tests/e2e/test_budget_*.sh tests/e2e/test_alerts_*.sh)

# Benchmark: /v1/usage over 10M records, buckets against a scan, concurrent
# readers, ingest with the buckets on and off (in process, the store's API).
ROLLUP_BENCH := $(BUILD)/bench/bench_rollup
BENCHES += $(ROLLUP_BENCH)
$(ROLLUP_BENCH): $(BUILD)/obj/bench/bench_rollup.o $(COL_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(COL_LIBS) -lcurl
