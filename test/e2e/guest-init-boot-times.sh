#!/usr/bin/env bash
# Measures how long vmrun's guest kernel + vmrun-init take to run `echo hi` under QEMU
# microvm, for several kernel cmdlines: wall time from QEMU's start to its exit and the
# guest's uptime when the workload ran. KVM when run inside the nested harness
# (test/harness/nested-kvm -- test/e2e/guest-init-boot-times.sh), TCG elsewhere.
# usage: test/e2e/guest-init-boot-times.sh [RUNS]   (default 5 runs per cmdline)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kernel=$("$repo/guest/kernel/build.sh" | sed -n 's/^bzImage: //p')
make -s -C "$repo/guest/init"
(cd "$repo" && npx tsc -p tsconfig.build.json --outDir "$work/dist" >/dev/null)

# The initrd: static busybox as the image, vmrun-init, and a run config for the command.
cat >"$work/mkinitrd.mjs" <<JS
import { readFileSync, writeFileSync } from 'node:fs';
import { buildImageInitramfs } from '$work/dist/initramfs/image-initramfs.js';
import { encodeRunConfig } from '$work/dist/initramfs/run-config.js';
import { resolveRunSpec } from '$work/dist/run/run-spec.js';
const bb = readFileSync('/bin/busybox');
const root = { uid: 0, gid: 0, mtime: 0, size: 0 };
const entries = [
  { ...root, path: 'bin', type: 'dir', mode: 0o755 },
  { ...root, path: 'bin/busybox', type: 'file', mode: 0o755, size: bb.length, content: bb },
  ...['sh', 'echo', 'cat'].map((a) => ({ ...root, path: 'bin/' + a, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
];
const image = await buildImageInitramfs({ imageDigest: 'sha256:' + 'e'.repeat(64), initBinaryPath: '$repo/guest/init/out/vmrun-init', cacheDir: '$work/cache' }, entries);
const run = encodeRunConfig(resolveRunSpec({}, { command: ['sh', '-c', 'echo hi; cat /proc/uptime'] }));
writeFileSync('$work/initrd.cpio', Buffer.concat([readFileSync(image), run]));
console.log('initramfs: image ' + readFileSync(image).length + ' bytes, run config ' + run.length + ' bytes');
JS
node "$work/mkinitrd.mjs"

if [ "${VMRUN_NESTED_L1:-}" = 1 ] && [ -e /dev/kvm ]; then accel="microvm,accel=kvm"; cpu=host; else accel="microvm,accel=tcg"; cpu=max; fi
echo "kernel: $kernel ($(stat -c %s "$kernel") bytes), init: $(stat -c %s "$repo/guest/init/out/vmrun-init") bytes, accel: $accel"

measure() {
  local extra=$1 walls="" uptimes=""
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    timeout 300 qemu-system-x86_64 -machine "$accel" -cpu "$cpu" -m 256 -nodefaults -no-user-config \
      -display none -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 \
      -kernel "$kernel" -initrd "$work/initrd.cpio" \
      -append "console=ttyS0 reboot=k panic=-1 rdinit=/.vmrun/init quiet $extra" >"$work/out" 2>&1 || true
    end=$(date +%s%N)
    grep -q '^hi' "$work/out" || { echo "no output with '$extra':"; cat "$work/out"; exit 1; }
    walls="$walls $(((end - start) / 1000000))"
    uptimes="$uptimes $(sed -n '/^hi/{n;p}' "$work/out" | cut -d' ' -f1)"
  done
  printf 'wall ms:%s | guest uptime at workload s:%s | cmdline: %s\n' "$walls" "$uptimes" "${extra:-(base)}"
}

measure ""
measure "lpj=25960650"
measure "tsc=reliable no_timer_check"
measure "lpj=25960650 tsc=reliable no_timer_check i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on cryptomgr.notests"
