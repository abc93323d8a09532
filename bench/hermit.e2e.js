#!/usr/bin/env node
// A kernel built by the Hermit project (uhyve's own hello_world, Hermit 0.6.9, in
// ../shared/fixtures/hermit) booted to its exit through the library, against vmrun's
// own Linux-protocol hello guest (fixtures/guests hello.elf) booted the same way in
// the same run. Debian has no Hermit loader for QEMU (hermit-loader is not packaged),
// so QEMU cannot be the anchor. hello_world needs SSE: on a host whose KVM does not
// run guests natively this re-runs itself inside test/harness/nested-kvm, where
// absolute times are far above a hardware host's: compare the ratio.
// Prints JSON lines (bench/stats.js); ratio = Hermit / Linux hello. Runs:
// VMRUN_BENCH_RUNS (default 5). Needs `npm run build`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, inNestedL1, runWhereGuestsRun } from './e2e/environment.js';
import { median, report, round } from './stats.js';

const HELLO_WORLD = join(ROOT, '..', '..', 'shared', 'fixtures', 'hermit', 'hello_world');
const kernel = process.env.VMRUN_HERMIT_HELLO_WORLD ?? (existsSync(HELLO_WORLD) ? HELLO_WORLD : '/work/shared/fixtures/hermit/hello_world');
if (!existsSync(kernel)) throw new Error(`bench/hermit.e2e.js: the Hermit project's hello_world is missing (${kernel}); set VMRUN_HERMIT_HELLO_WORLD`);

runWhereGuestsRun(fileURLToPath(import.meta.url));

const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 5);
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host (KVM with hardware virtualization)';
const { Machine } = await import(join(ROOT, 'dist', 'index.js'));
const hello = join(ROOT, 'fixtures', 'guests', 'out', 'hello.elf');

/** Boots a kernel through the library, collects its console, waits for exit 0; returns ms and the output. */
async function bootToExit(options) {
  const t0 = process.hrtime.bigint();
  const m = Machine.boot({ memory: '64M', ...options });
  const chunks = [];
  m.output.on('data', (c) => chunks.push(c));
  const exit = await m.wait();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const output = Buffer.concat(chunks).toString();
  if (exit.exitCode !== 0) throw new Error(`${options.kernel} exited with ${exit.exitCode}: ${exit.message}\n${output}`);
  return { ms, output };
}

const times = { hermit: [], linux: [] };
for (let i = -1; i < RUNS; i++) {
  const h = await bootToExit({ kernel });
  if (!h.output.includes('Hello, world!')) throw new Error(`hello_world did not greet:\n${h.output}`);
  const l = await bootToExit({ kernel: hello });
  process.stderr.write(`bench/hermit.e2e.js: ${i < 0 ? 'warm-up' : `${i + 1}/${RUNS}`}: hello_world ${round(h.ms, 1)} ms, hello.elf ${round(l.ms, 1)} ms\n`);
  if (i < 0) continue;
  times.hermit.push(h.ms);
  times.linux.push(l.ms);
}
report({
  bench: 'hermit',
  metric: `library boot to guest exit (the Hermit project's hello_world, 64M; median of ${RUNS})`,
  where,
  value: round(median(times.hermit)),
  unit: 'ms',
  anchor: { metric: 'library boot to guest exit (Linux-protocol hello.elf, 64M)', value: round(median(times.linux)), unit: 'ms' },
  ratio: round(median(times.hermit) / median(times.linux)),
});
