# common/ - what more than one part links, once: the byte buffer (buf.c),
# JSON string escaping (json.c), the record and its JSON writer
# (record.c), the collector's address (addr.c), token files (token.c),
# tokentap: lines on stderr (log.c, the only global: its level), cgroup
# paths (cgroup.c), the app name of a process (app.c).  No threads; every
# part links the library.

COMMON_SRCS    := $(wildcard common/*.c)
COMMON_LIB     := $(BUILD)/libttcommon.a
COMMON_SAN_LIB := $(SAN)/libttcommon.a

$(COMMON_LIB): $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o) common/common.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(COMMON_SAN_LIB): $(COMMON_SRCS:%.c=$(SAN)/obj/%.o) common/common.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

ALL_TARGETS += $(COMMON_LIB)

# Unit tests: tests/test_common_<module>.c against the sanitized library.
COMMON_TESTS := $(patsubst tests/%.c,$(SAN)/tests/%,$(wildcard tests/test_common_*.c))
UNIT_TESTS += $(COMMON_TESTS)

$(COMMON_TESTS): $(SAN)/tests/%: $(SAN)/obj/tests/%.o $(COMMON_SAN_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(TEST_LIBS)
