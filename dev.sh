#!/usr/bin/env bash
# proctap developer entry point. Each command installs what is missing first.
#
#   ./dev.sh run [--duration S] [--pid PID]... [--comm PREFIX] [--argv-max BYTES]
#                         build everything, run the JSON-lines dumper
#   ./dev.sh test         build everything, run every test (what CI runs)
#   ./dev.sh setup        only install missing Debian packages
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the build needs: clang for the BPF object, llvm-strip,
# libclang for bindgen, bpftool for skeletons (and tests), libelf/zlib that
# libbpf links, make and a C compiler for the C core.
PACKAGES=(clang-19 llvm-19 libclang1-19 libelf-dev zlib1g-dev bpftool make gcc libc6-dev pkg-config)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "dev.sh: need root to run: $*" >&2; exit 1
  fi
}

setup() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev.sh: installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    echo "dev.sh: cargo not found; install a Rust toolchain (rustup, Rust >= 1.85) and retry" >&2
    exit 1
  fi
}

# Build chatter goes to stderr: stdout carries the JSON lines.
build() {
  make --no-print-directory >&2
}

case "${1:-}" in
  setup)
    setup ;;
  run)
    shift
    setup
    build
    if [ "$(id -u)" != 0 ]; then
      echo "dev.sh: loading BPF programs needs root (or CAP_BPF + CAP_PERFMON); using sudo" >&2
      exec sudo ./target/release/examples/dump "$@"
    fi
    exec ./target/release/examples/dump "$@" ;;
  test)
    shift
    setup
    build
    if [ "$(id -u)" != 0 ]; then
      echo "dev.sh: not root: kernel tests will say SKIPPED (run as root to include them)" >&2
    fi
    cargo test --release "$@" ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
