# decoder/ - the connection decoder, a static library shared by every part.

DECODER_SRCS := $(wildcard decoder/*.c)
DECODER_LIB  := $(BUILD)/libttdecoder.a
DECODER_SAN_LIB := $(SAN)/libttdecoder.a

$(DECODER_LIB): $(DECODER_SRCS:%.c=$(BUILD)/obj/%.o) decoder/decoder.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(DECODER_SAN_LIB): $(DECODER_SRCS:%.c=$(SAN)/obj/%.o) decoder/decoder.mk
	$(call msg,AR,$@)rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

ALL_TARGETS += $(DECODER_LIB)

# Decoder unit tests: tests/test_<module>.c, linked with the sanitized library
# and the shared test helpers in tests/support/.
TEST_SUPPORT_SRCS := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(SAN)/obj/%.o)
DECODER_TESTS := $(patsubst tests/%.c,$(SAN)/tests/%,$(wildcard tests/test_dec_*.c))
UNIT_TESTS += $(DECODER_TESTS)

$(DECODER_TESTS): $(SAN)/tests/%: $(SAN)/obj/tests/%.o $(TEST_SUPPORT_OBJS) $(DECODER_SAN_LIB) $(COMMON_SAN_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(DECODER_LIBS) $(TEST_LIBS)

# libFuzzer: clang builds the decoder sources again with the fuzzer runtime.
FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=all -Wno-unknown-warning-option
DECODER_FUZZ := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_dec_*.c))
FUZZ_TARGETS += $(DECODER_FUZZ)

$(DECODER_FUZZ): $(BUILD)/fuzz/%: fuzz/%.c $(DECODER_SRCS) $(COMMON_SRCS) $(wildcard decoder/*.h common/*.h include/tokentap/*.h fuzz/*.h)
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(DECODER_SRCS) $(COMMON_SRCS) $(DECODER_LIBS)

# Benchmarks.
DECODER_BENCH := $(BUILD)/bench/bench_decoder
BENCHES += $(DECODER_BENCH)
$(DECODER_BENCH): $(BUILD)/obj/bench/bench_decoder.o $(BUILD)/obj/tests/support/h2_build.o $(DECODER_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(DECODER_LIBS) -lssl

# The allocation-failure sweep replaces malloc itself, so it is built
# without sanitizers, against the normal objects.
ALLOCFAIL_TEST := $(BUILD)/tests/allocfail_decoder
UNIT_TESTS += $(ALLOCFAIL_TEST)
# -rdynamic: the libraries must see this program's malloc, not libc's.
$(ALLOCFAIL_TEST): $(BUILD)/obj/tests/allocfail_decoder.o \
		   $(BUILD)/obj/tests/support/feed.o $(BUILD)/obj/tests/support/tbuf.o \
		   $(DECODER_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -rdynamic -o $@ $^ $(DECODER_LIBS) -lbrotlienc
