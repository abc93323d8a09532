#!/bin/sh
# Builds the native unit tests (test/native: devices, state codecs, the bus, and the
# fuzz corpus replay) into build/native-tests/vmrun_native_tests. Part of npm run build;
# test/native/native-unit.test.ts runs the result inside npm test.
set -eu
cd -- "$(dirname -- "$0")/.."
build=build/native-tests
generator=""
command -v ninja >/dev/null 2>&1 && generator="-G Ninja"
# shellcheck disable=SC2086 # the generator option is meant to split
[ -f "$build/CMakeCache.txt" ] || cmake -S test/native -B "$build" $generator >/dev/null
cmake --build "$build" --parallel 2 >"$build/build.log" 2>&1 || { tail -40 "$build/build.log" >&2; echo "build-native-tests: the build failed (log: $build/build.log)" >&2; exit 1; }
