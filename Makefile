# proctap - build of the C core, the standalone ./example and the Rust crate.
#
#   make            crate (release), libproctap.a, BPF object, ./example
#   make lib O=DIR LIBBPF_INCLUDE=DIR   the C core only (build.rs calls this)
#   make test       the test suite (same as ./dev.sh test without the set-up)
#   make vmlinux    regenerate vendor/$(ARCH)/vmlinux.h from the running kernel
#   make bench-exec | bench-transport | bench-latency | bench-profile | bench-criterion | bench
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

C_HEADERS := c/proctap.h c/transport.bpf.h
BPF_SRCS := c/proc.bpf.c c/synth.bpf.c c/profile.bpf.c
BPF_OBJS := $(patsubst c/%.bpf.c,$(O)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst c/%.bpf.c,$(O)/%.skel.h,$(BPF_SRCS))

.PHONY: all lib example example-link test vmlinux clean FORCE \
	bench bench-exec bench-transport bench-latency bench-profile bench-criterion

all: example

# ---- the C core (driven by build.rs with O=$OUT_DIR) -----------------------
lib: $(O)/libproctap.a

$(O):
	mkdir -p $@

$(O)/%.bpf.o: c/%.bpf.c $(C_HEADERS) vendor/$(ARCH)/vmlinux.h | $(O)
	@test -n "$(CLANG)" || { echo "clang not found: run ./dev.sh setup" >&2; exit 1; }
	@test -n "$(LIBBPF_INCLUDE)" || { echo "LIBBPF_INCLUDE unset (use make, or cargo build)" >&2; exit 1; }
	$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) \
		-Ic -Ivendor/$(ARCH) -I$(LIBBPF_INCLUDE) -Wall -Wno-unused-function \
		-c $< -o $@.tmp
	$(LLVM_STRIP) -g $@.tmp
	mv $@.tmp $@

$(O)/%.skel.h: $(O)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp
	mv $@.tmp $@

$(O)/bootstrap.o: c/bootstrap.c $(C_HEADERS) $(SKELS) | $(O)
	$(CC) $(CFLAGS) $(WARN) -fPIC -Ic -I$(O) -I$(LIBBPF_INCLUDE) -c $< -o $@

$(O)/libproctap.a: $(O)/bootstrap.o
	rm -f $@
	ar rcs $@ $^

# ---- crate + example, against libbpf-sys' libbpf ----------------------------
# cargo prints each build script's out_dir; libbpf-sys' holds libbpf.a and
# include/, proctap's holds libproctap.a. A package id reads
# "...#proctap@0.1.0", or "file:///.../proctap#0.1.0" when the checkout
# directory is itself named proctap. Only the sub-make that links reads
# those paths, and it has no rule to remake them.
ifdef LINK_EXAMPLE
include $(O)/cargo-paths.mk
example-link:
	$(CC) $(CFLAGS) $(WARN) -Ic -I$(LIBBPF_OUT)/include c/example.c \
		$(PROCTAP_OUT)/libproctap.a $(LIBBPF_OUT)/libbpf.a -lelf -lz -o example
else
# One build does both: compile, and leave its messages (one JSON object a
# line, diagnostics rendered on stderr) for finding the out_dirs.
$(O)/cargo-paths.mk: FORCE
	@mkdir -p $(O)
	$(CARGO) build --release --examples --message-format=json-render-diagnostics > $(O)/cargo.json
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
	$(CARGO) test --release

bench:
	./dev.sh bench all
bench-exec bench-transport bench-latency bench-profile bench-criterion:
	./dev.sh bench $(patsubst bench-%,%,$@)

vmlinux:
	mkdir -p vendor/$(ARCH)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vendor/$(ARCH)/vmlinux.h

clean:
	rm -rf $(O) example
	$(CARGO) clean
