# tests/hardening.mk - issue #8: chaos and secret tests, their clients, and
# `make test-asan` (the daemon and the agent under sanitizers).
#
#   make test-asan    the collector's end-to-end tests against a tokentapd
#                     built with ASan+UBSan, and the agent's under a
#                     sanitized libtokentap.so (ASan, LeakSanitizer at exit)
#                     in the C clients; any sanitizer report fails it
#
# Chaos sizes: CHAOS_FULL=0 in the environment runs them smaller.

CHAOS_CLIENTS := $(patsubst tests/e2e/chaos_clients/%.c,$(BUILD)/tests/chaos_clients/%,\
		 $(wildcard tests/e2e/chaos_clients/*.c))
ALL_TARGETS += $(CHAOS_CLIENTS)
$(CHAOS_CLIENTS): $(BUILD)/tests/chaos_clients/%: tests/e2e/chaos_clients/%.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)$(CC) $(BASE_CFLAGS) -O2 -o $@ $< -lssl -lcrypto -lpthread

E2E_TESTS += $(wildcard tests/e2e/test_chaos_*.sh) $(wildcard tests/e2e/test_secrets_*.sh)
# The adversarial cases against the built daemon and agent (issue 14).
E2E_TESTS += $(wildcard tests/e2e/test_adv_*.sh)

# The agent built with ASan+UBSan, for hosts that load libasan first:
#   LD_PRELOAD=$(cc -print-file-name=libasan.so):build/san/libtokentap.so
AGENT_SAN_SO := $(SAN)/libtokentap.so
$(AGENT_SAN_SO): $(AGENT_SRCS:%.c=$(SAN)/obj/%.o) $(SHIP_SAN_LIB) $(DECODER_SAN_LIB) $(COMMON_SAN_LIB) $(AGENT_MAP)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -shared $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(SHIP_SAN_LIB) $(DECODER_SAN_LIB) $(COMMON_SAN_LIB) \
		-Wl,--version-script=$(AGENT_MAP) $(DECODER_LIBS) -lpthread -ldl

.PHONY: test-asan
test-asan: deps
	$(Q)$(MAKE) --no-print-directory build-all $(SAN)/tokentapd $(AGENT_SAN_SO)
	$(Q)CC="$(CC)" BUILD="$(BUILD)" tests/e2e/chaos_clients/asan_run.sh
