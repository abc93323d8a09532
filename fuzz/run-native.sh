#!/bin/sh
# Builds the native fuzz targets (fuzz/native: one per parser of untrusted bytes) with
# clang's libFuzzer, AddressSanitizer and UBSan, and runs each for a set time on a
# scratch copy of its committed corpus (fuzz/corpus/TARGET/).
#   fuzz/run-native.sh [--seconds N] [TARGET...]     (default: 60 s each, every target)
# A crash is copied into fuzz/corpus/TARGET/ as crash-<sha1> and the run fails: fix
# the parser and commit the input with the fix; the C++ unit tests (test/native)
# replay every corpus file from then on. New coverage stays in the scratch copy.
set -eu
cd -- "$(dirname -- "$0")/.."

seconds=60
targets=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "fuzz/run-native.sh: unknown option $1" >&2; exit 125 ;;
    *) targets="$targets $1"; shift ;;
  esac
done
case "$seconds" in ''|*[!0-9]*) echo "fuzz/run-native.sh: --seconds wants a whole number, not \"$seconds\"" >&2; exit 125 ;; esac

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz/run-native.sh: clang++ is missing (Debian: clang libclang-rt-14-dev; scripts/setup.sh installs them)" >&2
  exit 125
fi

build=build/fuzz-native
generator=""
command -v ninja >/dev/null 2>&1 && generator="-G Ninja"
# shellcheck disable=SC2086 # the generator option is meant to split
[ -f "$build/CMakeCache.txt" ] || cmake -S fuzz/native -B "$build" $generator -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --parallel 2 >"$build/build.log" 2>&1 || { tail -40 "$build/build.log" >&2; echo "fuzz/run-native.sh: the build failed" >&2; exit 1; }

[ -n "$targets" ] || targets=$(for f in fuzz/native/*.cc; do basename "$f" .cc; done)
failed=""
for t in $targets; do
  [ -x "$build/fuzz_$t" ] || { echo "fuzz/run-native.sh: no target $t" >&2; exit 125; }
  work="$build/work/$t"
  crashes="$build/crashes/$t"
  rm -rf "$crashes"
  mkdir -p "$work" "$crashes"
  cp fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  start=$(date +%s)
  if "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=1 \
       -artifact_prefix="$crashes/" "$work" >"$build/$t.log" 2>&1; then
    runs=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' "$build/$t.log" | tail -1)
    echo "fuzz native $t: ${runs:-?} inputs in $(( $(date +%s) - start )) s, no crash"
  else
    echo "fuzz native $t: FAILED; the fuzzer's report:" >&2
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$build/$t.log" | head -20 >&2
    for c in "$crashes"/*; do
      [ -f "$c" ] || continue
      name="crash-$(sha1sum "$c" | cut -c1-16)"
      cp "$c" "fuzz/corpus/$t/$name"
      echo "  input saved as fuzz/corpus/$t/$name (the unit tests replay it)" >&2
    done
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz/run-native.sh: crashes in:$failed" >&2
  exit 1
fi
