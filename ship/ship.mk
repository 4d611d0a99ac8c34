# ship/ - delivering records to tokentapd, shared by the agent and the
# probe: the collector client (client.c; host names looked up off the
# caller's path, names.c), the shipper thread (ship.c) and the spool
# (spool.c).  The tokentap command uses the client too.

SHIP_SRCS    := $(wildcard ship/*.c)
SHIP_LIB     := $(BUILD)/libttship.a
SHIP_SAN_LIB := $(SAN)/libttship.a

$(SHIP_LIB): $(SHIP_SRCS:%.c=$(BUILD)/obj/%.o) ship/ship.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(SHIP_SAN_LIB): $(SHIP_SRCS:%.c=$(SAN)/obj/%.o) ship/ship.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

ALL_TARGETS += $(SHIP_LIB)

# Unit tests: tests/test_ship_<what>.c against the sanitized libraries
# (the record writer comes from the common library).
SHIP_TESTS := $(patsubst tests/%.c,$(SAN)/tests/%,$(wildcard tests/test_ship_*.c))
UNIT_TESTS += $(SHIP_TESTS)

$(SHIP_TESTS): $(SAN)/tests/%: $(SAN)/obj/tests/%.o $(SHIP_SAN_LIB) $(DECODER_SAN_LIB) $(COMMON_SAN_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(DECODER_LIBS) $(TEST_LIBS) -lpthread
