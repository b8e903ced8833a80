#!/usr/bin/env bash
# arm64 under TCG (make test-arm64): the C dumper (c/example.c on
# libproctap.a, the prebuilt arm64 BPF object), cross-built and linked
# statically with Debian's aarch64 gcc, boots with Debian's arm64 kernel in
# qemu-system-aarch64 from a busybox initramfs, loads and attaches every
# program the dumper has (exec, exit, fork, failed execs, files, stdio,
# OOM kills, raw network data), and must report one exec (argv exact)
# and one exit (status 7). No Rust target is needed: the guest runs C only.
# Prints: KERNEL <version> aarch64: exec ok|missing, exit ok|missing.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/vm/arm64
mkdir -p "$work"
CROSS=aarch64-linux-gnu-
for tool in ${CROSS}gcc qemu-system-aarch64 cpio; do
  command -v "$tool" >/dev/null || { echo "arm64.sh: $tool missing (./dev.sh setup installs it)" >&2; exit 1; }
done

# arm64 packages, downloaded and unpacked into a sysroot with apt's own
# state (the machine's dpkg architectures are left alone).
opts=(-o Dir::State="$work/apt" -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache"
  -o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o Dir::State::status=/var/lib/dpkg/status -o APT::Architecture=arm64 -o APT::Architectures=arm64)
sysroot=$work/sysroot
if [ ! -f "$sysroot/.complete" ]; then
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$sysroot"
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    > "$work/apt/sources.list"
  apt-get "${opts[@]}" update -qq
  kernel=$(apt-cache "${opts[@]}" search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-arm64$' | awk '{print $1}' | sort -V | tail -1)
  for pkg in libelf-dev zlib1g-dev libzstd-dev busybox-static "$kernel"; do
    (cd "$work" && apt-get "${opts[@]}" download "$pkg" 2>/dev/null)
  done
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  rm -f "$work"/*.deb
  touch "$sysroot/.complete"
fi
lib=$sysroot/usr/lib/aarch64-linux-gnu

# libbpf (libbpf-sys' vendored copy, the one the crate links) for arm64.
libbpf_src=$(cargo metadata --format-version 1 2>/dev/null |
  sed -n 's/.*"manifest_path":"\([^"]*libbpf-sys[^"]*\)\/Cargo.toml".*/\1/p' | head -1)/libbpf/src
[ -f "$libbpf_src/Makefile" ] || { echo "arm64.sh: libbpf-sys' libbpf sources not found" >&2; exit 1; }
make -s -C "$libbpf_src" CC=${CROSS}gcc BUILD_STATIC_ONLY=y OBJDIR="$work/libbpf" DESTDIR="$work/libbpf-root" \
  EXTRA_CFLAGS="-I$sysroot/usr/include -I$sysroot/usr/include/aarch64-linux-gnu" install_headers "$work/libbpf/libbpf.a" >/dev/null

# The C core from the prebuilt arm64 object, and the dumper, static.
# The registry's generated headers, from the crate's build as CI makes it.
out_dir=$(cargo build --release --features bpf-rebuild --message-format=json 2>/dev/null |
  sed -nE 's/.*"reason":"build-script-executed".*[#/]proctap[@#][^"]*".*"out_dir":"([^"]*)".*/\1/p' | tail -1)
gen=$out_dir/gen
[ -f "$gen/pt_kinds.h" ] || { echo "arm64.sh: the crate's build gave no generated headers ($gen)" >&2; exit 1; }
mkdir -p "$work/pt" && rm -rf "$work/pt/gen" && cp -r "$gen" "$work/pt/gen"
make -s --no-print-directory O="$work/pt" ARCH=aarch64 CC=${CROSS}gcc BPF_PREBUILT=1 \
  LIBBPF_INCLUDE="$work/libbpf-root/usr/include" lib
${CROSS}gcc -static -O2 -Ic -I"$work/pt/gen" -I"$work/libbpf-root/usr/include" c/example.c \
  "$work/pt/libproctap.a" "$work/libbpf/libbpf.a" "$lib/libelf.a" "$lib/libz.a" "$lib/libzstd.a" -o "$work/example"

# The initramfs: busybox, the dumper, and an init that runs them.
ird=$work/initrd
rm -rf "$ird" && mkdir -p "$ird/bin"
cp "$sysroot/bin/busybox" "$ird/bin/busybox"
cp "$work/example" "$ird/example"
cat > "$ird/init" <<'INIT'
#!/bin/busybox sh
bb=/bin/busybox
$bb mkdir -p /proc /sys /dev /tmp
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev
$bb mount -t tmpfs tmp /tmp
$bb mount -t bpf bpf /sys/fs/bpf
$bb mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
echo "guest: $($bb uname -r)"
/example --fork --failed-execs --files --stdio --oom --net-raw --thread-exits > /tmp/out 2> /tmp/err &
pid=$!
# Loading under TCG takes a while: exec and exit again until both are seen.
for i in $($bb seq 120); do
	$bb sh -c 'exit 7'
	$bb true pt-arm64-marker
	$bb sleep 1
	# The pattern as JSON prints the marker's argv; grep's own exec, which
	# carries the pattern, prints with escaped quotes and does not match.
	$bb grep -q '"true","pt-arm64-marker"' /tmp/out && $bb grep -q '"exit_code":7' /tmp/out && break
done
kill -TERM $pid
wait $pid
echo "guest: example exit $?" > /tmp/status
$bb cat /tmp/status
$bb grep -c . /tmp/out | $bb sed 's/^/guest: events /'
$bb grep '"true","pt-arm64-marker"' /tmp/out | $bb head -1 | $bb sed 's/^/guest: exec /'
$bb grep '"exit_code":7' /tmp/out | $bb head -1 | $bb sed 's/^/guest: exit7 /'
$bb sed 's/^/guest: stats /' /tmp/err | $bb tail -3
$bb poweroff -f
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$ird.gz"

image=$(find "$sysroot/boot" -name 'vmlinuz-*' | head -1)
ver=${image##*/vmlinuz-}
log=$work/$ver.log
start=$(date +%s)
timeout 900 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 2G -nographic -no-reboot \
  -kernel "$image" -initrd "$ird.gz" -append "console=ttyAMA0 panic=-1 quiet" 2>&1 | tr -d '\r' > "$log" || true
exec_ok=missing exit_ok=missing
grep -q '^guest: exec .*"argv":\["/bin/busybox","true","pt-arm64-marker"\]' "$log" && exec_ok=ok
grep -q '^guest: exit7 .*"exit_code":7' "$log" && exit_ok=ok
echo "KERNEL $ver aarch64: exec $exec_ok, exit $exit_ok (tcg, $(( $(date +%s) - start )) s; log: $log)"
[ "$exec_ok" = ok ] && [ "$exit_ok" = ok ] || { grep '^guest:' "$log" >&2 || tail -20 "$log" >&2; exit 1; }
