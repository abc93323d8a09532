#!/usr/bin/env bash
# Builds vmrun's x86_64 guest kernel from Debian's linux-source-6.1 tarball:
# `make tinyconfig`, merge config-x86_64, `make olddefconfig`, check that every option
# of the fragment survived, then `make vmlinux bzImage`. The result is cached under
#   ${VMRUN_CACHE:-${XDG_CACHE_HOME:-~/.cache}/vmrun}/kernel/<key>/{vmlinux,bzImage,config}
# where <key> hashes the fragment and the source tarball, so a second run with the
# same inputs returns at once. Prints the two paths on its last lines.
#
# Usage: guest/kernel/build.sh [--source TARBALL] [--jobs N]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/config-x86_64"
source_tarball=/usr/src/linux-source-6.1.tar.xz
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_tarball=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

[ -f "$source_tarball" ] || {
  echo "build.sh: kernel source '$source_tarball' not found (apt-get install linux-source-6.1)" >&2
  exit 1
}
for tool in make gcc bc flex bison lz4 sha256sum tar xz; do
  command -v "$tool" >/dev/null || { echo "build.sh: missing build tool '$tool'" >&2; exit 1; }
done

cache_root=${VMRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmrun}
kernel_cache="$cache_root/kernel"
mkdir -p "$kernel_cache"

# The key covers what decides the output: the fragment and the exact source.
source_sha=$(sha256sum "$source_tarball" | cut -c1-64)
key=$( { cat "$fragment"; echo "source=$source_sha"; } | sha256sum | cut -c1-16)
out="$kernel_cache/$key"

print_result() {
  # "latest" is how vmrun finds the kernel without hashing the source tarball again.
  ln -sfn "$key" "$kernel_cache/latest"
  echo "vmlinux: $out/vmlinux"
  echo "bzImage: $out/bzImage"
}
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
  print_result
  exit 0
fi

# One build at a time per cache: a second caller waits, then finds the result.
exec 9>"$kernel_cache/.lock"
flock 9
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
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

# One object tree per source, reused across configs: Kbuild tracks which objects
# depend on which options, so a changed fragment rebuilds only what it affects.
build="$kernel_cache/build-src-${source_sha:0:16}"
log="$kernel_cache/build-$key.log"
mkdir -p "$build"
: >"$log"
echo "building kernel $key in $build (log: $log)"

fail() {
  echo "build.sh: $1; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

make -C "$src" O="$build" tinyconfig >>"$log" 2>&1 || fail "make tinyconfig failed"
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment" \
  >>"$log" 2>&1 || fail "merging $fragment failed"
make -C "$src" O="$build" olddefconfig >>"$log" 2>&1 || fail "make olddefconfig failed"

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
done <"$fragment"
[ "$missing" -eq 0 ] || { echo "build.sh: $missing option(s) of $fragment did not take effect" >&2; exit 1; }

# Progress: one line per 250 compiled files; the full make output goes to the log.
set +e
make -C "$src" O="$build" -j"$jobs" vmlinux bzImage 2>&1 | tee -a "$log" |
  awk '/^  (CC|AS|LD|AR) /{ n++; if (n % 250 == 0) { printf "  ... %d objects built\n", n; fflush() } }'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || fail "make vmlinux bzImage failed (exit $status)"

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp "$build/vmlinux" "$build/arch/x86/boot/bzImage" "$build/.config" "$out.tmp/"
mv "$out.tmp/.config" "$out.tmp/config"
mv "$out.tmp" "$out"
print_result
