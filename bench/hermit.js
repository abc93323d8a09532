#!/usr/bin/env node
// Hermit benchmark (issue 7): boot-to-exit of the smallest Hermit test kernel
// (fixtures/hermit minimal.elf) through the library, against the smallest Linux
// test guest (fixtures/guests hello.elf) booted the same way in the same run; and
// the round trip of one uhyve hypercall: a kernel doing N no-op hypercalls (lseek
// on a closed fd) against the same kernel doing none, from the native run time.
// Run: `node bench/hermit.js` after `npm run build` (it builds the test kernels).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timeRuns, report, round } from './stats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync('make', ['-s', '-C', join(root, 'fixtures', 'hermit')], { stdio: 'inherit' });
const { Machine } = await import(join(root, 'dist', 'index.js'));
const hermit = (name) => join(root, 'fixtures', 'hermit', 'out', `${name}.elf`);
const hello = join(root, 'fixtures', 'guests', 'out', 'hello.elf');

/** Boots a kernel through the library and waits for its end; returns the native stats. */
async function bootToExit(options) {
  const m = Machine.boot({ memory: '64M', ...options });
  m.output.resume();
  const exit = await m.wait();
  if (exit.exitCode !== 0) throw new Error(`${options.kernel} exited with ${exit.exitCode}: ${exit.message}`);
  return m.stats();
}

const RUNS = 20;
const hermitBoot = await timeRuns(RUNS, () => bootToExit({ kernel: hermit('minimal') }));
const linuxBoot = await timeRuns(RUNS, () => bootToExit({ kernel: hello }));
report({
  bench: 'hermit',
  metric: 'library boot to guest exit (minimal.elf, 64M)',
  value: round(median(hermitBoot)),
  unit: 'ms',
  anchor: { metric: 'library boot to guest exit (Linux-protocol hello.elf, 64M)', value: round(median(linuxBoot)), unit: 'ms' },
  ratio: round(median(hermitBoot) / median(linuxBoot)),
});

// Hypercall round trip: native run time (first vCPU start to stop) with N calls vs 0.
const N = 2000;
const runSeconds = async (count) => {
  const out = [];
  for (let i = 0; i < 7; i++) out.push((await bootToExit({ kernel: hermit('hypercall-loop'), guestArgs: [`count=${count}`] })).runSeconds);
  return median(out);
};
const idle = await runSeconds(0);
const busy = await runSeconds(N);
const perCall = ((busy - idle) / N) * 1e6;
// Anchor: the same kernel's console line, one SerialWriteBuffer per line, is already
// inside `idle`; the per-call cost is compared with the whole minimal boot.
report({
  bench: 'hermit',
  metric: `hypercall round trip (FileLseek, v2, median of 7 x ${N} calls)`,
  value: round(perCall, 2),
  unit: 'us',
  anchor: { metric: 'library boot to guest exit (minimal.elf, 64M)', value: round(median(hermitBoot) * 1000, 0), unit: 'us' },
  ratio: round(perCall / (median(hermitBoot) * 1000), 5),
});
