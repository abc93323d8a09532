#!/usr/bin/env node
// Network benchmarks with a real guest (issue 11), vmrun against QEMU's user-mode
// network (-netdev user, libslirp too) on the same kernel, initramfs and command line,
// in the same run and the same place (the nested-KVM L1 on this project's machines):
//  1. connection set-up: sequential HTTP GETs through a published port to busybox
//     httpd in the guest (connect + request + response + close), median ms;
//  2. TCP throughput host -> guest through a published port (guest: nc -l > /dev/null);
//  3. TCP throughput guest -> host loopback through the gateway (dd | nc 10.0.2.2).
// Prints JSON lines (bench/stats.js); ratio = vmrun / QEMU (throughput: above 1 is
// better; latency: below 1 is better). Traffic stays on 127.0.0.1 and the guests'
// private networks. Needs `npm run build`. Runs: VMRUN_BENCH_RUNS (default 3); VMRUN_BENCH_DEBUG=1
// adds --debug to vmrun (the guest kernel's log on stderr, shown when a sample fails).
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, guestKernels, inNestedL1, privateVmrunState, runWhereGuestsRun } from './e2e/environment.js';
import { importTsBundle } from './e2e/bundle-ts.js';
import { connectWhenListening, freePort, writeBytes } from './e2e/loopback.js';
import { spawn, spawnSync } from 'node:child_process';
import { QEMU, microvmArgv } from './e2e/qemu.js';
import { median, report, round } from './stats.js';

runWhereGuestsRun(fileURLToPath(import.meta.url));

const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 3);
const BYTES = 16 << 20;
const REQUESTS = 30;
const START_TIMEOUT_MS = 180_000;
const STEP_TIMEOUT_MS = 300_000;
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host (KVM with hardware virtualization)';

if (spawnSync(QEMU, ['--version']).status !== 0) throw new Error(`bench/network.e2e.js needs ${QEMU} as its anchor (apt-get install qemu-system-x86)`);
const kernels = guestKernels();
const state = privateVmrunState();
const { prepareRun } = await import(join(ROOT, 'dist', 'run', 'run-image.js'));
const { writeBusyboxLayout } = await importTsBundle(join(ROOT, 'test', 'e2e', 'helpers', 'busybox-image.ts'));

const layout = join(state.root, 'layout');
await writeBusyboxLayout(layout, 'v1', { applets: ['nc', 'httpd', 'dd', 'mkdir'] });
const image = `oci:${layout}:v1`;

/** The guest's part: httpd for set-up latency, then receive, then send. The host drives each step. */
const guestScript = (sinkPort) =>
  [
    'mkdir -p /www && echo ok > /www/index.html && httpd -p 5002 -h /www',
    'echo bench-ready',
    'nc -l -p 5001 > /dev/null; echo bench-received',
    `dd if=/dev/zero bs=65536 count=${BYTES / 65536} 2>/dev/null | nc 10.0.2.2 ${sinkPort}; echo bench-sent`,
    'sleep 600',
  ].join('; ');

/** Resolves when `child`'s stdout has shown `re` (bounded). */
function waitOutput(child, re, timeoutMs) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms; output: ${out.slice(-800)}`)), timeoutMs);
    const onData = (d) => {
      out += d.toString('latin1');
      if (re.test(out)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
  });
}

/** One GET through the published port; resolves with its duration in ms (rejects on failure). */
function timedGet(port) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('GET timed out')));
    req.on('error', reject);
  });
}

/**
 * Connects (retrying, bounded until the guest listens) and sends BYTES; resolves with
 * MB/s from the connection to `received` (the guest printing that its nc saw the end:
 * the bytes left the host's socket buffer and reached the guest's nc).
 */
async function sendToGuest(port, received) {
  const sock = await connectWhenListening(port, Date.now() + STEP_TIMEOUT_MS, 200);
  const t0 = process.hrtime.bigint();
  const sent = await writeBytes(sock, BYTES);
  if (sent < BYTES) throw new Error(`the guest closed published port ${port} after ${sent} bytes`);
  sock.end();
  await received;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  sock.destroy();
  return BYTES / 1e6 / seconds;
}

/**
 * A sink on 127.0.0.1 that resolves with MB/s (first byte to the last of BYTES) of the
 * one connection it takes; busybox nc does not close its socket at the end of its input.
 */
function sinkServer(port) {
  const server = createServer();
  const rate = new Promise((resolve) => {
    server.on('connection', (sock) => {
      let t0;
      let n = 0;
      sock.on('data', (d) => {
        t0 ??= process.hrtime.bigint();
        n += d.length;
        if (n >= BYTES) {
          resolve(n / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9));
          sock.destroy();
        }
      });
    });
  });
  return new Promise((r) => server.listen(port, '127.0.0.1', () => r({ server, rate })));
}

/** One sample: start the guest with `argvFor(ports)`, measure the three figures, stop it. */
async function sample(name, argvFor) {
  const [httpPort, rxPort, sinkPort] = [await freePort(), await freePort(), await freePort()];
  const sink = await sinkServer(sinkPort);
  const argv = await argvFor({ httpPort, rxPort, sinkPort });
  const child = spawn(argv[0], argv.slice(1), { env: state.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d.toString()));
  try {
    await waitOutput(child, /bench-ready/, START_TIMEOUT_MS);
    const times = [];
    for (let i = 0; i < REQUESTS; i++) times.push(await timedGet(httpPort));
    const toGuest = await sendToGuest(rxPort, waitOutput(child, /bench-received/, STEP_TIMEOUT_MS));
    const fromGuest = await Promise.race([sink.rate, new Promise((_, rej) => setTimeout(() => rej(new Error('guest->host transfer did not end')), STEP_TIMEOUT_MS))]);
    const r = { connectMs: median(times.slice(3)), toGuestMBps: toGuest, fromGuestMBps: fromGuest };
    process.stderr.write(`bench/network.e2e.js: ${name}: ${JSON.stringify(r)}\n`);
    return r;
  } catch (e) {
    throw new Error(`${name}: ${e.message}\nstderr: ${stderr.slice(process.env.VMRUN_BENCH_DEBUG ? -20000 : -1500)}`);
  } finally {
    child.kill('SIGKILL');
    sink.server.close();
  }
}

try {
  const vmrunArgv = ({ httpPort, rxPort, sinkPort }) => [
    process.execPath, join(ROOT, 'bin', 'run.js'), 'run', '-q', ...(process.env.VMRUN_BENCH_DEBUG ? ['--debug'] : []), '--kernel', kernels.bzImage,
    '-p', `127.0.0.1:${httpPort}:5002`, '-p', `127.0.0.1:${rxPort}:5001`, image, 'sh', '-c', guestScript(sinkPort),
  ];
  // QEMU boots exactly what vmrun would: the cached image archive + the per-run archive (eth0 10.0.2.15/24 via 10.0.2.2).
  const qemuArgv = async ({ httpPort, rxPort, sinkPort }) => {
    const run = await prepareRun({ image, command: ['sh', '-c', guestScript(sinkPort)], kernel: kernels.bzImage });
    const initrd = join(state.root, `qemu-${sinkPort}.cpio`);
    try {
      writeFileSync(initrd, Buffer.concat(run.boot.initrd.map((f) => readFileSync(f))));
    } finally {
      run.cleanup();
    }
    const argv = microvmArgv({ kernel: kernels.bzImage, initrd, cmdline: run.boot.cmdline });
    argv[argv.indexOf('microvm')] = 'microvm,acpi=off'; // virtio-mmio devices announced on the command line, as vmrun does
    return [
      ...argv,
      '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${httpPort}-:5002,hostfwd=tcp:127.0.0.1:${rxPort}-:5001`,
      '-device', 'virtio-net-device,netdev=net0',
    ];
  };
  const results = { vmrun: [], qemu: [] };
  for (let i = 0; i < RUNS; i++) {
    results.vmrun.push(await sample(`vmrun ${i + 1}/${RUNS}`, vmrunArgv));
    results.qemu.push(await sample(`qemu ${i + 1}/${RUNS}`, qemuArgv));
  }
  const med = (side, key) => median(results[side].map((r) => r[key]));
  const anchorWhat = 'qemu-system-x86_64 -machine microvm -enable-kvm, -netdev user (libslirp) + virtio-net-device, same kernel, initramfs, guest commands';
  for (const [key, metric, unit] of [
    ['connectMs', `HTTP GET through a published port to busybox httpd in the guest (new connection each, median of ${REQUESTS - 3})`, 'ms'],
    ['toGuestMBps', `TCP host -> guest through a published port (${BYTES >> 20} MiB into nc -l)`, 'MB/s'],
    ['fromGuestMBps', `TCP guest -> host loopback through 10.0.2.2 (${BYTES >> 20} MiB from dd | nc)`, 'MB/s'],
  ]) {
    report({
      bench: 'network',
      metric,
      value: round(med('vmrun', key)),
      unit,
      anchor: { what: anchorWhat, value: round(med('qemu', key)), unit },
      ratio: round(med('vmrun', key) / med('qemu', key)),
      runs: RUNS,
      where,
    });
  }
} finally {
  state.cleanup();
}
// Seen once in L1: the process stayed alive after its figures (a socket of a killed
// guest's published port?); the bench ends here either way.
process.exit(0);
