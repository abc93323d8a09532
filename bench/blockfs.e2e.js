#!/usr/bin/env node
// Block rootfs against the initramfs path, in the same run, with a real guest: a
// busybox image with a 200 MiB layer, `vmrun run --rootfs block` (read-only ext4 disk
// + tmpfs overlay) vs `vmrun run --rootfs initramfs` (the same tree in a cpio the
// kernel unpacks into RAM), both from a warm cache, spawn to the workload's output.
// Also the one-time cost of building each from the image's layers (cold cache, in
// process): the ext4 writer against the cpio writer on the same rootfs stream.
// Prints JSON lines (bench/stats.js); ratio = block / initramfs. Runs: VMRUN_BENCH_RUNS
// (default 5). Re-runs itself in test/harness/nested-kvm when this host's KVM cannot
// run Linux guests natively. Needs `npm run build`.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, guestKernels, inNestedL1, privateVmrunState, runWhereGuestsRun } from './e2e/environment.js';
import { importTsBundle } from './e2e/bundle-ts.js';
import { timeFirstOutput } from './e2e/first-output.js';
import { median, report, round } from './stats.js';

runWhereGuestsRun(fileURLToPath(import.meta.url));

const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 5);
const START_TIMEOUT_MS = 300_000;
const PAYLOAD_BYTES = 200 << 20;
/** Enough guest RAM for the initramfs path: the archive and its unpacked copy. */
const MEMORY = '1G';
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host (KVM with hardware virtualization)';

/** One JSON line: the median of `values` against the median of `anchor` (ms), ratio = value / anchor. */
function reportAgainst(metric, values, anchorWhat, anchor) {
  const value = median(values);
  const base = median(anchor);
  report({ bench: 'blockfs', metric, value: round(value), unit: 'ms', anchor: { what: anchorWhat, value: round(base), unit: 'ms' }, ratio: round(value / base), runs: RUNS, where });
}

const kernels = guestKernels();
const state = privateVmrunState();
const { writeBusyboxLayout } = await importTsBundle(join(ROOT, 'test', 'e2e', 'helpers', 'busybox-image.ts'));
const oci = await import(join(ROOT, 'dist', 'oci', 'index.js'));
const { buildImageDisk } = await import(join(ROOT, 'dist', 'blockfs', 'image-disk.js'));
const { buildImageInitramfs } = await import(join(ROOT, 'dist', 'initramfs', 'image-initramfs.js'));
const { cpioEntriesOfRootfs } = await import(join(ROOT, 'dist', 'initramfs', 'rootfs-entries.js'));
const { vmrunHome } = await import(join(ROOT, 'dist', 'host', 'paths.js'));

try {
  const layout = join(state.root, 'layout');
  await writeBusyboxLayout(layout, 'v1', { layers: [{ entries: [{ name: 'opt/payload.bin', content: Buffer.alloc(PAYLOAD_BYTES, 'vmrun ') }], compression: 'none' }] });
  const image = `oci:${layout}:v1`;

  // 1. Build cost, cold: each writer from the same stream, into a scratch cache.
  const store = await oci.ImageStore.open(vmrunHome());
  const stored = await oci.pullImage(store, image);
  const scratch = join(state.root, 'scratch-cache');
  const init = join(ROOT, 'guest', 'init', 'out', 'vmrun-init');
  const builds = { ext4: [], cpio: [] };
  for (let i = 0; i < RUNS; i++) {
    rmSync(scratch, { recursive: true, force: true });
    let t = performance.now();
    await buildImageDisk(stored.record.digest, oci.streamRootfs(store, stored), scratch);
    builds.ext4.push(performance.now() - t);
    t = performance.now();
    await buildImageInitramfs({ imageDigest: stored.record.digest, initBinaryPath: init, cacheDir: scratch }, cpioEntriesOfRootfs(oci.streamRootfs(store, stored)));
    builds.cpio.push(performance.now() - t);
    process.stderr.write(`bench/blockfs.e2e.js: build ${i + 1}/${RUNS}: ext4 ${round(builds.ext4.at(-1))} ms, cpio ${round(builds.cpio.at(-1))} ms\n`);
  }
  rmSync(scratch, { recursive: true, force: true });
  reportAgainst(`block rootfs build from the layers (ext4 writer, ${PAYLOAD_BYTES >> 20} MiB layer + busybox, cold cache)`, builds.ext4, 'the initramfs (newc cpio) writer on the same rootfs stream', builds.cpio);

  // 2. Boot to the workload's output, each path from a warm cache (the warm-up run builds it).
  const marker = 'first-output';
  const run = (rootfs) => async () => {
    const argv = [process.execPath, join(ROOT, 'bin', 'run.js'), 'run', '-q', '-m', MEMORY, '--rootfs', rootfs, '--kernel', kernels.vmlinux, image, 'sh', '-c', `echo ${marker}`];
    const r = await timeFirstOutput(argv, { env: state.env, timeoutMs: START_TIMEOUT_MS });
    if (r.status !== 0 || r.stdout !== `${marker}\n`) throw new Error(`vmrun run --rootfs ${rootfs}: status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr}`);
    return r.firstOutputMs;
  };
  const samples = { block: run('block'), initramfs: run('initramfs') };
  const times = { block: [], initramfs: [] };
  for (let i = -1; i < RUNS; i++) {
    for (const [name, sample] of Object.entries(samples)) {
      const ms = await sample();
      process.stderr.write(`bench/blockfs.e2e.js: ${name} ${i < 0 ? 'warm-up' : `${i + 1}/${RUNS}`}: ${round(ms, 1)} ms\n`);
      if (i >= 0) times[name].push(ms);
    }
  }
  reportAgainst(
    `vmrun run --rootfs block of a busybox image with a ${PAYLOAD_BYTES >> 20} MiB layer to the workload's output (${MEMORY}, warm cache, whole CLI process)`,
    times.block,
    'the same image and command with --rootfs initramfs (warm cache)',
    times.initramfs,
  );
} finally {
  state.cleanup();
}
