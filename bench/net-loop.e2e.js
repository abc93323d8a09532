#!/usr/bin/env node
// A bounded loop of guests doing bench/network.e2e.js's steps, then several guest -> host
// TCP transfers (issue 11: the guest triple faults seen in that bench), with everything
// the guest and L1 can tell: the guest kernel's log (--debug's loglevel; LOOP_MODE=direct
// boots with `panic=0 oops=panic` so a panic halts and prints), and, in the nested L1,
// L1's KVM trace (ftrace kvm_exit: the guest RIP of a shutdown exit, which KVM on SVM
// loses when it resets the vCPU) saved when a guest ends badly, plus L1's per-VM KVM
// counters (exits by kind, nested-paging faults) for each transfer step.
//
//   node bench/net-loop.e2e.js            (re-runs itself in test/harness/nested-kvm)
//   LOOP_VMM=vmrun | qemu | vmrun,qemu (guests take turns)  LOOP_GUESTS=4  LOOP_TRANSFERS=8
//   LOOP_GETS=30  LOOP_RX=1  LOOP_TRACE=1  LOOP_MODE=agent|direct
//   LOOP_OUT=dir (console logs and traces; default /tmp/net-loop-<time>)
//
// Per guest: LOOP_GETS HTTP GETs to busybox httpd and one host -> guest transfer of 16 MiB
// through published ports (as the bench does), then LOOP_TRANSFERS guest -> host transfers
// of 16 MiB, each to the one sink this script listens with on 127.0.0.1, reached from the
// guest as 10.0.2.2. Ends with one JSON line per VMM: guests, transfers, guests that ended badly.
// NETWORK RULE: only 127.0.0.1 and the guests' private networks; every loop is bounded.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import { ROOT, guestKernels, inNestedL1, privateVmrunState, runWhereGuestsRun } from './e2e/environment.js';
import { importTsBundle } from './e2e/bundle-ts.js';
import { connectWhenListening, freePort, writeBytes } from './e2e/loopback.js';
import { microvmArgv } from './e2e/qemu.js';

runWhereGuestsRun(fileURLToPath(import.meta.url));

/** Which VMMs, taking turns guest by guest: vmrun, qemu, or both ("vmrun,qemu"). */
const VMMS = (process.env.LOOP_VMM ?? 'vmrun').split(',');
const GUESTS = Number(process.env.LOOP_GUESTS ?? 4);
const TRANSFERS = Number(process.env.LOOP_TRANSFERS ?? 8);
const RX_FIRST = (process.env.LOOP_RX ?? '1') === '1';
/** GETs to busybox httpd in the guest through a published port before the transfers, as the bench does. */
const GETS = Number(process.env.LOOP_GETS ?? 30);
/**
 * vmrun only. `agent`: as `vmrun run` does (startImageRun: the workload over the vsock
 * agent, IDENTITY, --debug's loglevel but panic=-1, cold boot); `direct`: the workload
 * in the run configuration and the command line changed to halt on a panic or oops.
 */
const MODE = process.env.LOOP_MODE ?? 'agent';
const TRACE = (process.env.LOOP_TRACE ?? '1') === '1' && inNestedL1();
const BYTES = 16 << 20;
const STEP_TIMEOUT_MS = 180_000;
const OUT = process.env.LOOP_OUT ?? `/tmp/net-loop-${new Date().toISOString().replace(/[:.]/g, '-')}`;
mkdirSync(OUT, { recursive: true });
const log = (s) => process.stderr.write(`net-loop: ${s}\n`);

const kernels = guestKernels();
const state = privateVmrunState();
const { prepareRun } = await import(join(ROOT, 'dist', 'run', 'run-image.js'));
const { Machine } = await import(join(ROOT, 'dist', 'machine', 'machine.js'));
const { writeBusyboxLayout } = await importTsBundle(join(ROOT, 'test', 'e2e', 'helpers', 'busybox-image.ts'));
const layout = join(state.root, 'layout');
await writeBusyboxLayout(layout, 'v1', { applets: ['nc', 'dd', 'cat', 'httpd', 'mkdir', 'sleep'] });
const { startImageRun } = await import(join(ROOT, 'dist', 'run', 'image-run.js'));
const { get: httpGet } = await import('node:http');
const image = `oci:${layout}:v1`;

// ---- L1's KVM trace (ftrace): the RIP of a shutdown exit survives SVM's reset of the vCPU.
const TRACING = '/sys/kernel/tracing';
function tracing(file, value) {
  try {
    writeFileSync(join(TRACING, file), value);
    return true;
  } catch (e) {
    log(`trace: ${file} <- ${value}: ${e.message}`);
    return false;
  }
}
function traceStart() {
  if (!TRACE) return;
  if (!existsSync(join(TRACING, 'events'))) spawnSync('mount', ['-t', 'tracefs', 'nodev', TRACING]);
  if (!existsSync(join(TRACING, 'events', 'kvm'))) return log('trace: no kvm events in L1 tracefs');
  tracing('tracing_on', '0');
  tracing('buffer_size_kb', '8192');
  tracing('trace', '');
  for (const e of ['kvm_exit', 'kvm_inj_exception', 'kvm_userspace_exit', 'kvm_set_irq', 'kvm_msi_set_irq', 'kvm_inj_virq']) tracing(`events/kvm/${e}/enable`, '1');
  tracing('tracing_on', '1');
}
function traceSave(name) {
  if (!TRACE || !existsSync(join(TRACING, 'events', 'kvm'))) return;
  tracing('tracing_on', '0');
  try {
    // Not copyFileSync: tracefs files report size 0, so a copy by size copies nothing.
    const r = spawnSync('sh', ['-c', `cat ${TRACING}/trace > '${join(OUT, `${name}.trace`)}'`]);
    if (r.status !== 0) throw new Error(`cat ${TRACING}/trace failed`);
    log(`trace saved: ${join(OUT, `${name}.trace`)}`);
  } catch (e) {
    log(`trace: ${e.message}`);
  }
  tracing('trace', '');
  tracing('tracing_on', '1');
}

// ---- L1's KVM counters (debugfs, summed over VMs; one guest runs at a time): exits by kind.
const KVM_STATS = '/sys/kernel/debug/kvm';
function kvmStats(pid) {
  if (!inNestedL1()) return undefined;
  if (!existsSync(KVM_STATS)) spawnSync('mount', ['-t', 'debugfs', 'none', '/sys/kernel/debug']);
  // The VM's own directory (<pid>-<fd>): counters of other VMs do not mix in.
  let dir;
  try {
    dir = readdirSync(KVM_STATS).find((d) => d.startsWith(`${pid}-`));
  } catch {
    return undefined;
  }
  if (!dir) return undefined;
  const out = {};
  for (const f of ['exits', 'pf_fixed', 'pf_taken', 'io_exits', 'mmio_exits', 'irq_exits', 'halt_exits', 'halt_wakeup', 'irq_injections', 'request_irq_exits', 'signal_exits', 'insn_emulation']) {
    try {
      out[f] = Number(readFileSync(join(KVM_STATS, dir, f), 'utf8'));
    } catch {
      /* not in this kernel */
    }
  }
  return out;
}
const statsDelta = (a, b) => (a && b ? Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)])) : undefined);
function thpInfo() {
  try {
    const enabled = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim();
    const vm = readFileSync('/proc/vmstat', 'utf8');
    const pick = (k) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(vm)?.[1] ?? NaN);
    return { enabled, thp_fault_alloc: pick('thp_fault_alloc'), thp_collapse_alloc: pick('thp_collapse_alloc'), compact_migrate_scanned: pick('compact_migrate_scanned') };
  } catch {
    return undefined;
  }
}

/** The sink: every connection it takes counts BYTES then closes (busybox nc then exits). */
function sinkServer(port, onDone) {
  const server = createServer((sock) => {
    let t0;
    let n = 0;
    sock.on('error', () => {});
    sock.on('data', (d) => {
      t0 ??= process.hrtime.bigint();
      n += d.length;
      if (n >= BYTES) {
        onDone(n / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9));
        sock.destroy();
      }
    });
  });
  return new Promise((r) => server.listen(port, '127.0.0.1', () => r(server)));
}

function timedGet(port) {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('GET timed out')));
    req.on('error', reject);
  });
}

/** Sends BYTES through the published port; false if the guest closed it first. */
async function sendToGuest(port) {
  const sock = await connectWhenListening(port, Date.now() + STEP_TIMEOUT_MS, 300);
  if ((await writeBytes(sock, BYTES)) < BYTES) return false;
  sock.end();
  return true;
}

const guestScript = (sinkPort) =>
  [
    ...(GETS > 0 ? ['mkdir -p /www && echo ok > /www/index.html && httpd -p 5002 -h /www'] : []),
    ...(RX_FIRST || GETS > 0 ? ['echo loop-ready'] : []),
    ...(RX_FIRST ? [ 'nc -l -p 5001 > /dev/null', 'echo loop-received'] : []),
    'i=0',
    `while [ $i -lt ${TRANSFERS} ]; do dd if=/dev/zero bs=65536 count=${BYTES / 65536} 2>/dev/null | nc 10.0.2.2 ${sinkPort}; echo loop-sent-$i; i=$((i+1)); done`,
    // Time for the host to read the VM's counters before it powers off.
    'sleep 3',
    'echo loop-done',
  ].join('; ');

/** Kernel command line: everything logged, and a panic or oops halts with its message. */
const debugCmdline = (cmdline) =>
  cmdline
    .split(' ')
    .filter((w) => !/^(quiet|loglevel=\d|panic=-?\d+)$/.test(w))
    .concat(['loglevel=8', 'panic=0', 'oops=panic', 'ignore_loglevel', 'printk.devkmsg=on'])
    .join(' ');

async function guest(index, VMM) {
  const name = `${VMM}-${index}`;
  const [rxPort, sinkPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const rates = [];
  let onRate = () => {};
  const sink = await sinkServer(sinkPort, (r) => {
    rates.push(r);
    onRate();
  });
  const network = {
    mode: 'host-loopback',
    publish: [
      { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: rxPort, guestPort: 5001 },
      { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: httpPort, guestPort: 5002 },
    ],
  };
  const runOpts = { image, command: ['sh', '-c', guestScript(sinkPort)], kernel: kernels.bzImage, debug: true, network };
  const run = VMM.startsWith('vmrun') && MODE === 'agent' ? undefined : (await prepareRun({ image, command: ['sh', '-c', guestScript(sinkPort)], kernel: kernels.bzImage, debug: true, network }));
  const cmdline = run && debugCmdline(run.boot.cmdline);
  const consolePath = join(OUT, `${name}.console`);
  let console = '';
  let ended;
  let exitInfo;
  const t0 = Date.now();
  if (VMM.startsWith('vmrun') && MODE === 'agent') {
    const fd = openSync(consolePath, 'w');
    let out = '';
    let started;
    try {
      started = await startImageRun({ ...runOpts, cold: true, kernelLogFd: fd });
    } catch (e) {
      // The guest ended before its agent answered (a fault during boot).
      closeSync(fd);
      sink.close();
      traceSave(name);
      const tail = readFileSync(consolePath, 'latin1').split('\n').slice(-6).join('\n');
      log(`${name}: 0/${TRANSFERS} transfers, ended during boot: ${e.message}\n${tail}`);
      return { vmm: VMM, name, sent: 0, bad: true, bootFault: true, exitInfo: { message: e.message } };
    }
    const machine = started.machine;
    started.workload.stdout.on('data', (d) => (out += d.toString('latin1')));
    started.workload.stderr.on('data', (d) => (out += d.toString('latin1')));
    ended = machine.wait().then((e) => {
      exitInfo = { reason: e.reason, message: e.message, rip: e.rip?.toString(16) };
      closeSync(fd);
    });
    var readConsole = () => out;
    var readKernelLog = () => readFileSync(consolePath, 'latin1');
    var kill = () => machine.stop();
  } else if (VMM.startsWith('vmrun')) {
    const fd = openSync(consolePath, 'w');
    const machine = Machine.boot({ ...run.boot, cmdline, consoleFd: fd });
    run.cleanup();
    ended = machine.wait().then((e) => {
      exitInfo = { reason: e.reason, message: e.message, rip: e.rip?.toString(16) };
      closeSync(fd);
    });
    var readConsole = () => readFileSync(consolePath, 'latin1');
    var kill = () => machine.stop();
  } else {
    const initrd = join(state.root, `qemu-${sinkPort}.cpio`);
    writeFileSync(initrd, Buffer.concat(run.boot.initrd.map((f) => readFileSync(f))));
    run.cleanup();
    const argv = microvmArgv({ kernel: kernels.bzImage, initrd, cmdline });
    argv[argv.indexOf('microvm')] = 'microvm,acpi=off';
    argv.push('-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${rxPort}-:5001,hostfwd=tcp:127.0.0.1:${httpPort}-:5002`, '-device', 'virtio-net-device,netdev=net0', '-no-reboot', '-d', 'guest_errors,cpu_reset', '-D', join(OUT, `${name}.qemu-log`));
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    var qemuPid = child.pid;
    child.stdout.on('data', (d) => (console += d.toString('latin1')));
    child.stderr.on('data', (d) => (console += d.toString('latin1')));
    ended = new Promise((r) => child.on('close', (code, sig) => {
      exitInfo = { reason: `qemu exit ${code ?? sig}` };
      writeFileSync(consolePath, console);
      r();
    }));
    var readConsole = () => console;
    var kill = () => child.kill('SIGKILL');
  }
  // Whose KVM VM this is: vmrun runs it in this process, QEMU in its own.
  var vmPid = VMM.startsWith('vmrun') ? process.pid : qemuPid;
  let gone = false;
  ended.then(() => (gone = true));
  const waitFor = async (re, ms) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && !gone) {
      if (re.test(readConsole())) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return re.test(readConsole());
  };
  let sent = 0;
  let problem = '';
  let transferStats;
  let statsAtRx;
  try {
    if (RX_FIRST || GETS > 0) {
      if (!(await waitFor(/loop-ready/, STEP_TIMEOUT_MS))) throw new Error('no loop-ready');
    }
    for (let i = 0; i < GETS; i++) await timedGet(httpPort);
    statsAtRx = kvmStats(vmPid);
    let rxRate;
    if (RX_FIRST) {
      const t = process.hrtime.bigint();
      if (!(await sendToGuest(rxPort))) throw new Error('host -> guest transfer closed early');
      if (!(await waitFor(/loop-received/, STEP_TIMEOUT_MS))) throw new Error('no loop-received');
      rxRate = BYTES / 1e6 / (Number(process.hrtime.bigint() - t) / 1e9);
    }
    var statsAtTx = kvmStats(vmPid);
    transferStats = { rxMBps: rxRate, rx: statsDelta(statsAtRx, statsAtTx) };
    for (let i = 0; i < TRANSFERS; i++) {
      if (!(await waitFor(new RegExp(`loop-sent-${i}\\b`), STEP_TIMEOUT_MS))) throw new Error(`transfer ${i} did not end`);
      sent++;
    }
    transferStats.tx = statsDelta(statsAtTx, kvmStats(vmPid));
    transferStats.txMBps = rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : undefined;
    await waitFor(/loop-done/, 30_000);
  } catch (e) {
    problem = e.message;
  }
  // A vmrun guest powers off after its command; QEMU's too (isa-debug-exit / reboot, -no-reboot).
  await Promise.race([ended, new Promise((r) => setTimeout(r, problem ? 5_000 : 60_000))]);
  if (!gone) kill();
  await ended;
  sink.close();
  const bad = problem !== '' || sent < TRANSFERS;
  if (bad) traceSave(name);
  else if (index === 0 && TRACE) {
    // Shows that the trace works: the last events of a good guest.
    const r = spawnSync('sh', ['-c', `tail -n 40 ${TRACING}/trace`], { encoding: 'utf8' });
    writeFileSync(join(OUT, `${name}.trace-tail`), r.stdout ?? '');
  }
  const tail = (typeof readKernelLog === 'function' ? readKernelLog() : readConsole()).split('\n').slice(-12).join('\n');
  log(`${name}: ${sent}/${TRANSFERS} transfers (${rates.map((r) => r.toFixed(1)).join(' ')} MB/s) in ${((Date.now() - t0) / 1000).toFixed(0)} s, end ${JSON.stringify(exitInfo)}${problem ? `, PROBLEM: ${problem}` : ''}`);
  if (transferStats) log(`${name}: L1 KVM counters, host->guest step (${transferStats.rxMBps?.toFixed(1)} MB/s) ${JSON.stringify(transferStats.rx)}; guest->host steps ${JSON.stringify(transferStats.tx)}`);
  if (bad) log(`${name}: console tail:\n${tail}`);
  return { vmm: VMM, name, sent, bad, exitInfo, rates, transferStats };
}

traceStart();
log(`L1 THP: ${JSON.stringify(thpInfo())}`);
const results = [];
try {
  for (let g = 0; g < GUESTS; g++) results.push(await guest(g, VMMS[g % VMMS.length]));
} finally {
  state.cleanup();
}
log(`L1 THP at the end: ${JSON.stringify(thpInfo())}`);
for (const vmm of VMMS) {
  const mine = results.filter((r) => r.vmm === vmm);
  const transfers = mine.reduce((s, r) => s + r.sent, 0);
  const faults = mine.filter((r) => r.bad).length;
  log(`${vmm}: ${mine.length} guests, ${transfers} guest->host transfers done, ${faults} guests ended badly; output in ${OUT}`);
  process.stdout.write(JSON.stringify({ vmm, guests: mine.length, transfers, faults, results: mine }) + '\n');
}
process.exit(0);
