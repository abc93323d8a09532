#!/usr/bin/env node
// A kernel built by the Hermit project (uhyve's own hello_world, Hermit 0.6.9, in
// ../shared/fixtures/hermit) booted to its exit, against vmrun's own Linux-protocol
// hello guest (fixtures/guests hello.elf) booted the same way in the same run: through
// the library (Machine.boot, the VMM's own cost) and through the CLI (`vmrun boot`,
// what a user waits for, Node's start included). Debian 12 has no Hermit loader for
// QEMU (neither hermit-loader nor rusty-loader is packaged), so QEMU cannot be the
// anchor. hello_world needs SSE: on a host whose KVM does not run guests natively this
// re-runs itself inside test/harness/nested-kvm, where absolute times are far above a
// hardware host's: compare the ratios.
// Prints JSON lines (bench/stats.js); ratio = Hermit / Linux hello. Runs:
// VMRUN_BENCH_RUNS (default 3) after one warm-up. Progress on stderr; a boot that has
// not ended after VMRUN_BENCH_BOOT_LIMIT_S (default 120) is stopped and reported with
// its exit counts and console so far. Needs `npm run build`.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ROOT, inNestedL1, runWhereGuestsRun } from './e2e/environment.js';
import { median, report, round } from './stats.js';

const HELLO_WORLD = join(ROOT, '..', '..', 'shared', 'fixtures', 'hermit', 'hello_world');
const kernel = process.env.VMRUN_HERMIT_HELLO_WORLD ?? (existsSync(HELLO_WORLD) ? HELLO_WORLD : '/work/shared/fixtures/hermit/hello_world');
if (!existsSync(kernel)) throw new Error(`bench/hermit.e2e.js: the Hermit project's hello_world is missing (${kernel}); set VMRUN_HERMIT_HELLO_WORLD`);

runWhereGuestsRun(fileURLToPath(import.meta.url));

const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 3);
const BOOT_LIMIT_MS = Number(process.env.VMRUN_BENCH_BOOT_LIMIT_S ?? 120) * 1000;
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host (KVM with hardware virtualization)';
const { Machine } = await import(join(ROOT, 'dist', 'index.js'));
const hello = join(ROOT, 'fixtures', 'guests', 'out', 'hello.elf');
const progress = (line) => process.stderr.write(`bench/hermit.e2e.js: ${line}\n`);
const json = (v) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x));

/** Boots a kernel through the library, collects its console, waits for exit 0; returns ms and the output. */
async function libraryBoot(options) {
  const t0 = process.hrtime.bigint();
  const m = Machine.boot({ memory: '64M', ...options });
  const chunks = [];
  m.output.on('data', (c) => chunks.push(c));
  // A bound, so a boot that never ends says where it was instead of holding the run.
  let stuck;
  const timer = setTimeout(() => {
    stuck = m.stats();
    m.stop();
  }, BOOT_LIMIT_MS);
  const exit = await m.wait().finally(() => clearTimeout(timer));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const output = Buffer.concat(chunks).toString();
  if (stuck) throw new Error(`${options.kernel} did not end within ${BOOT_LIMIT_MS / 1000} s; stats then: ${json(stuck)}\nconsole so far:\n${output}`);
  if (exit.exitCode !== 0) throw new Error(`${options.kernel} exited with ${exit.exitCode}: ${exit.message}\n${output}`);
  return { ms, output, runMs: m.stats().runSeconds * 1000 };
}

const execFileAsync = promisify(execFile);
/** `vmrun boot KERNEL --memory 64M` to its exit (status 0): ms, Node's start included, and stdout. */
async function cliBoot(path) {
  const t0 = process.hrtime.bigint();
  const r = await execFileAsync(process.execPath, [join(ROOT, 'bin', 'run.js'), 'boot', path, '--memory', '64M', '--timeout', String(Math.ceil(BOOT_LIMIT_MS / 1000))], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, output: r.stdout };
}

const greeted = (what, output) => {
  if (!output.includes('\nHello, world!\n')) throw new Error(`hello_world did not greet (${what}):\n${output}`);
};

const times = { hermit: [], linux: [], hermitRun: [], linuxRun: [], cliHermit: [], cliLinux: [] };
for (let i = -1; i < RUNS; i++) {
  const run = i < 0 ? 'warm-up' : `${i + 1}/${RUNS}`;
  const h = await libraryBoot({ kernel });
  greeted('library', h.output);
  const l = await libraryBoot({ kernel: hello });
  progress(`${run}: library: hello_world ${round(h.ms, 1)} ms (guest ran ${round(h.runMs, 1)}), hello.elf ${round(l.ms, 1)} ms (guest ran ${round(l.runMs, 1)})`);
  const ch = await cliBoot(kernel);
  greeted('vmrun boot', ch.output);
  const cl = await cliBoot(hello);
  progress(`${run}: vmrun boot: hello_world ${round(ch.ms, 1)} ms, hello.elf ${round(cl.ms, 1)} ms`);
  if (i < 0) continue;
  times.hermit.push(h.ms);
  times.linux.push(l.ms);
  times.hermitRun.push(h.runMs);
  times.linuxRun.push(l.runMs);
  times.cliHermit.push(ch.ms);
  times.cliLinux.push(cl.ms);
}
report({
  bench: 'hermit',
  metric: `library boot to guest exit (the Hermit project's hello_world, 64M; median of ${RUNS})`,
  where,
  value: round(median(times.hermit)),
  unit: 'ms',
  anchor: { metric: 'library boot to guest exit (Linux-protocol hello.elf, 64M)', value: round(median(times.linux)), unit: 'ms' },
  ratio: round(median(times.hermit) / median(times.linux)),
  // Of which the guest itself ran (first vCPU entry to its exit, the native stats): the rest is VM set-up and loading.
  guestRunMs: { hermit: round(median(times.hermitRun)), anchor: round(median(times.linuxRun)) },
});
// Node's start and oclif's load in L1 are most of this and vary by seconds with the
// host's load: the library line above is the VMM's figure.
report({
  bench: 'hermit',
  metric: `vmrun boot to exit, Node's start included (the Hermit project's hello_world, 64M; median of ${RUNS})`,
  where,
  value: round(median(times.cliHermit)),
  unit: 'ms',
  anchor: { metric: 'vmrun boot to exit (Linux-protocol hello.elf, 64M)', value: round(median(times.cliLinux)), unit: 'ms' },
  ratio: round(median(times.cliHermit) / median(times.cliLinux)),
});
