#!/usr/bin/env bash
# Builds vmrun's guest kernel for x86_64 or arm64 from Debian's linux-source-6.1
# tarball: `make tinyconfig`, merge config-common and config-<arch>, `make
# olddefconfig`, check that every option of the fragments survived, then build
# (arm64 with the aarch64-linux-gnu- cross compiler on other hosts). The result is
# cached under
#   ${VMRUN_CACHE:-${XDG_CACHE_HOME:-~/.cache}/vmrun}/kernel/<key>/{vmlinux,<image>,config}
# where <key> hashes the fragments, the architecture and the source tarball, so a
# second run with the same inputs returns at once; kernel/latest-<arch> links to it.
# <image> is bzImage on x86_64 and Image (the arm64 boot image) on arm64. Prints the
# two paths ("vmlinux: ...", "<image>: ...") on its last lines.
#
# Usage: guest/kernel/build.sh [--arch x86_64|aarch64] [--source TARBALL] [--jobs N]
# (--arch defaults to the host's: scripts/setup.sh builds the kernel vmrun boots here)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
arch=$(uname -m)
source_tarball=/usr/src/linux-source-6.1.tar.xz
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_tarball=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# What differs per architecture: Kbuild's ARCH, the compiler prefix, the boot image.
case "$arch" in
  x86_64) kbuild_arch=x86; image_name=bzImage; image_path=arch/x86/boot/bzImage; host_machine=x86_64 ;;
  aarch64) kbuild_arch=arm64; image_name=Image; image_path=arch/arm64/boot/Image; host_machine=aarch64 ;;
  *) echo "build.sh: --arch '$arch' is not one vmrun builds (x86_64, aarch64)" >&2; exit 2 ;;
esac
cross=""
[ "$(uname -m)" = "$host_machine" ] || cross="$host_machine-linux-gnu-"
fragments=("$here/config-common" "$here/config-$arch")

[ -f "$source_tarball" ] || {
  echo "build.sh: kernel source '$source_tarball' not found (apt-get install linux-source-6.1)" >&2
  exit 1
}
for tool in make gcc "${cross}gcc" bc flex bison lz4 sha256sum tar xz; do
  command -v "$tool" >/dev/null || { echo "build.sh: missing build tool '$tool'" >&2; exit 1; }
done

cache_root=${VMRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmrun}
kernel_cache="$cache_root/kernel"
mkdir -p "$kernel_cache"

# The key covers what decides the output: the fragments, the architecture and the
# exact source.
source_sha=$(sha256sum "$source_tarball" | cut -c1-64)
key=$( { cat "${fragments[@]}"; echo "arch=$arch"; echo "source=$source_sha"; } | sha256sum | cut -c1-16)
out="$kernel_cache/$key"

print_result() {
  # "latest-<arch>" is how vmrun finds the kernel without hashing the source tarball again.
  ln -sfn "$key" "$kernel_cache/latest-$arch"
  echo "vmlinux: $out/vmlinux"
  echo "$image_name: $out/$image_name"
}
if [ -f "$out/vmlinux" ] && [ -f "$out/$image_name" ]; then
  print_result
  exit 0
fi

# One build at a time per cache: a second caller waits, then finds the result.
exec 9>"$kernel_cache/.lock"
flock 9
if [ -f "$out/vmlinux" ] && [ -f "$out/$image_name" ]; then
  print_result
  exit 0
fi

# Unpack the source once per tarball (into a temp dir renamed into place, so an
# interrupted unpack is never mistaken for a complete tree).
src="$kernel_cache/src-${source_sha:0:16}"
if [ ! -f "$src/Makefile" ]; then
  echo "unpacking $source_tarball ..."
  rm -rf "$src.tmp" "$src"
  mkdir -p "$src.tmp"
  tar -xJf "$source_tarball" -C "$src.tmp" --strip-components=1
  mv "$src.tmp" "$src"
fi

# One object tree per source and architecture, reused across configs: Kbuild tracks
# which objects depend on which options, so a changed fragment rebuilds only what it
# affects. (x86_64 keeps the directory name it had before there was a second arch.)
build="$kernel_cache/build-src-${source_sha:0:16}"
[ "$arch" = x86_64 ] || build="$kernel_cache/build-$arch-src-${source_sha:0:16}"
kmake() { make -C "$src" O="$build" ARCH="$kbuild_arch" CROSS_COMPILE="$cross" "$@"; }
log="$kernel_cache/build-$key.log"
mkdir -p "$build"
: >"$log"
echo "building kernel $key in $build (log: $log)"

fail() {
  echo "build.sh: $1; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

kmake tinyconfig >>"$log" 2>&1 || fail "make tinyconfig failed"
ARCH="$kbuild_arch" CROSS_COMPILE="$cross" "$src/scripts/kconfig/merge_config.sh" -m -O "$build" \
  "$build/.config" "${fragments[@]}" >>"$log" 2>&1 || fail "merging ${fragments[*]} failed"
kmake olddefconfig >>"$log" 2>&1 || fail "make olddefconfig failed"

# Every option of the fragment must be in the final config exactly as written;
# Kconfig drops options whose dependencies are unmet without saying so.
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) want=$line; name=${line%%=*} ;;
    "# CONFIG_"*" is not set") want=$line; name=${line#\# }; name=${name%% *} ;;
    *) continue ;;
  esac
  # An option Kconfig hides (unmet dependency) is absent, which is as good as "not set".
  if [[ $want == "# "* ]] && ! grep -qE "^$name=" "$build/.config"; then continue; fi
  if ! grep -qxF "$want" "$build/.config"; then
    got=$(grep -E "^(# )?$name[= ]" "$build/.config" || echo "$name absent")
    echo "config: wanted '$want', got '$got'" >&2
    missing=$((missing + 1))
  fi
done < <(cat "${fragments[@]}")
[ "$missing" -eq 0 ] || { echo "build.sh: $missing option(s) of ${fragments[*]} did not take effect" >&2; exit 1; }

# Progress: one line per 250 compiled files; the full make output goes to the log.
set +e
kmake -j"$jobs" vmlinux "$image_name" 2>&1 | tee -a "$log" |
  awk '/^  (CC|AS|LD|AR) /{ n++; if (n % 250 == 0) { printf "  ... %d objects built\n", n; fflush() } }'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || fail "make vmlinux $image_name failed (exit $status)"

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp "$build/vmlinux" "$build/$image_path" "$build/.config" "$out.tmp/"
mv "$out.tmp/.config" "$out.tmp/config"
mv "$out.tmp" "$out"
print_result
