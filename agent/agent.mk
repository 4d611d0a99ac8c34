# agent/ - libtokentap.so, the LD_PRELOAD shim, and its tests and bench.

AGENT_SRCS := $(wildcard agent/*.c)
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/obj/%.o)

$(BUILD)/obj/agent/%.o $(SAN)/obj/agent/%.o: ALL_CFLAGS += -Icommon
$(SAN)/obj/agent/%.o: SAN_CFLAGS += -Icommon
AGENT_SO   := $(BUILD)/libtokentap.so
AGENT_MAP  := agent/libtokentap.map

# -z defs: a symbol the decoder does not provide fails the link here, not
# the host program at its first TLS call.  Linked aside and renamed: a
# program starting meanwhile maps the old file or the new, never half one.
$(AGENT_SO): $(AGENT_OBJS) $(SHIP_LIB) $(DECODER_LIB) $(COMMON_LIB) $(AGENT_MAP)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -shared -o $@.tmp $(AGENT_OBJS) $(SHIP_LIB) $(DECODER_LIB) $(COMMON_LIB) \
		-Wl,--version-script=$(AGENT_MAP) -Wl,--exclude-libs,ALL \
		-Wl,-z,defs -Wl,-z,relro -Wl,-z,now \
		$(DECODER_LIBS) -lpthread -ldl && mv -f $@.tmp $@

ALL_TARGETS += $(AGENT_SO)
INSTALL_LIB += $(AGENT_SO)

# Unit tests: every agent module but the hooks and the process-wide glue
# (their constructors and exported hooks would act inside the test program).
AGENT_UNIT_SRCS := $(filter-out agent/hooks.c agent/agent.c agent/exec.c,$(AGENT_SRCS))
AGENT_UNIT_OBJS := $(AGENT_UNIT_SRCS:%.c=$(SAN)/obj/%.o)
AGENT_TESTS := $(patsubst tests/%.c,$(SAN)/tests/%,$(wildcard tests/test_agent_*.c))
UNIT_TESTS += $(AGENT_TESTS)

# Enforce mode's test cuts its input with the shared splitter and builds
# HTTP/2 connections with nghttp2's encoder.
$(SAN)/tests/test_agent_enforce: $(SAN)/obj/tests/support/split.o $(SAN)/obj/tests/support/h2_build.o

$(AGENT_TESTS): $(SAN)/tests/%: $(SAN)/obj/tests/%.o $(AGENT_UNIT_OBJS) $(SHIP_SAN_LIB) $(DECODER_SAN_LIB) $(COMMON_SAN_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(DECODER_LIBS) $(TEST_LIBS) -lpthread -ldl

# Client programs the end-to-end tests drive (real OpenSSL, real threads).
AGENT_CLIENTS := $(patsubst tests/e2e/clients/%.c,$(BUILD)/tests/clients/%,$(wildcard tests/e2e/clients/*.c))
ALL_TARGETS += $(AGENT_CLIENTS)
$(AGENT_CLIENTS): $(BUILD)/tests/clients/%: tests/e2e/clients/%.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)$(CC) $(BASE_CFLAGS) -O2 -o $@ $< -lssl -lcrypto -lpthread

E2E_TESTS += $(wildcard tests/e2e/test_agent_*.sh)

# Benchmark: the script drives a small TLS client/server pair.
AGENT_BENCH_BIN := $(BUILD)/bench/bench_agent_tls
$(AGENT_BENCH_BIN): bench/bench_agent_tls.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)$(CC) $(BASE_CFLAGS) -O2 -o $@ $< -lssl -lcrypto -lpthread
BENCHES += bench/bench_agent.sh
bench/bench_agent.sh: $(AGENT_BENCH_BIN) $(AGENT_SO)

# Benchmark: what the budget check adds to an LLM call's request path
# (enforce mode against a real tokentapd, side by side with monitor mode).
BUDGET_BENCH := $(BUILD)/bench/bench_budget
BUDGET_BENCH_OBJS := $(filter-out agent/hooks.c agent/agent.c,$(AGENT_SRCS))
$(BUDGET_BENCH): $(BUILD)/obj/bench/bench_budget.o $(BUDGET_BENCH_OBJS:%.c=$(BUILD)/obj/%.o) $(SHIP_LIB) $(DECODER_LIB) $(COMMON_LIB) | $(BUILD)/tokentapd
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(DECODER_LIBS) -lpthread -ldl
BENCHES += $(BUDGET_BENCH)
