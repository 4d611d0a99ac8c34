# common/ - small pure modules that more than one part links (the agent and
# the probe loader): no I/O, no threads, no globals.  Each part adds
# COMMON_SRCS to its own sources; this fragment builds only the tests.
#
#   app.c    the app name of a process from its executable and arguments

COMMON_SRCS := $(wildcard common/*.c)

# Unit tests: tests/test_common_<module>.c against the sanitized objects.
COMMON_TESTS := $(patsubst tests/%.c,$(SAN)/tests/%,$(wildcard tests/test_common_*.c))
UNIT_TESTS += $(COMMON_TESTS)

$(COMMON_TESTS): $(SAN)/tests/%: $(SAN)/obj/tests/%.o $(COMMON_SRCS:%.c=$(SAN)/obj/%.o)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(TEST_LIBS)
