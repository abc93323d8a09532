#!/usr/bin/env node
// Fork benchmark (issue 13): one snapshot of a 256 MiB guest (fixtures/guests/clone,
// counting every second, with a network and a vsock device) restored 20 times at once,
// against anchors measured in the same run:
//  - library Machine.restoreMany(20): call -> every clone's first new output line,
//    against one Machine.restore of the same snapshot to its first line (x 20);
//  - host memory per idle clone beyond the pages its guest wrote, against the RAM size
//    (goal < 3 MiB): this process's anonymous memory growth (smaps_rollup) and the
//    system's used memory growth (/proc/meminfo: also KVM's own kernel memory), minus
//    the guest-written pages of every clone's RAM mapping (smaps);
//  - `vmrun snapshot restore --count 5`: spawn -> 5 ids, against one
//    `vmrun snapshot restore -d`; each background clone's host process anonymous memory
//    (its Node process included) as `vmrun ps --json` reports it.
// Needs a KVM that runs guests: on a host without one it re-runs itself inside
// test/harness/nested-kvm (absolute times there are far above a hardware host's).
// VMRUN_BENCH_FORK_COUNT (default 20) sets the library's clone count,
// VMRUN_BENCH_FORK_CLI_COUNT (default 5) the CLI's: each CLI clone is a Node host
// process, and 20 of them at once did not fit the nested harness's L1 (it died).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, inNestedL1, privateVmrunState, runWhereGuestsRun } from './e2e/environment.js';
import { median, report, round } from './stats.js';

runWhereGuestsRun(fileURLToPath(import.meta.url));

const COUNT = Number(process.env.VMRUN_BENCH_FORK_COUNT ?? 20);
const CLI_COUNT = Number(process.env.VMRUN_BENCH_FORK_CLI_COUNT ?? 5);
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host';
const state = privateVmrunState();
const { Machine, processMemory } = await import(join(ROOT, 'dist', 'index.js'));
const guest = join(ROOT, 'fixtures', 'guests', 'out', 'clone.elf');
const RAM = 256 << 20;
const MiB = 1 << 20;
const now = () => process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const vmrun = (...args) => spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], { env: state.env, encoding: 'utf8', timeout: 600_000 });

/** Resolves after the machine's next complete "count" line. */
function nextCount(m) {
  return new Promise((resolve) => {
    let text = '';
    const onData = (d) => {
      text += d;
      if (/^count \d+ .*\n/m.test(text)) {
        m.output.off('data', onData);
        m.output.resume();
        resolve();
      }
    };
    m.output.on('data', onData);
  });
}

/** When (process.hrtime.bigint) the machine's vCPU first entered the guest. */
async function firstEntry(m) {
  for (let i = 0; i < 100_000; i++) {
    const t = BigInt(m.stats().firstEntryNs);
    if (t > 0n) return t;
    await sleep(1);
  }
  throw new Error('a restored guest never ran');
}

/** MemTotal - MemAvailable, bytes. */
function systemUsed() {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(info)[1]) * 1024;
  return kb('MemTotal') - kb('MemAvailable');
}

try {
  // The snapshot: counting, its devices set up, saved mid-run.
  const snap = join(state.root, 'clone.vmsnap');
  {
    const m = Machine.boot({
      kernel: guest, memory: RAM, cmdline: 'period=1000000000',
      network: { mode: 'host-loopback' }, vsock: { cid: 3, socketPath: join(state.root, 'original.sock') },
    });
    for (let i = 0; i < 3; i++) await nextCount(m);
    await m.snapshot(snap, { stop: true });
    await m.wait();
  }
  const sockets = (tag) => (i) => join(state.root, `${tag}-${i}.sock`);

  // Anchor: one restore to its first guest instruction (the first one also expands the RAM image).
  const single = [];
  for (let i = 0; i < 6; i++) {
    await sleep(100);
    const t0 = now();
    const m = await Machine.restore(snap, { vsock: { socketPath: join(state.root, `single-${i}.sock`) } });
    m.output.resume();
    const t1 = await firstEntry(m);
    if (i > 0) single.push(ms(t0, t1));
    m.stop();
    await m.wait();
  }
  await sleep(500);

  // Fork: restoreMany, every clone to its first guest instruction.
  const processBefore = await processMemory(process.pid);
  const systemBefore = systemUsed();
  const t0 = now();
  const clones = await Machine.restoreMany(snap, COUNT, { vsockSocketPath: sockets('clone') });
  const returned = ms(t0, now());
  for (const c of clones) c.output.resume();
  const firsts = await Promise.all(clones.map(firstEntry));
  const total = ms(t0, firsts.reduce((a, b) => (b > a ? b : a)));
  report({
    bench: 'fork', where, metric: `library restoreMany(${COUNT}) of one 256 MiB snapshot -> every clone's first guest instruction`, value: round(total), unit: 'ms',
    callReturnedMs: round(returned),
    anchor: { what: `one library restore -> its first guest instruction, x ${COUNT}`, value: round(median(single) * COUNT), unit: 'ms', single: round(median(single)) },
    ratio: round(total / (median(single) * COUNT)),
  });

  // Idle for a while (a count a second writes one page each), then measure.
  await sleep(3000);
  const usage = await Promise.all(clones.map((c) => c.memoryUsage()));
  const processAfter = await processMemory(process.pid);
  const systemAfter = systemUsed();
  const written = usage.reduce((a, u) => a + u.guestRam.writtenBytes, 0);
  const shared = usage.reduce((a, u) => a + u.guestRam.sharedBytes, 0);
  const perCloneProcess = (processAfter.anonymousBytes - processBefore.anonymousBytes - written) / COUNT;
  const perCloneSystem = (systemAfter - systemBefore - written) / COUNT;
  report({
    bench: 'fork', where, metric: 'host memory per idle clone beyond the pages its guest wrote (VMM process, Anonymous in smaps_rollup)', value: round(perCloneProcess / MiB), unit: 'MiB',
    anchor: { what: 'guest RAM size', value: RAM / MiB, unit: 'MiB' }, ratio: round(perCloneProcess / RAM, 5), goal: '< 3 MiB',
    guestWrittenPerCloneMiB: round(written / COUNT / MiB), sharedImagePerCloneMiB: round(shared / COUNT / MiB),
  });
  report({
    bench: 'fork', where, metric: 'host memory per idle clone beyond the pages its guest wrote (whole system: MemTotal - MemAvailable, with KVM\'s kernel memory)', value: round(perCloneSystem / MiB), unit: 'MiB',
    anchor: { what: 'guest RAM size', value: RAM / MiB, unit: 'MiB' }, ratio: round(perCloneSystem / RAM, 5), goal: '< 3 MiB',
  });
  for (const c of clones) c.stop();
  await Promise.all(clones.map((c) => c.wait()));

  // The CLI: N background clones, each in its own host process.
  const name = join(state.root, 'clone.vmsnap');
  const oneStart = now();
  const one = vmrun('snapshot', 'restore', name, '-d');
  const oneMs = ms(oneStart, now());
  if (one.status !== 0) throw new Error(`vmrun snapshot restore -d failed: ${one.stderr}`);
  vmrun('stop', one.stdout.trim());
  const cliStart = now();
  const many = vmrun('snapshot', 'restore', name, '--count', String(CLI_COUNT));
  const cliMs = ms(cliStart, now());
  if (many.status !== 0) throw new Error(`vmrun snapshot restore --count failed: ${many.stderr}`);
  await sleep(3000);
  const ps = JSON.parse(vmrun('ps', '--json').stdout);
  const privateDirty = ps.filter((e) => e.memory).map((e) => e.memory.anonymousBytes);
  report({
    bench: 'fork', where, metric: `vmrun snapshot restore --count ${CLI_COUNT}: spawn -> ${CLI_COUNT} ids printed (every host reported its VM running)`, value: round(cliMs), unit: 'ms',
    anchor: { what: `vmrun snapshot restore -d of the same snapshot, x ${CLI_COUNT}`, value: round(oneMs * CLI_COUNT), unit: 'ms', single: round(oneMs) },
    ratio: round(cliMs / (oneMs * CLI_COUNT)),
  });
  report({
    bench: 'fork', where, metric: 'background clone host process anonymous memory (vmrun ps PRIVATE MEM; its Node process included)', value: round(median(privateDirty) / MiB), unit: 'MiB',
    anchor: { what: 'guest RAM size', value: RAM / MiB, unit: 'MiB' }, clones: privateDirty.length,
  });
} finally {
  state.cleanup();
}
