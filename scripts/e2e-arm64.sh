#!/bin/sh
# The arm64 real-guest part of `npm test`: test/arm64's files that run vmrun's KVM
# arm64 backend in an aarch64 nested-KVM L1 (test/harness/nested-kvm --arch aarch64)
# without vmrun's Node start there, so they fit CI's time bound (about 1.5 min with
# the L1 image cached; the image is a 60 MB download the first time):
#   boot.test.ts      Debian's arm64 kernel to /init on the vGICv3, the exit device,
#                     PSCI SYSTEM_OFF, 2 vCPUs online;
#   snapshot.test.ts  a 2-vCPU guest saved (registers, vGICv3, timers) and restored in
#                     a new process with its count and clock continuous; a flipped GIC
#                     byte refused.
# `npm run test:arm64` runs every file (vmrun's CLI, run and session on arm64 too:
# 7 min more in L1s, most of it Node's start under TCG, after 11 min of arm64 addon
# and kernel builds on a fresh machine): `--all [FILE...]` here.
# Needs qemu-system-aarch64 and aarch64-linux-gnu-g++ (scripts/setup.sh installs them).
set -eu
cd -- "$(dirname -- "$0")/.."

# No arguments: the CI files. --all [FILE...]: every file, or the files named.
files="test/arm64/boot.test.ts test/arm64/snapshot.test.ts"
bound_s=1200
if [ "${1:-}" = --all ]; then
  shift
  files="$*"
  bound_s=7200
fi
# Bounded: a stall the harness's own watchdog missed must not take CI's whole budget.
bound_s=${VMRUN_ARM64_SUITE_TIMEOUT_S:-$bound_s}

missing=""
command -v qemu-system-aarch64 >/dev/null 2>&1 || missing="$missing qemu-system-aarch64 (qemu-system-arm)"
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || missing="$missing aarch64-linux-gnu-g++ (g++-aarch64-linux-gnu)"
if [ -n "$missing" ]; then
  echo "e2e-arm64: missing:$missing; scripts/setup.sh installs them" >&2
  exit 125
fi

echo "e2e-arm64: ${files:-every file in test/arm64} in aarch64 L1s (bound ${bound_s} s)"
# shellcheck disable=SC2086 # the file list is meant to split
timeout -k 30 "$bound_s" node_modules/.bin/vitest run --config vitest.arm64.config.ts $files && exit 0
status=$?
[ "$status" -eq 124 ] && echo "e2e-arm64: not finished after ${bound_s} s: stopped" >&2
exit "$status"
