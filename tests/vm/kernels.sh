#!/usr/bin/env bash
# The kernel matrix (make test-kernels): boots Debian's kernels in qemu and
# runs the test suites that need the kernel in each (all but one on 6.1,
# the kernel and connection suites on the others: see suites_of), on this
# machine's own files (the host root over virtio-9p), as root with CI=true.
# Prints one line per kernel: KERNEL <version> <arch>: N passed, M failed.
#
#   tests/vm/kernels.sh [6.1|6.12|sid]...      (default: all three)
#
# Kernels: 6.1 from bookworm, 6.12 (trixie's, as bookworm's security
# updates carry it), the newest in sid; their packages are downloaded with
# apt into target/vm (kept between runs). KVM when the CPU exposes it to
# this machine (vmx/svm), TCG otherwise.
set -euo pipefail
shopt -s inherit_errexit # failures inside $(...) stop the script too
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/vm
mkdir -p "$work"

for tool in qemu-system-x86_64 busybox depmod cpio; do
  command -v "$tool" >/dev/null || { echo "kernels.sh: $tool missing (./dev.sh setup installs it)" >&2; exit 1; }
done

# apt with its own state, to search suites this machine does not use.
apt_for() { # suite
  local dir=$work/apt-$1
  if [ ! -f "$dir/.updated" ]; then
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/etc"
    echo "deb http://deb.debian.org/debian $1 main" > "$dir/etc/sources.list"
    [ "$1" = bookworm ] && echo "deb http://deb.debian.org/debian-security bookworm-security main" >> "$dir/etc/sources.list"
    apt-get -o Dir::State="$dir" -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" \
      -o Dir::Etc::SourceList="$dir/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
      -o Dir::State::status=/var/lib/dpkg/status -o APT::Architectures=amd64 update -qq >&2
    touch "$dir/.updated"
  fi
  echo "-o Dir::State=$dir -o Dir::State::Lists=$dir/lists -o Dir::Cache=$dir/cache \
-o Dir::Etc::SourceList=$dir/etc/sources.list -o Dir::Etc::SourceParts=/nonexistent \
-o Dir::State::status=/var/lib/dpkg/status -o APT::Architectures=amd64"
}

# The newest linux-image package of a suite matching a pattern.
newest_image() { # suite pattern
  local opts
  opts=$(apt_for "$1")
  # shellcheck disable=SC2086
  apt-cache $opts search --names-only "$2" | awk '{print $1}' | sort -V | tail -1
}

# Downloads and unpacks a kernel package (and, where the image package is
# only a meta package, as in sid, its linux-binary and linux-modules
# packages); prints the unpacked directory.
fetch() { # suite package
  local opts dir=$work/$2 pkg
  if [ ! -f "$dir/.complete" ]; then
    opts=$(apt_for "$1")
    rm -rf "$dir" && mkdir -p "$dir"
    local pkgs=("$2") i=0
    while [ $i -lt ${#pkgs[@]} ]; do
      pkg=${pkgs[$i]}
      i=$((i + 1))
      # shellcheck disable=SC2086
      (cd "$work" && apt-get $opts download "$pkg" >&2)
      dpkg-deb -x "$work/$pkg"_*.deb "$dir"
      rm -f "$work/$pkg"_*.deb
      if [ "$pkg" = "$2" ] && [ -z "$(find "$dir" -name 'vmlinuz*' -print -quit)" ]; then
        pkgs+=("linux-binary-${2#linux-image-}" "linux-modules-${2#linux-image-}")
      fi
    done
    [ -n "$(find "$dir" -name 'vmlinuz*' -print -quit)" ] || { echo "kernels.sh: $2 has no kernel" >&2; return 1; }
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# An initramfs: busybox, tests/vm/init, and the modules 9p needs in load order.
initramfs() { # modules-base-dir version (base/lib/modules/version)
  local dir=$1 ver=$2 ird=$work/initrd-$2
  rm -rf "$ird" && mkdir -p "$ird/bin" "$ird/mods"
  cp "$(command -v busybox)" "$ird/bin/busybox"
  cp tests/vm/init "$ird/init"
  depmod -b "$dir" "$ver"
  local deps=$dir/lib/modules/$ver/modules.dep order=()
  add() { # module path relative to the modules dir
    local m d
    for m in "${order[@]}"; do [ "$m" = "$1" ] && return; done
    for d in $(awk -F: -v m="$1" '$1 == m { print $2 }' "$deps"); do add "$d"; done
    order+=("$1")
  }
  local name path
  for name in virtio_pci 9pnet_virtio 9p; do
    path=$(awk -F: -v n="$name" '{ b = $1; sub(/.*\//, "", b); sub(/\.ko.*/, "", b); if (b == n) print $1 }' "$deps")
    [ -n "$path" ] && add "$path" # built in when absent
  done
  for path in "${order[@]}"; do
    case $path in
      *.ko.xz) xz -dc "$dir/lib/modules/$ver/$path" > "$ird/mods/$(basename "$path" .xz)" ;;
      *.ko.zst) zstd -qdc "$dir/lib/modules/$ver/$path" > "$ird/mods/$(basename "$path" .zst)" ;;
      *) cp "$dir/lib/modules/$ver/$path" "$ird/mods/" ;;
    esac
    basename "${path%.xz}" | sed 's/\.zst$//' >> "$ird/mods/order"
  done
  touch "$ird/mods/order"
  (cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$ird.gz"
  echo "$ird.gz"
}

accel=tcg
if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then accel=kvm; fi

# The suites the guest runs, built as CI builds them. The oldest supported
# kernel (6.1) runs every suite that needs the kernel; the others run the
# kernel test suite (exec, exit, the filters) and the connection tests
# (tests/net.rs: on a kernel without the socket tracepoints, tests assert the
# typed error). The declared-tracepoint suite (tests/tracepoints.rs) builds
# the crate with cargo, which would take most of an hour in an emulated
# guest: the host runs its kernel test first, which leaves that build
# fresh (even without root: the test builds before it traces), and the guest
# runs only that test (its other test is about the build, not the kernel).
# So the guest loads an object typed from the host kernel's BTF, CO-RE
# relocated on its own kernel, as a binary built once and deployed is. The
# process suite runs without its 100k-process storm. PT_VM_SUITES names the suites (test file stems)
# for a run by hand; PT_VM_CMDLINE replaces the guest kernel's "quiet" (say,
# loglevel=7 softlockup_all_cpu_backtrace=1 to see a lockup's backtraces).
all_suites="kernel net activity backpressure transport leak profile profile_stacks l7 dumpers tools tracepoints process"
suites_of() { # kernel
  if [ -n "${PT_VM_SUITES:-}" ]; then echo "$PT_VM_SUITES"
  elif [ "$1" = 6.1 ]; then echo "$all_suites"
  else echo "kernel net"; fi
}

# A suite's test binary (built by the first call).
test_binary() { # suite
  local bin
  # The test's own artifact: the build also reports the proctap binary
  # (the cli tests run it), whose line may come last.
  bin=$(cargo test --release --features proctap/bpf-rebuild,proctap/tokio,proctap/cli --test "$1" --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["test"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  [ -x "$bin" ] || { echo "kernels.sh: could not build tests/$1.rs" >&2; return 1; }
  echo "$bin"
}

# The script the guest runs for kernel k: the suites, one after the other.
# It runs on the host's files, with the host's PATH and HOME (the L7
# clients' Python, as on the host); temporary files go to the guest's own
# /run. Each test's output goes to the log too: it says when a test
# asserted that the kernel lacks a feature (UNSUPPORTED ...).
write_runner() { # kernel runner
  local s bin
  printf '#!/bin/sh\ncd "%s" || exit 1\nexport PATH="%s" HOME="%s"\nstatus=0\n' "$root" "$PATH" "$HOME" > "$2"
  for s in $(suites_of "$1"); do
    bin=$(test_binary "$s")
    filter=
    if [ "$s" = tracepoints ]; then
      filter=declared_tracepoints
      # Without a fresh build the guest would compile until its timeout.
      if ! env -u CI "$bin" "$filter" --test-threads 1 > "$work/tracepoints-host.log" 2>&1; then
        echo "kernels.sh: the host's run of tests/tracepoints.rs failed (see $work/tracepoints-host.log)" >&2
        return 1
      fi
    fi
    # The 100k-process storm is about the table, not the kernel: minutes
    # under TCG for nothing the host's run does not show.
    if [ "$s" = process ]; then filter="--skip a_hundred_thousand"; fi
    printf 'echo "suite %s"\nTMPDIR=/run CI=true "%s" %s --test-threads 1 --color never --show-output 2>&1 || status=1\n' "$s" "$bin" "$filter" >> "$2"
  done
  echo 'exit $status' >> "$2"
  chmod +x "$2"
}

status=0
for which in "${@:-6.1 6.12 sid}"; do
  for k in $which; do
    case $k in
      6.1) suite_name=bookworm; pattern='^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
      6.12) suite_name=bookworm; pattern='^linux-image-6\.12\.[0-9]+\+deb12-amd64$' ;;
      sid) suite_name=sid; pattern='^linux-image-[0-9.]+(\+[a-z0-9]+)?-amd64$' ;;
      *) echo "kernels.sh: unknown kernel $k (6.1, 6.12 or sid)" >&2; exit 2 ;;
    esac
    pkg=$(newest_image "$suite_name" "$pattern")
    [ -n "$pkg" ] || { echo "KERNEL $k x86_64: no package found"; status=1; continue; }
    dir=$(fetch "$suite_name" "$pkg")
    kernel=$(find "$dir" -type f -name 'vmlinuz*' | head -1)
    modules=$(find "$dir" -type d -path '*lib/modules/*' -prune | head -1)
    [ -n "$kernel" ] && [ -n "$modules" ] || { echo "KERNEL $k x86_64: $pkg has no kernel or modules"; status=1; continue; }
    ver=$(basename "$modules")
    ird=$(initramfs "${modules%/lib/modules/*}" "$ver")
    log=$work/$ver.log
    runner=$work/run-$k.sh
    write_runner "$k" "$runner" || { echo "KERNEL $ver x86_64: FAILED (preparing the guest's tests)"; status=1; continue; }
    nsuites=$(suites_of "$k" | wc -w)
    start=$(date +%s)
    timeout 1200 qemu-system-x86_64 -accel "$accel" -cpu max -smp 2 -m 3G -nographic -no-reboot \
      -kernel "$kernel" -initrd "$ird" \
      -append "console=ttyS0 panic=-1 ${PT_VM_CMDLINE:-quiet} pt_cmd=$runner" \
      -fsdev local,id=host,path=/,security_model=none,multidevs=remap \
      -device virtio-9p-pci,fsdev=host,mount_tag=host 2>&1 | tr -d '\r' > "$log" || true
    # From the suites' summaries: a kernel message can split a test's own line.
    passed=$(sed -n 's/^test result: .* \([0-9]*\) passed; .*/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
    failed=$(sed -n 's/^test result: .* \([0-9]*\) failed; .*/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
    unsupported=$(grep -o '^UNSUPPORTED on this kernel, as its BTF confirms: [^(]*' "$log" | sed 's/.*confirms: //; s/ *$//' | sort -u | paste -sd, - || true)
    echo "KERNEL $ver x86_64: $passed passed, $failed failed ($accel, $(( $(date +%s) - start )) s; log: $log)${unsupported:+; the kernel lacks: $unsupported}"
    # A pass needs the suite's own verdict and the guest's clean exit: a
    # crash or a timeout part way must not read as passed.
    if [ "$failed" != 0 ] || [ "$passed" = 0 ] || [ "$(grep -c '^test result: ok\.' "$log")" != "$nsuites" ] ||
      ! grep -q '^init: exit status 0$' "$log"; then
      echo "KERNEL $ver x86_64: FAILED (see $log)"
      grep -E '^test .* FAILED$|panicked|^init:' "$log" | head -20 >&2 || true
      status=1
    fi
  done
done
exit $status
