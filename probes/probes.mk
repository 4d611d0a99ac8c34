# probes/ - the eBPF uprobes on OpenSSL and their loader, tokentap-probe.
#
# vmlinux.h is generated from the running kernel's BTF, the BPF object is
# compiled with clang (CO-RE) and embedded in the loader as a skeleton.

PROBE_BUILD   := $(BUILD)/probes
PROBE_BIN     := $(BUILD)/tokentap-probe
PROBE_VMLINUX := $(PROBE_BUILD)/vmlinux.h
PROBE_BPF_OBJ := $(PROBE_BUILD)/sslprobe.bpf.o
PROBE_SKEL    := $(PROBE_BUILD)/sslprobe.skel.h
BPFTOOL       ?= bpftool
VMLINUX_BTF   ?= /sys/kernel/btf/vmlinux
PROBE_LIBS    := -lbpf -lelf -lz -lcapstone

# Modules of the loader (every probes/*.c but the BPF program and main).
PROBE_MODS    := $(filter-out probes/sslprobe.c,$(filter-out %.bpf.c,$(wildcard probes/*.c)))
PROBE_SRCS    := probes/sslprobe.c $(PROBE_MODS)

# The shared layer: ship/ (records and counters to the collector) and
# common/ (cgroup paths, app names, buffers).  Nothing of agent/.
PROBE_LIBS += -lpthread -ldl

ARCH_BPF := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

$(PROBE_VMLINUX):
	@mkdir -p $(dir $@)
	$(call msg,BTF,$@)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(PROBE_BPF_OBJ): probes/sslprobe.bpf.c probes/sslprobe.h $(PROBE_VMLINUX)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)$(CLANG) -g -O2 -target bpf -mcpu=v3 \
		-D__TARGET_ARCH_$(ARCH_BPF) -I$(PROBE_BUILD) -Iprobes \
		-Wall -Werror -c $< -o $@

$(PROBE_SKEL): $(PROBE_BPF_OBJ)
	$(call msg,SKEL,$@)$(BPFTOOL) gen skeleton $< name sslprobe_bpf > $@

$(BUILD)/obj/probes/%.o $(SAN)/obj/probes/%.o: ALL_CFLAGS += -I$(PROBE_BUILD) -Iprobes
$(SAN)/obj/probes/%.o: SAN_CFLAGS += -I$(PROBE_BUILD) -Iprobes
# The generated skeleton comes before any object that includes it (a
# parallel build must not compile them first).
$(BUILD)/obj/probes/sslprobe.o $(BUILD)/obj/probes/attach.o: $(PROBE_SKEL)

$(PROBE_BIN): $(PROBE_SRCS:%.c=$(BUILD)/obj/%.o) $(SHIP_LIB) $(DECODER_LIB) $(COMMON_LIB)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(PROBE_LIBS) $(DECODER_LIBS)

ALL_TARGETS += $(PROBE_BIN)
INSTALL_BIN += $(PROBE_BIN)

# Unit tests of the loader's modules: tests/test_probe_<module>.c.
PROBE_TESTS := $(patsubst probes/tests/%.c,$(SAN)/tests/%,$(wildcard probes/tests/test_probe_*.c))
UNIT_TESTS  += $(PROBE_TESTS)

$(SAN)/obj/probes/tests/%.o: SAN_CFLAGS += -Iprobes

$(PROBE_TESTS): $(SAN)/tests/%: $(SAN)/obj/probes/tests/%.o $(filter-out $(SAN)/obj/probes/attach.o $(SAN)/obj/probes/push.o,$(PROBE_MODS:%.c=$(SAN)/obj/%.o)) $(DECODER_SAN_LIB) $(COMMON_SAN_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) $(SAN_FLAGS) -o $@ $^ $(DECODER_LIBS) $(TEST_LIBS) -lssl -lcapstone -ldl -lpthread

# The benchmark's floor: do-nothing uprobes on the same symbols.
PROBE_NULL_OBJ  := $(PROBE_BUILD)/nullprobe.bpf.o
PROBE_NULL_SKEL := $(PROBE_BUILD)/nullprobe.skel.h
PROBE_NULL_BIN  := $(BUILD)/bench/bench_probe_null

$(PROBE_NULL_OBJ): probes/nullprobe.bpf.c $(PROBE_VMLINUX)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)$(CLANG) -g -O2 -target bpf -mcpu=v3 \
		-D__TARGET_ARCH_$(ARCH_BPF) -I$(PROBE_BUILD) -Wall -Werror -c $< -o $@

$(PROBE_NULL_SKEL): $(PROBE_NULL_OBJ)
	$(call msg,SKEL,$@)$(BPFTOOL) gen skeleton $< name nullprobe_bpf > $@

$(BUILD)/obj/bench/bench_probe_null.o: ALL_CFLAGS += -I$(PROBE_BUILD) -Iprobes
$(BUILD)/obj/bench/bench_probe_null.o: $(PROBE_NULL_SKEL)

$(PROBE_NULL_BIN): $(BUILD)/obj/bench/bench_probe_null.o \
		$(addprefix $(BUILD)/obj/probes/,elfsym.o elfimg.o gofind.o bsslfind.o rustlsfind.o tlsfind.o)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(PROBE_LIBS)

# CPU per SSL call in one thread, no sockets (linked to the system libssl).
PROBE_CALLS_BIN := $(BUILD)/bench/bench_probe_calls

$(PROBE_CALLS_BIN): $(BUILD)/obj/bench/bench_probe_calls.o
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ -lssl -lcrypto

ALL_TARGETS += $(PROBE_NULL_BIN) $(PROBE_CALLS_BIN)

# Paced TLS streams at a call rate, both ends (the paced stage).
PROBE_PACED_BIN := $(BUILD)/bench/bench_paced

$(PROBE_PACED_BIN): $(BUILD)/obj/bench/bench_paced.o
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)$(CC) -o $@ $^ -lssl -lcrypto

ALL_TARGETS += $(PROBE_PACED_BIN)

# End-to-end tests (root, real kernel) and the benchmark.
E2E_TESTS += $(sort $(wildcard tests/e2e/test_probe_*.sh))
BENCHES   += $(wildcard bench/bench_probe.sh bench/bench_probe_stacks.sh)
