# proctap - build of the C core, the standalone ./example and the Rust crate.
#
#   make            crate (release), libproctap.a, BPF object, ./example
#   make lib O=DIR LIBBPF_INCLUDE=DIR   the C core only (build.rs calls this)
#   make test       the test suite (same as ./dev.sh test without the set-up)
#   make vmlinux    regenerate vendor/$(ARCH)/vmlinux.h from the running kernel
#   make gen        write the code generated from c/events/*.toml into build/ to read
#   make bench-exec | bench-files | bench-net | bench-transport | bench-latency | bench-profile | bench-criterion | bench-vm | bench
#                   benchmarks (as root); each rewrites its table in BENCHMARKS.md
#
# There is one libbpf: the one libbpf-sys vendors and builds statically. Its
# headers and libbpf.a are found through cargo's build-script messages.

ARCH ?= $(shell uname -m)
BPF_ARCH := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(ARCH)))
CLANG ?= $(shell command -v clang-19 || command -v clang)
LLVM_STRIP ?= $(shell command -v llvm-strip-19 || command -v llvm-strip)
BPFTOOL ?= $(shell command -v bpftool || echo /usr/sbin/bpftool)
CC ?= cc
CARGO ?= cargo
O ?= build
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wno-unused-parameter

GEN := $(O)/gen
# The object's BTF names source files: the same names from any checkout and
# build directory, so a rebuild is byte-identical to prebuilt/. (The last
# matching map wins: the build directories are inside the checkout.)
REPRODUCIBLE := -ffile-prefix-map=$(CURDIR)=. -ffile-prefix-map=$(abspath $(O))=out \
	$(if $(LIBBPF_INCLUDE),-ffile-prefix-map=$(abspath $(LIBBPF_INCLUDE))=libbpf)
BPF_HEADERS := c/proctap.h $(wildcard c/bpf/lib/*.h) $(GEN)/pt_kinds.h $(GEN)/pt_kinds.bpf.h
BPF_SRCS := $(wildcard c/bpf/*.bpf.c)
# User tracepoints (PROCTAP_EVENTS): build.rs writes their programs here.
GEN_BPF_SRCS := $(wildcard $(GEN)/*.bpf.c)
BPF_OBJS := $(patsubst c/bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_SRCS)) \
	$(patsubst $(GEN)/%.bpf.c,$(O)/bpf/%.bpf.o,$(GEN_BPF_SRCS))
LOADER_HEADERS := c/proctap.h $(wildcard c/loader/*.h) $(GEN)/pt_kinds.h $(O)/proctap.skel.h
LOADER_OBJS := $(O)/obj/bootstrap.o $(patsubst c/loader/%.c,$(O)/obj/%.o,$(wildcard c/loader/*.c)) \
	$(O)/obj/pt_kinds.o $(O)/obj/pt_json.o $(O)/obj/bpf_object.o
# With BPF_PREBUILT=1 the BPF object and its skeleton are the checked-in
# copies for the target architecture: no clang or bpftool needed.
PREBUILT := prebuilt/$(ARCH)

.PHONY: all lib example example-link test test-kernels test-arm64 vmlinux gen clean FORCE \
	bench bench-exec bench-files bench-net bench-transport bench-latency bench-profile bench-criterion bench-vm

all: example

# ---- the C core (driven by build.rs with O=$OUT_DIR) -----------------------
# build.rs first writes $(GEN) from the registry (c/events/*.toml).
lib: $(O)/libproctap.a

$(GEN)/%:
	@echo "$@ is missing: it is generated from c/events by build.rs (run cargo build, or make)" >&2; exit 1

define bpf_compile
	@test -n "$(CLANG)" || { echo "clang not found: run ./dev.sh setup" >&2; exit 1; }
	@test -n "$(LIBBPF_INCLUDE)" || { echo "LIBBPF_INCLUDE unset (use make, or cargo build)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) \
		-Ic -Ic/bpf -I$(GEN) -Ivendor/$(ARCH) -I$(LIBBPF_INCLUDE) -Wall -Wno-unused-function \
		$(REPRODUCIBLE) -c $< -o $@.tmp
	$(LLVM_STRIP) -g $@.tmp
	mv $@.tmp $@
endef

ifeq ($(BPF_PREBUILT),1)
$(O)/proctap.bpf.o: $(PREBUILT)/proctap.bpf.o
	@mkdir -p $(@D)
	cp $< $@

$(O)/proctap.skel.h: $(PREBUILT)/proctap.skel.h
	@mkdir -p $(@D)
	cp $< $@
else
$(O)/bpf/%.bpf.o: c/bpf/%.bpf.c $(BPF_HEADERS) vendor/$(ARCH)/vmlinux.h
	$(bpf_compile)

$(O)/bpf/%.bpf.o: $(GEN)/%.bpf.c $(BPF_HEADERS) vendor/$(ARCH)/vmlinux.h
	$(bpf_compile)

# One object: the programs of every concern, the transport maps defined once
# (weak definitions, merged by the static linker), one skeleton.
$(O)/proctap.bpf.o: $(BPF_OBJS)
	$(BPFTOOL) gen object $@ $^

# The skeleton without the object's bytes (bpf_object.S links them in), so
# that both can be checked in (prebuilt/, refreshed by ./dev.sh prebuilt).
$(O)/proctap.skel.h: $(O)/proctap.bpf.o c/tools/skel-bytes.awk
	$(BPFTOOL) gen skeleton $< name proctap_bpf > $@.full
	awk -f c/tools/skel-bytes.awk $@.full > $@.tmp
	rm $@.full
	mv $@.tmp $@
endif

$(O)/obj/bpf_object.o: c/loader/bpf_object.S $(O)/proctap.bpf.o
	@mkdir -p $(@D)
	$(CC) -DPT_BPF_OBJECT='"$(abspath $(O)/proctap.bpf.o)"' -c $< -o $@

$(O)/obj/%.o: c/%.c $(LOADER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -fPIC -Ic -Ic/loader -I$(O) -I$(GEN) -I$(LIBBPF_INCLUDE) -c $< -o $@

$(O)/obj/%.o: c/loader/%.c $(LOADER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -fPIC -Ic -Ic/loader -I$(O) -I$(GEN) -I$(LIBBPF_INCLUDE) -c $< -o $@

$(O)/obj/%.o: $(GEN)/%.c $(LOADER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -fPIC -Ic -Ic/loader -I$(O) -I$(GEN) -I$(LIBBPF_INCLUDE) -c $< -o $@

$(O)/libproctap.a: $(LOADER_OBJS)
	rm -f $@
	ar rcs $@ $^

# The generated files, to read: build/gen/ and build/kinds.rs.
gen:
	$(CARGO) run -q -p proctap-codegen -- c/events build

# ---- crate + example, against libbpf-sys' libbpf ----------------------------
# cargo prints each build script's out_dir; libbpf-sys' holds libbpf.a and
# include/, proctap's holds libproctap.a. A package id reads
# "...#proctap@0.1.0", or "file:///.../proctap#0.1.0" when the checkout
# directory is itself named proctap. Only the sub-make that links reads
# those paths, and it has no rule to remake them.
ifdef LINK_EXAMPLE
include $(O)/cargo-paths.mk
example-link:
	$(CC) $(CFLAGS) $(WARN) -Ic -I$(PROCTAP_OUT)/gen -I$(LIBBPF_OUT)/include c/example.c \
		$(PROCTAP_OUT)/libproctap.a $(LIBBPF_OUT)/libbpf.a -lelf $(LIBBPF_OUT)/libz.a -o example
else
# One build does both: compile, and leave its messages (one JSON object a
# line, diagnostics rendered on stderr) for finding the out_dirs.
$(O)/cargo-paths.mk: FORCE
	@mkdir -p $(O)
	$(CARGO) build --release --examples --features bpf-rebuild,tokio,cli --message-format=json-render-diagnostics > $(O)/cargo.json
	@grep '"reason":"build-script-executed"' $(O)/cargo.json | \
	 sed -nE 's/.*[#/](libbpf-sys|proctap)[@#][^"]*".*"out_dir":"([^"]*)".*/\1 \2/p' | \
	 awk '$$1=="libbpf-sys"{print "LIBBPF_OUT := " $$2} $$1=="proctap"{print "PROCTAP_OUT := " $$2}' > $@.tmp
	@grep -q LIBBPF_OUT $@.tmp && grep -q PROCTAP_OUT $@.tmp || \
	 { echo "could not locate cargo build outputs in $(O)/cargo.json" >&2; exit 1; }
	@mv $@.tmp $@

example: $(O)/cargo-paths.mk c/example.c c/proctap.h
	$(MAKE) --no-print-directory example-link LINK_EXAMPLE=1
endif

test:
	$(CARGO) test --release --workspace --features proctap/bpf-rebuild,proctap/tokio,proctap/cli

# The kernel test suite on Debian's 6.1, 6.12 and sid kernels in qemu;
# the C dumper, cross-built, on Debian's arm64 kernel.
test-kernels:
	tests/vm/kernels.sh

test-arm64:
	tests/vm/arm64.sh

bench:
	./dev.sh bench all
bench-exec bench-files bench-net bench-transport bench-latency bench-profile bench-criterion bench-vm:
	./dev.sh bench $(patsubst bench-%,%,$@)

vmlinux:
	mkdir -p vendor/$(ARCH)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vendor/$(ARCH)/vmlinux.h

clean:
	rm -rf $(O) example
	$(CARGO) clean
