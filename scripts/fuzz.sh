#!/bin/sh
# Runs every fuzzer for a set time: the native libFuzzer targets (fuzz/run-native.sh)
# and, where it exists, the TypeScript targets' runner (fuzz/run-ts.mjs).
#   sh scripts/fuzz.sh [--seconds N]     (default 60 s per target; npm test uses 5)
set -eu
cd -- "$(dirname -- "$0")/.."
seconds=60
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    *) echo "scripts/fuzz.sh: unknown argument $1" >&2; exit 125 ;;
  esac
done
status=0
sh fuzz/run-native.sh --seconds "$seconds" || status=1
if [ -f fuzz/run-ts.mjs ]; then
  node fuzz/run-ts.mjs --seconds "$seconds" || status=1
else
  echo "scripts/fuzz.sh: fuzz/run-ts.mjs is not there yet: TypeScript targets not run"
fi
exit $status
