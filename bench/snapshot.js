#!/usr/bin/env node
// Snapshot benchmark (issue 6), every figure against an anchor measured in the same run:
//  - restore latency through the library, call -> first guest instruction and -> first
//    console byte (256 MiB guest), against booting the smallest guest to its first
//    instruction;
//  - the same through the CLI (spawn -> first byte), against `node -e` printing a byte;
//  - save time and file size for a 256 MiB guest with 16, 64 and 200 MiB touched, the
//    touched RAM being real file content (shared libraries, text) loaded as an initrd.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, openSync, readSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, report, round } from './stats.js';
import { runWhereGuestsRun } from './e2e/environment.js';

// The counter guest runs on any KVM; a host without /dev/kvm runs this in the nested harness.
runWhereGuestsRun(fileURLToPath(import.meta.url), { smallGuests: true });

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'vmrun-bench-snap-'));
process.env.VMRUN_CACHE = join(tmp, 'cache');
const { Machine } = await import(join(root, 'dist', 'index.js'));
const guests = join(root, 'fixtures', 'guests', 'out');
const counter = join(guests, 'counter.elf');
const now = () => process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;

async function untilOutput(m, re) {
  let out = '';
  m.output.on('data', (d) => (out += d));
  for (let i = 0; i < 3000 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 5));
}

// A 256 MiB counter guest ticking every millisecond, saved mid-run.
const snap = join(tmp, 'counter256.vmsnap');
{
  const m = Machine.boot({ kernel: counter, memory: '256M', cmdline: 'period=1000000 limit=100000000' });
  await untilOutput(m, /count 20\n/);
  await m.snapshot(snap, { stop: true });
  await m.wait();
}

// 1. Library restore. The first restore expands the RAM image (reported separately).
const runs = 20;
const cold = now();
{
  const m = await Machine.restore(snap);
  m.output.resume();
  m.stop();
  await m.wait();
}
report({ bench: 'snapshot', metric: 'first restore of a snapshot (expands the RAM image once)', value: round(ms(cold, now())), unit: 'ms' });
const toEntry = [];
const toByte = [];
const steps = {};
for (let i = 0; i < runs; i++) {
  // Let the previous VM's teardown finish in the kernel: a user restores in a fresh process.
  await new Promise((r) => setTimeout(r, 100));
  const t0 = now();
  const m = await Machine.restore(snap);
  for (const [k, v] of Object.entries(m.stats().setupMs)) (steps[k] ??= []).push(v);
  const first = new Promise((r) => m.output.once('data', () => r(now())));
  const tb = await first;
  toEntry.push(ms(t0, m.stats().firstEntryNs));
  toByte.push(ms(t0, tb));
  m.stop();
  await m.wait();
}
const bootEntry = [];
for (let i = 0; i < runs; i++) {
  await new Promise((r) => setTimeout(r, 100));
  const t0 = now();
  const m = Machine.boot({ kernel: join(guests, 'hello.elf'), memory: '256M' });
  m.output.resume();
  await m.wait();
  bootEntry.push(ms(t0, m.stats().firstEntryNs));
}
report({
  bench: 'snapshot', metric: 'library restore -> first guest instruction (256 MiB)', value: round(median(toEntry)), unit: 'ms',
  anchor: { what: 'library boot of hello.elf -> first guest instruction (256 MiB)', value: round(median(bootEntry)), unit: 'ms' },
  ratio: round(median(toEntry) / median(bootEntry)), goal: '< 5 ms',
});
report({ bench: 'snapshot', metric: 'library restore -> first guest output byte (256 MiB, timer tick 1 ms)', value: round(median(toByte)), unit: 'ms' });
report({
  bench: 'snapshot', metric: 'where restore time goes: native set-up steps (medians)', unit: 'ms',
  steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, round(median(v))])),
});

// 2. CLI restore: spawn -> first stdout byte, against node printing one byte.
const firstByte = (args) =>
  new Promise((resolve, reject) => {
    const t0 = now();
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    c.stdout.once('data', () => {
      resolve(ms(t0, now()));
      c.kill('SIGKILL');
    });
    c.on('error', reject);
  });
const cli = [];
const nodeAnchor = [];
for (let i = 0; i < 10; i++) {
  nodeAnchor.push(await firstByte(['-e', 'process.stdout.write("x")']));
  cli.push(await firstByte([join(root, 'bin', 'run.js'), 'snapshot', 'restore', snap]));
}
report({
  bench: 'snapshot', metric: 'CLI vmrun snapshot restore: spawn -> first guest byte', value: round(median(cli)), unit: 'ms',
  anchor: { what: 'node -e writing one byte: spawn -> first byte', value: round(median(nodeAnchor)), unit: 'ms' },
  addedMs: round(median(cli) - median(nodeAnchor)), ratio: round(median(cli) / median(nodeAnchor)), goal: 'adds <= 20 ms',
});

// 3. Save: 256 MiB guest with N MiB touched by real file content.
function realContent(path, bytes) {
  const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/share/doc', '/usr/bin'];
  const out = openSync(path, 'w');
  let written = 0;
  const buf = Buffer.alloc(1 << 20);
  outer: for (const d of dirs) {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (!st.isFile()) continue;
      const fd = openSync(p, 'r');
      for (let n; (n = readSync(fd, buf, 0, Math.min(buf.length, bytes - written))) > 0; ) {
        writeSync(out, buf, 0, n);
        written += n;
        if (written >= bytes) { closeSync(fd); break outer; }
      }
      closeSync(fd);
    }
  }
  closeSync(out);
}
for (const mib of [16, 64, 200]) {
  const initrd = join(tmp, `content-${mib}.bin`);
  realContent(initrd, mib << 20);
  const m = Machine.boot({ kernel: counter, initrd, memory: '256M', cmdline: 'period=1000000 limit=100000000' });
  await untilOutput(m, /count 3\n/);
  const path = join(tmp, `save-${mib}.vmsnap`);
  const t0 = now();
  const r = await m.snapshot(path);
  const total = ms(t0, now());
  m.stop();
  await m.wait();
  const size = statSync(path).size;
  const touched = r.metadata.ram.touchedBytes;
  report({
    bench: 'snapshot', metric: `save 256 MiB guest, ${mib} MiB of file content + guest touched`,
    value: round(total), unit: 'ms', guestPausedMs: round(r.pausedMs), writeMs: round(r.writeMs),
    touchedMiB: round(touched / 2 ** 20, 1), fileMiB: round(size / 2 ** 20, 2),
    ratio: round(size / touched), goal: 'file <= 40% of touched RAM',
  });
}
rmSync(tmp, { recursive: true, force: true });
