#!/bin/sh
# Installs and builds everything vmrun needs on a Debian 12 machine:
#   1. Debian packages: the addon's build deps, the guest kernel's build deps, the
#      real peers the tests use (docker-registry, skopeo, umoci, QEMU), and for the
#      arm64 tests QEMU's aarch64 system emulator and the aarch64 cross compiler, with
#      arm64 as a foreign architecture (the aarch64 harness fetches Debian's arm64
#      kernel and busybox with apt-get download). bookworm-backports joins apt's
#      sources: the x86 harness runs L1 under its QEMU 10 (test/harness/x86-qemu.js).
#   2. npm install: dependencies, then the addon, the TypeScript, the test guests, the
#      guest init (the package's `prepare` script).
#   3. The guest kernel for `vmrun run` from linux-source-6.1 (about 8.5 min on
#      2 cores the first time; cached afterwards).
# Idempotent: a second run only checks.
set -eu
cd -- "$(dirname -- "$0")/.."

PACKAGES="cmake g++ make libzstd-dev \
  linux-source-6.1 bc flex bison libelf-dev libssl-dev lz4 xz-utils cpio \
  busybox-static musl-tools kmod qemu-system-x86 qemu-utils docker-registry skopeo umoci apache2-utils \
  libslirp-dev clang libclang-rt-14-dev ninja-build gdb"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
update_lists=""
host_arch=$(dpkg --print-architecture)
if [ "$host_arch" != amd64 ]; then
  # The test guests (fixtures/) are x86_64 code built with the host's gcc, and the
  # harnesses run L1s under emulation from an x86_64 host: docs/arm64.md.
  echo "setup: this is an $host_arch host; the build and tests are set up for amd64 hosts (docs/arm64.md)" >&2
  exit 125
fi
# The arm64 tests: QEMU's aarch64 emulator and the cross compiler.
PACKAGES="$PACKAGES qemu-system-arm g++-aarch64-linux-gnu"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding arm64 as a foreign architecture (for the aarch64 harness's packages)"
  $SUDO dpkg --add-architecture arm64
  update_lists=yes
fi

# The x86 harness stages QEMU from bookworm-backports (bookworm's 7.2 leaves stale
# translated code after a cross-vCPU patch, which wedged L1: docs/testing.md).
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup: adding bookworm-backports to apt's sources (the x86 harness's QEMU)"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
    $SUDO tee /etc/apt/sources.list.d/vmrun-bookworm-backports.sources >/dev/null
  update_lists=yes
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] || [ -n "$update_lists" ]; then
  $SUDO apt-get update -qq
fi
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "setup: npm install (builds the addon, TypeScript, test guests and guest init)"
# npm install, not npm ci: this npm (11.x) rejects its own lock file in ci mode
# ("Missing: @rollup/rollup-android-arm-eabi from lock file"), because it omits
# other platforms' optional packages when it writes the lock.
npm install --no-audit --no-fund

echo "setup: guest kernel"
guest/kernel/build.sh
echo "setup: the x86 harness's QEMU"
node test/harness/x86-qemu.js >/dev/null
echo "setup: done. Try: npx vmrun doctor"
