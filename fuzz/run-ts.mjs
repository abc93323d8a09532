#!/usr/bin/env node
/**
 * Runs every TypeScript fuzz target (fuzz/ts/*.fuzz.ts) for a set time each, one
 * after another, and exits non-zero if any crashed:
 *
 *   node fuzz/run-ts.mjs [--seconds N] [--only name[,name...]] [--seed S]
 *
 * Targets are bundled with esbuild into fuzz/.build/ and each runs in a worker
 * thread (driver.mjs) under fast-check, seeded from fuzz/corpus/<name>/. The
 * parent watches a run counter in shared memory: no progress for --hang-seconds is
 * a hang, a worker killed by its heap bound is an unbounded allocation; either way
 * the input then running is known. Every crash input is written to
 * fuzz/corpus/<name>/crash-<sha256 prefix>, where test/fuzz-regressions.test.ts
 * replays it (with the rest of the corpus) on every `npm test`. A failure that
 * surfaces asynchronously (an unhandled rejection, caught one tick after the run) is
 * charged to the input then running, and shrinking may then wander off: confirm
 * that the saved input reproduces alone before committing it.
 *
 * Why fast-check and not Jazzer.js: @jazzer.js/core 4.0.0 installs, but its prebuilt
 * libFuzzer addon needs glibc 2.38 (Debian 12 has 2.36) and it ships no source to
 * build; 2.x downloads its binary from GitHub at install, which cannot be reached.
 */
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';

const FUZZ = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const seconds = Number(option('seconds', '10'));
const hangSeconds = Number(option('hang-seconds', '10'));
const only = option('only', '')?.split(',').filter(Boolean) ?? [];
const seed = Number(option('seed', String(randomInt(2 ** 31))));
if (!(seconds > 0) || !(hangSeconds > 0)) {
  console.error('usage: node fuzz/run-ts.mjs [--seconds N] [--hang-seconds N] [--only name,...] [--seed S]');
  process.exit(125);
}

const SHARED_INPUT_BYTES = 1 << 20;
const MAX_INPUT_BYTES = 256 << 10;
const HEAP_MB = 768;
const RSS_LIMIT = 2 * 2 ** 30;

const files = readdirSync(join(FUZZ, 'ts')).filter((f) => f.endsWith('.fuzz.ts')).sort();
const targets = files.map((f) => f.slice(0, -'.fuzz.ts'.length)).filter((n) => only.length === 0 || only.includes(n));
for (const n of only) if (!targets.includes(n)) throw new Error(`no fuzz target ${n} (have: ${files.join(', ')})`);

// Bundled next to the sources' depth (fuzz/.build/X.mjs), so the addon is found at ../../build/native.
const outdir = join(FUZZ, '.build');
await build({
  entryPoints: targets.map((n) => join(FUZZ, 'ts', `${n}.fuzz.ts`)),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outdir,
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
});

/** Runs one target; resolves to a crash description or undefined. */
function fuzzOne(name) {
  const corpusDir = join(FUZZ, 'corpus', name);
  const seeds = existsSync(corpusDir) ? readdirSync(corpusDir).sort().map((f) => readFileSync(join(corpusDir, f))) : [];
  const shared = new SharedArrayBuffer(8 + SHARED_INPUT_BYTES);
  const counters = new Int32Array(shared, 0, 2);
  const currentInput = () => Buffer.from(new Uint8Array(shared, 8, Atomics.load(counters, 1)));
  const worker = new Worker(join(FUZZ, 'driver.mjs'), {
    workerData: { modulePath: join(outdir, `${name}.fuzz.mjs`), seconds, seeds, shared, seed, rssLimitBytes: RSS_LIMIT, maxInputBytes: MAX_INPUT_BYTES },
    resourceLimits: { maxOldGenerationSizeMb: HEAP_MB },
  });
  return new Promise((resolve) => {
    let settled = false;
    let lastRuns = -1;
    let lastChange = Date.now();
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      void worker.terminate();
      resolve(outcome);
    };
    const watch = setInterval(() => {
      const runs = Atomics.load(counters, 0);
      if (runs !== lastRuns) {
        lastRuns = runs;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > hangSeconds * 1000) {
        finish({ crash: { kind: 'hang', error: `no progress for ${hangSeconds} s on one input`, input: currentInput() }, runs });
      }
    }, 250);
    worker.on('message', (m) => {
      finish(m.failed ? { crash: { kind: 'crash', error: m.error, input: Buffer.from(m.input ?? []) }, runs: m.runs, ms: m.ms } : { runs: m.runs, ms: m.ms });
    });
    worker.on('error', (e) => {
      const oom = e?.code === 'ERR_WORKER_OUT_OF_MEMORY';
      finish({ crash: { kind: oom ? 'unbounded allocation' : 'crash', error: String(e?.stack ?? e), input: currentInput() }, runs: Atomics.load(counters, 0) });
    });
    worker.on('exit', (code) => finish({ crash: { kind: 'crash', error: `worker exited with code ${code} before reporting`, input: currentInput() }, runs: Atomics.load(counters, 0) }));
  });
}

// Every temp file a target or its parser makes goes under one directory, removed at
// the end: a worker thread that is terminated runs no exit handler of its own.
// Workers take their environment (TMPDIR) from this thread's when they start.
const scratchRoot = mkdtempSync(join(tmpdir(), 'vmrun-fuzz-run-'));
process.env.TMPDIR = scratchRoot;

let crashes = 0;
console.log(`fuzz-ts: ${targets.length} targets, ${seconds} s each, seed ${seed}`);
for (const name of targets) {
  const outcome = await fuzzOne(name);
  const rate = outcome.ms ? ` (${Math.round((outcome.runs / outcome.ms) * 1000)}/s)` : '';
  if (!outcome.crash) {
    console.log(`fuzz-ts: ${name}: ${outcome.runs} inputs${rate}, no crash`);
    continue;
  }
  crashes++;
  const { kind, error, input } = outcome.crash;
  const dir = join(FUZZ, 'corpus', name);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `crash-${createHash('sha256').update(input).digest('hex').slice(0, 16)}`);
  writeFileSync(path, input);
  console.log(`fuzz-ts: ${name}: ${kind} after ${outcome.runs} inputs; input saved as ${path} (${input.length} bytes)\n${error}`);
}
console.log(crashes ? `fuzz-ts: ${crashes} target(s) crashed (seed ${seed})` : 'fuzz-ts: no crashes');
rmSync(scratchRoot, { recursive: true, force: true });
process.exit(crashes ? 1 : 0);
