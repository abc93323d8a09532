#!/usr/bin/env node
// Boot benchmark (issue 2): VM create + boot to the guest's first output byte for the
// smallest test guest, through the library and through the CLI, and the host RSS of
// an idle VM. Anchors in the same run: spawning `node -e 0` (CLI start-up) and an
// idle Node process's RSS.
import { spawnSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timeRuns, report, round } from './stats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { Machine } = await import(join(root, 'dist', 'index.js'));
const hello = join(root, 'fixtures', 'guests', 'out', 'hello.elf');
const counter = join(root, 'fixtures', 'guests', 'out', 'counter.elf');

// 1. Library: Machine.boot() to the first console byte, and to the guest's exit.
const firstByte = [];
const toExit = await timeRuns(20, async () => {
  const t0 = process.hrtime.bigint();
  const m = Machine.boot({ kernel: hello, memory: '64M' });
  m.output.once('data', () => firstByte.push(Number(process.hrtime.bigint() - t0) / 1e6));
  m.output.resume();
  await m.wait();
});
report({ bench: 'boot', metric: 'library boot to first output (hello.elf, 64M)', value: round(median(firstByte.slice(-20))), unit: 'ms' });
report({ bench: 'boot', metric: 'library boot to guest exit (hello.elf, 64M)', value: round(median(toExit)), unit: 'ms' });

// 2. CLI: `vmrun boot hello.elf` against `node -e 0`, both whole processes.
const spawnTime = (args) => () => {
  const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
};
const nodeStart = await timeRuns(10, spawnTime(['-e', '0']));
const cliBoot = await timeRuns(10, spawnTime([join(root, 'bin', 'run.js'), 'boot', hello, '--memory', '64M']));
report({
  bench: 'boot',
  metric: 'CLI vmrun boot hello.elf, whole process',
  value: round(median(cliBoot)),
  unit: 'ms',
  anchor: { what: 'node -e 0', value: round(median(nodeStart)), unit: 'ms' },
  ratio: round(median(cliBoot) / median(nodeStart)),
});

// 3. Host RSS of an idle VM (a guest halted between timer ticks), in a fresh process,
// against the same process without a VM.
const rssOf = (withVm) =>
  new Promise((resolve, reject) => {
    const code = `
      const { Machine } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
      if (${withVm}) { const m = Machine.boot({ kernel: ${JSON.stringify(counter)}, memory: '256M', cmdline: 'period=200000000 limit=1000000' }); m.output.resume(); setTimeout(() => { console.log(process.memoryUsage().rss); m.stop(); }, 1500); }
      else setTimeout(() => console.log(process.memoryUsage().rss), 1500);`;
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (s) => (s === 0 ? resolve(Number(out.trim().split('\n')[0])) : reject(new Error(`rss child exited ${s}`))));
  });
const rssIdle = median([await rssOf(false), await rssOf(false), await rssOf(false)]);
const rssVm = median([await rssOf(true), await rssOf(true), await rssOf(true)]);
report({
  bench: 'boot',
  metric: 'host RSS added by an idle VM (256M guest, counter.elf halted between ticks)',
  value: round((rssVm - rssIdle) / 2 ** 20, 2),
  unit: 'MiB',
  anchor: { what: 'RSS of the same Node process without a VM', value: round(rssIdle / 2 ** 20, 2), unit: 'MiB' },
  ratio: round((rssVm - rssIdle) / rssIdle),
});
