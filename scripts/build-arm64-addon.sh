#!/bin/sh
# Cross-builds the Node addon for arm64 Linux on an x86 host: build/arm64/addon/
# vmrun_native.node, which src/native/addon.ts loads when Node runs on arm64 (the
# aarch64 harness's L1, docs/testing.md). The same CMakeLists.txt as `npm run
# build:native` (it picks vmm/aarch64 and backend/kvm/aarch64 for an aarch64 target),
# with Debian's aarch64-linux-gnu-g++, Node's own headers (N-API is the same on every
# architecture), and libzstd and libslirp from the cached arm64 userland's sysroot,
# the one the L1 loads them from (test/harness/arm64-userland.js). Not part of npm
# run build: the arm64 parts are opt-in (npm run test:arm64 runs this).
set -eu
cd -- "$(dirname -- "$0")/.."
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || {
  echo "build-arm64-addon: aarch64-linux-gnu-g++ not found; install it with: apt-get install -y g++-aarch64-linux-gnu" >&2
  exit 125
}
userland=$(node test/harness/arm64-userland.js) || exit 125
# Where cmake-js finds them for the host build: beside the running node.
node_include=$(node -p "require('path').join(process.execPath, '../../include/node')")
[ -f "$node_include/node_api.h" ] || node_include=$(node -p "require('node-api-headers').include_dir")
build=build/arm64/addon
generator=""
command -v ninja >/dev/null 2>&1 && generator="-G Ninja"
# Configured every time (a second or two): a new userland is a new sysroot.
# shellcheck disable=SC2086 # the generator option is meant to split
cmake -S . -B "$build" $generator -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DVMRUN_ARM64_SYSROOT="$userland/sysroot" \
  -DCMAKE_JS_INC="$node_include" >/dev/null
cmake --build "$build" --parallel 2 >"$build/build.log" 2>&1 || {
  tail -40 "$build/build.log" >&2
  echo "build-arm64-addon: the build failed (log: $build/build.log)" >&2
  exit 1
}
