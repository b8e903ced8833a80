#!/usr/bin/env bash
# proctap developer entry point. Each command installs what is missing first.
#
#   ./dev.sh run [--duration S] [--pid PID]... [--comm PREFIX] [--argv-max BYTES]
#                         build everything, run the JSON-lines dumper
#   ./dev.sh test         build everything, check formatting and lints, run
#                         every test (what CI runs)
#   ./dev.sh bench [exec|files|net|transport|latency|profile|criterion|vm|all]
#                         run benchmarks, write their tables into BENCHMARKS.md
#   ./dev.sh prebuilt     rebuild the BPF object, skeleton and bindings and copy
#                         them into prebuilt/ (commit them with the sources)
#   ./dev.sh setup        only install missing Debian packages
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the build needs: clang for the BPF object, llvm-strip,
# libclang for bindgen, bpftool for skeletons (and tests), libelf/zlib that
# libbpf links, make and a C compiler for the C core; binutils (objcopy,
# strip, readelf) for the profiler tests' split-debug fixture; debuginfod
# (elfutils' server) for the profiler's debuginfod test.
PACKAGES=(clang-19 llvm-19 libclang1-19 libelf-dev zlib1g-dev bpftool make gcc libc6-dev pkg-config binutils debuginfod)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "dev.sh: need root to run: $*" >&2; exit 1
  fi
}

setup() {
  local missing=() p
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev.sh: installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    echo "dev.sh: cargo not found; install a Rust toolchain (rustup, Rust >= 1.88) and retry" >&2
    exit 1
  fi
}

# Every build here compiles the BPF pieces from source (a crate depending on
# proctap uses prebuilt/ instead); the tests check that prebuilt/ matches.
# tokio: its stream's test (tests/stream.rs); cli: the proctap command and
# its tests (tests/cli.rs), with the arrow and otlp features it brings (the
# Arrow tables and IPC files, tests/arrow.rs; the OTLP exporter,
# tests/otlp.rs). make builds with the same features, so one build serves
# the tests and the kernel matrix.
FEATURES=(--features proctap/bpf-rebuild,proctap/tokio,proctap/cli)

# Build chatter goes to stderr: stdout carries the JSON lines.
build() {
  make --no-print-directory >&2
}

# The habits CI enforces: rustfmt (rustfmt.toml), clang-format on the C
# (.clang-format), clippy with warnings as errors.
lint() {
  local c_files
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "dev.sh: rustfmt and clippy are needed: rustup component add rustfmt clippy" >&2
    exit 1
  fi
  echo "dev.sh: cargo fmt --check, clang-format, cargo clippy and cargo doc -D warnings" >&2
  cargo fmt --all --check
  c_files=$(find c tests/fixtures bench -name '*.c' -o -name '*.h' | sort)
  # shellcheck disable=SC2086
  clang-format-19 --dry-run --Werror --style=file $c_files
  cargo clippy --release --workspace --all-targets "${FEATURES[@]}" --quiet -- -D warnings
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace "${FEATURES[@]}" --quiet
}

# Replaces the section between <!-- bench-NAME --> and <!-- /bench-NAME -->
# in BENCHMARKS.md with the file's contents (appending the markers if new).
splice() {
  local name=$1 section=$2
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n' > BENCHMARKS.md
  if ! grep -qx "<!-- bench-$name -->" BENCHMARKS.md; then
    printf '\n<!-- bench-%s -->\n<!-- /bench-%s -->\n' "$name" "$name" >> BENCHMARKS.md
  fi
  awk -v first="<!-- bench-$name -->" -v last="<!-- /bench-$name -->" -v f="$section" '
    $0 == first { print; while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == last { skip = 0 }
    !skip { print }' BENCHMARKS.md > BENCHMARKS.md.tmp
  mv BENCHMARKS.md.tmp BENCHMARKS.md
}

# The exec'd child and the storm driver of the exec benchmarks; the file
# benchmark's open/write storm (named pt-fstorm: its comm, which the tracers
# report); the profiler benchmark's CPU-bound workload (the tests' hot program).
bench_programs() {
  mkdir -p build/bench
  gcc -O2 -static -o build/bench/pt-storm-child bench/tiny.c
  gcc -O2 -Wall -o build/bench/storm bench/storm.c
  gcc -O2 -Wall -o build/bench/pt-fstorm bench/fstorm.c
  gcc -O2 -Wall -o build/bench/pt-netstorm bench/netstorm.c
  gcc -O1 -g -fno-omit-frame-pointer -Wl,--build-id -Wall -o build/bench/pt-prof-spin tests/fixtures/hot.c
}

# Python modules the tests' clients and checkers import, as MODULE or
# MODULE=PYPI_NAME: each installed from PyPI unless python3 has it (Debian's
# python3 wants --break-system-packages for that).
pip_install() {
  local m module package
  for m in "$@"; do
    module=${m%%=*} package=${m#*=}
    python3 -c "import $module" 2>/dev/null && continue
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet "$package" ||
      PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --break-system-packages "$package"
  done
}

bench() {
  local which=${1:-all} out
  out=build/bench/$which.md
  case "$which" in
    exec)
      target/release/examples/bench_exec --storm build/bench/storm --child build/bench/pt-storm-child \
        --dump target/release/examples/dump --execsnoop /usr/sbin/execsnoop > "$out" ;;
    files)
      target/release/examples/bench_files --fstorm build/bench/pt-fstorm \
        --dump target/release/examples/dump --opensnoop /usr/sbin/opensnoop > "$out" ;;
    net)
      target/release/examples/bench_net --dump target/release/examples/dump \
        --netstorm build/bench/pt-netstorm > "$out" ;;
    transport)
      # The consumer on CPU 1; the driver pins its producer to CPU 0.
      taskset -c 1 target/release/examples/bench_transport > "$out" ;;
    latency)
      target/release/examples/bench_latency --child build/bench/pt-storm-child --storm build/bench/storm > "$out" ;;
    profile)
      target/release/examples/bench_profile --workload build/bench/pt-prof-spin > "$out" ;;
    criterion)
      { echo "## Decode, buffer churn and Arrow conversion (criterion)"; echo
        echo "\`make bench-criterion\` · $(date -u +%F) · $(uname -r)"; echo
        echo "Per-event cost = 1 / thrpt (elements are events); allocations per event counted by a global allocator."; echo
        echo '```'
        # Not criterion's comparison with an earlier run (the lines with %).
        cargo bench "${FEATURES[@]}" --bench buffer_churn --bench arrow 2>&1 |
          grep -E '^(decode|buffer_churn|routing|arrow)/|time:|thrpt:|allocations per event' | grep -v '%'
        echo '```'; } > "$out" ;;
    vm)
      # proctap-vm against rbpf and the kernel's JIT (rs/vm/benches/vm.rs);
      # the table comes from criterion's estimates of this run.
      mkdir -p build/bench
      cargo bench -p proctap-vm --bench vm 2>&1 | tee build/bench/vm.log
      python3 rs/vm/benches/vm_table.py build/bench/vm.log target/criterion "make bench-vm" > "$out" ;;
    all)
      for w in exec files net transport latency profile criterion vm; do bench "$w"; done
      return ;;
    *)
      echo "dev.sh bench: unknown benchmark $which (exec, files, net, transport, latency, profile, criterion, vm, all)" >&2; exit 2 ;;
  esac
  splice "$which" "$out"
  cat "$out"
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
  bench)
    shift
    if [ "${1:-}" = vm ]; then
      # Builds only proctap-vm and needs none of the tools below; without
      # root its kernel contender is skipped (the table says so).
      setup
      bench vm
      exit
    fi
    # libbpf-tools: execsnoop and opensnoop, the peers of the exec and file
    # benchmarks; nginx, wrk and redis: the network benchmark's servers and
    # clients (it starts and stops its own servers on loopback); linux-perf:
    # the profiler benchmark's peer.
    setup libbpf-tools nginx wrk redis-server redis-tools linux-perf
    build
    bench_programs
    if [ "$(id -u)" != 0 ]; then
      echo "dev.sh: benchmarks load BPF programs and need root" >&2; exit 1
    fi
    bench "$@" ;;
  test)
    shift
    # golang-go: `go tool pprof` reads the profiler's pprof output in a test;
    # clang-format-19 checks the C formatting; python3 serves and fetches
    # HTTP, and redis-server, memcached, postgresql and mariadb answer, in
    # the L7 tests (they start and stop their own servers on loopback).
    # python3-h2 frames HTTP/2 and gRPC in their test (Debian's python3); a
    # python3 of its own (pyenv, a venv) gets h2 from PyPI; jsonschema checks
    # output against the JSON reference (tests/schema.rs); pyarrow reads the
    # Arrow IPC files back in tests/arrow.rs. qemu, busybox,
    # kmod (depmod) and cpio boot the kernel matrix (tests/vm/kernels.sh);
    # qemu's arm64 system and the aarch64 gcc run tests/vm/arm64.sh.
    setup golang-go clang-format-19 python3 python3-h2 python3-pip redis-server memcached postgresql \
      mariadb-server mariadb-client qemu-system-x86 busybox-static kmod cpio \
      qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    # opentelemetry-proto: the OTLP test's receiver decodes with the official
    # Python definitions (tests/fixtures/otlp_receiver.py).
    pip_install h2 jsonschema pyarrow opentelemetry.proto=opentelemetry-proto
    build
    lint
    if [ "$(id -u)" != 0 ]; then
      echo "dev.sh: not root: kernel tests will say SKIPPED (run as root to include them)" >&2
    fi
    cargo test --release --workspace "${FEATURES[@]}" "$@"
    if [ $# -eq 0 ]; then
      # The library without its default features (no profiler userspace)
      # builds, with the dumper, and its own tests pass (not with cli,
      # which brings the profiler).
      cargo test --release -p proctap --no-default-features --features proctap/bpf-rebuild,proctap/tokio --lib --example dump
      # The eBPF runtime builds as no_std + alloc (an OS kernel's build),
      # without the host OS and its libc, and passes its lints there too.
      cargo clippy --release -p proctap-vm --no-default-features --quiet -- -D warnings
      # The packages (proctap and its build-time generator) build from their
      # tarballs alone, with the prebuilt BPF pieces.
      cargo package --workspace --offline --allow-dirty --quiet
      # The kernel test suite on Debian's 6.1 and 6.12 kernels in qemu
      # (make test-kernels runs sid's newest too), and the C dumper on an
      # arm64 kernel.
      tests/vm/kernels.sh 6.1 6.12
      tests/vm/arm64.sh
    fi ;;
  prebuilt)
    setup
    PROCTAP_BLESS=1 cargo test --release "${FEATURES[@]}" --lib prebuilt_outputs_match_the_sources
    git status --short prebuilt ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
