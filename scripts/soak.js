#!/usr/bin/env node
// Resource soak (issue 16): N cycles of boot -> snapshot -> restore of the counter
// guest in this one process, through the library. After every cycle it reads this
// process's open fds, threads and RSS; a VM that leaked an fd, a thread (a vCPU or
// device thread not joined) or memory (a RAM mapping not unmapped) makes its curve
// climb. Prints one JSON line per sampled cycle and a summary, and fails (exit 1) when
// fds or threads at the end differ from after the first cycles, or RSS grew by more
// than SOAK_RSS_SLACK_MIB. Needs any KVM: on a host without /dev/kvm it re-runs itself
// in test/harness/nested-kvm. `node scripts/soak.js [cycles]` (default 200); needs
// `npm run build`.
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, runWhereGuestsRun } from '../bench/e2e/environment.js';

runWhereGuestsRun(fileURLToPath(import.meta.url), { smallGuests: true });

const CYCLES = Number(process.argv[2] ?? 200);
/** Cycles before the baseline is read: the first VMs warm caches, pools and the heap. */
const WARM_UP = 10;
/** RSS may wander with the JS heap and glibc's arenas; a leaked 32 MiB guest RAM would not fit. */
const RSS_SLACK_MIB = Number(process.env.SOAK_RSS_SLACK_MIB ?? 24);
/** A cycle's bound: the counter guest ticks every 20 ms, so seconds are plenty, even emulated. */
const CYCLE_TIMEOUT_MS = 120_000;

const tmp = mkdtempSync(join(tmpdir(), 'vmrun-soak-'));
process.env.VMRUN_CACHE = join(tmp, 'cache');
const { Machine } = await import(join(ROOT, 'dist', 'index.js'));
const counter = join(ROOT, 'fixtures', 'guests', 'out', 'counter.elf');

function sample(cycle) {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return {
    cycle,
    fds: readdirSync('/proc/self/fd').length,
    threads: readdirSync('/proc/self/task').length,
    rssMiB: Math.round(kib('VmRSS') / 102.4) / 10,
  };
}

/** Resolves once the machine's console output matches `re`; rejects after the cycle bound. */
function outputMatching(m, re) {
  return new Promise((resolve, reject) => {
    let seen = '';
    // The machine's exit counts say where a guest that stopped ticking was (halted, or spinning).
    const timer = setTimeout(
      () => reject(new Error(`no ${re} within ${CYCLE_TIMEOUT_MS} ms; output: ${JSON.stringify(seen.slice(-200))}; stats: ${JSON.stringify(m.stats())}`)),
      CYCLE_TIMEOUT_MS,
    );
    m.output.on('data', (d) => {
      seen += d;
      if (re.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function cycle(i) {
  const snap = join(tmp, `cycle-${i % 2}.vmsnap`);
  const booted = Machine.boot({ kernel: counter, memory: '32M', cmdline: 'period=20000000 limit=1000000' });
  await outputMatching(booted, /count \d+\n/);
  await booted.snapshot(snap, { stop: true });
  await booted.wait();
  const restored = await Machine.restore(snap);
  // The restored guest counts on from where it was saved: its next line proves it runs.
  await outputMatching(restored, /count \d+\n/);
  restored.stop();
  await restored.wait();
  rmSync(snap, { force: true });
}

const samples = [];
let failed = false;
try {
  for (let i = 1; i <= CYCLES; i++) {
    await cycle(i);
    const s = sample(i);
    samples.push(s);
    if (i === 1 || i === WARM_UP || i % 20 === 0 || i === CYCLES) console.log(JSON.stringify({ soak: 'boot-snapshot-restore', ...s }));
  }
  const base = samples[Math.min(WARM_UP, samples.length) - 1];
  const last = samples[samples.length - 1];
  const summary = {
    soak: 'boot-snapshot-restore',
    cycles: CYCLES,
    baselineCycle: base.cycle,
    fds: [base.fds, last.fds],
    threads: [base.threads, last.threads],
    rssMiB: [base.rssMiB, last.rssMiB],
    maxRssMiB: Math.max(...samples.map((s) => s.rssMiB)),
  };
  console.log(JSON.stringify(summary));
  if (last.fds !== base.fds || last.threads !== base.threads || last.rssMiB - base.rssMiB > RSS_SLACK_MIB) {
    console.error(`soak: resources grew over ${CYCLES} cycles: ${JSON.stringify(summary)}`);
    failed = true;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
