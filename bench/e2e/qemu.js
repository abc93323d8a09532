// The QEMU anchor of the e2e benchmarks: Debian's qemu-system-x86_64 booting the same
// kernel, initramfs and command line as vmrun on the microvm machine with KVM (on
// arm64, qemu-system-aarch64's virt machine: bench/arm64.e2e.js), and QEMU's own
// snapshots (savevm through the human monitor, then -loadvm).
import { spawn, spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';

export const QEMU = 'qemu-system-x86_64';
const MONITOR_PROMPT = '(qemu) ';

/** Why QEMU cannot be the anchor here, or undefined. */
export function qemuUnavailableReason() {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return `${QEMU} is not installed (apt-get install qemu-system-x86)`;
  if (spawnSync('qemu-img', ['--version']).status !== 0) return 'qemu-img is not installed (apt-get install qemu-utils)';
  return undefined;
}

/**
 * argv of a microvm boot of `kernel` + `initrd` with `cmdline`, 256 MiB, the serial
 * console on stdout and vmrun's exit port (isa-debug-exit at 0xf4). With `scratch`
 * (a qcow2 file), a drive that holds savevm snapshots; with `monitor` (a unix socket
 * path), the human monitor listening there.
 * @param {{ kernel: string, initrd: string, cmdline: string, scratch?: string, monitor?: string }} o
 */
export function microvmArgv(o) {
  return [
    QEMU,
    '-machine', 'microvm', '-enable-kvm', '-cpu', 'host', '-m', '256',
    '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.cmdline,
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=4',
    ...snapshotArgv(o),
  ];
}

/**
 * argv of an arm64 boot on `qemu` (a qemu-system-aarch64) of `kernel` (an arm64
 * Image) + `initrd` with `cmdline` on the virt machine with KVM and a GICv3 (vmrun's
 * arm64 machine has one), 256 MiB, no default devices (no network), the PL011 console
 * on stdout; `scratch` and `monitor` as in microvmArgv. The guest ends it by powering
 * off (PSCI SYSTEM_OFF).
 * @param {{ qemu: string, kernel: string, initrd: string, cmdline: string, cpus?: number, scratch?: string, monitor?: string }} o
 */
export function virtArgv(o) {
  return [
    o.qemu,
    '-machine', 'virt,gic-version=3', '-enable-kvm', '-cpu', 'host', '-m', '256', '-smp', String(o.cpus ?? 1),
    '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.cmdline,
    ...snapshotArgv(o),
  ];
}

/** The scratch drive for savevm snapshots and the human monitor, when given. */
const snapshotArgv = (/** @type {{ scratch?: string, monitor?: string }} */ o) => [
  ...(o.scratch ? ['-drive', `if=none,format=qcow2,file=${o.scratch},id=snapshots`] : []),
  ...(o.monitor ? ['-monitor', `unix:${o.monitor},server=on,wait=off`] : []),
];

/** The guest's status from QEMU's exit code under isa-debug-exit ((status << 1) | 1, 8 bits). */
export const guestStatusOf = (qemuExitCode) => (qemuExitCode - 1) >> 1;

/** Creates an empty qcow2 file for savevm snapshots. */
export function createScratchQcow2(path) {
  const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '16M'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img create ${path} failed: ${r.stderr}`);
}

/**
 * Boots `argv` (which must have a monitor at `monitor` and a scratch drive), waits
 * until the guest has printed `ready`, saves the VM as `name` with savevm, and quits.
 * Returns the console output up to the save. Every wait is bounded by `timeoutMs`.
 * @param {string[]} argv
 * @param {{ monitor: string, ready: RegExp, name: string, timeoutMs: number, env?: NodeJS.ProcessEnv }} o
 */
export async function saveQemuSnapshot(argv, o) {
  const qemu = spawn(argv[0], argv.slice(1), { env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  qemu.stdout.on('data', (d) => (stdout += d.toString('latin1')));
  qemu.stderr.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise((resolve) => qemu.on('close', resolve));
  const deadline = Date.now() + o.timeoutMs;
  const failure = (what) => new Error(`QEMU savevm: ${what}\nconsole: ${stdout.slice(-500)}\nstderr: ${stderr.slice(-2000)}`);
  try {
    while (!o.ready.test(stdout)) {
      if (qemu.exitCode !== null) throw failure(`QEMU exited (${qemu.exitCode}) before the guest printed ${o.ready}`);
      if (Date.now() > deadline) throw failure(`the guest did not print ${o.ready} in time`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const monitor = await connectMonitor(o.monitor, deadline);
    const reply = await monitor.command(`savevm ${o.name}`);
    // HMP reports savevm errors as text, with no status.
    if (/error/i.test(reply.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''))) throw failure(`savevm said: ${reply}`);
    const list = await monitor.command('info snapshots');
    if (!list.includes(o.name)) throw failure(`savevm left no snapshot ${o.name}: ${list}`);
    monitor.send('quit');
    const timer = setTimeout(() => qemu.kill('SIGKILL'), Math.max(1000, deadline - Date.now()));
    await exited;
    clearTimeout(timer);
    return stdout;
  } finally {
    if (qemu.exitCode === null) qemu.kill('SIGKILL');
  }
}

/** A connection to QEMU's human monitor at a unix socket, retried until `deadline`. */
async function connectMonitor(path, deadline) {
  for (;;) {
    try {
      const socket = await new Promise((resolve, reject) => {
        const s = createConnection(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
      let buffer = '';
      socket.on('data', (d) => (buffer += d.toString('latin1')));
      const untilPrompt = async () => {
        while (!buffer.endsWith(MONITOR_PROMPT)) {
          if (Date.now() > deadline) throw new Error(`QEMU monitor: no prompt in time; got ${JSON.stringify(buffer.slice(-200))}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        const reply = buffer;
        buffer = '';
        return reply;
      };
      await untilPrompt();
      return {
        send: (line) => socket.write(`${line}\n`),
        command: async (line) => {
          socket.write(`${line}\n`);
          return untilPrompt();
        },
      };
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`QEMU monitor at ${path}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
