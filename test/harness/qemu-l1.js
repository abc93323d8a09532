// @ts-check
/**
 * Starting L1 under QEMU's TCG (no -enable-kvm: the host's KVM cannot run it), with
 * the host's / shared over virtio-9p, no network, and the serial console going to a
 * file the host follows.
 */
import { spawn } from 'node:child_process';
import { findCommand } from './host-tools.js';

/**
 * What L1 is booted with: its image (and the image's cache directory, where L1 saves
 * its kernel symbols once) and size, the job directory, the files its two
 * serial ports write (console, heartbeat), QEMU's QMP socket, the heartbeat interval,
 * and the test hook that wedges L1 after some seconds (0: never).
 * @typedef {{ arch: import('./l1-arch.js').L1Arch, kernel: string, initramfs: string, memoryMiB: number, cpus: number, verbose: boolean, jobDir: string,
 *   imageDir: string, consoleLog: string, heartbeatLog: string, qmpSocket: string, heartbeatS: number, wedgeAfterS: number }} L1Launch
 */

/**
 * QEMU's arguments for `launch`.
 * @param {L1Launch} launch
 * @returns {string[]}
 */
export function qemuArguments(launch) {
  const { arch } = launch;
  const cmdline = [
    `console=${arch.consoleDevice}`,
    'panic=-1', // a panic ends QEMU (-no-reboot) instead of hanging until --timeout
    'mitigations=off', // speculative-execution defences only slow down an emulated CPU
    ...arch.kernelArguments,
    // A stall report maps instruction pointers to the symbols L1 saved (stable
    // addresses) and asks for sysrq backtraces, which Debian's default mask leaves out.
    'nokaslr',
    'sysrq_always_enabled',
    ...(launch.verbose ? [] : ['quiet']),
    `nested_kvm.job=${launch.jobDir}`,
    `nested_kvm.heartbeat=${launch.heartbeatS}`,
    `nested_kvm.image=${launch.imageDir}`,
    ...(arch.hasHeartbeatPort ? [] : ['nested_kvm.no_heartbeat_port=1']),
    ...(arch.chrootIntoHost ? [] : ['nested_kvm.root=l1']),
    ...(launch.wedgeAfterS > 0 ? [`nested_kvm.wedge=${launch.wedgeAfterS}`] : []),
  ];
  // Running as root, files L1 creates get L1's owners; as a user, QEMU cannot chown,
  // and security_model=none makes it ignore that instead of failing the write.
  const securityModel = process.getuid?.() === 0 ? 'passthrough' : 'none';
  return [
    // debug-threads: QEMU names its threads ("CPU 0/TCG"), which a stall report shows.
    '-name', 'nested-kvm-l1,debug-threads=on',
    ...arch.machineArguments,
    '-accel', 'tcg',
    '-smp', String(launch.cpus),
    '-m', `${launch.memoryMiB}M`,
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-monitor', 'none',
    // QMP, for the stall report only (registers of every vCPU, sysrq keys).
    '-qmp', `unix:${qemuOptionValue(launch.qmpSocket)},server=on,wait=off`,
    '-nic', 'none',
    '-no-reboot',
    '-chardev', `file,id=console,path=${qemuOptionValue(launch.consoleLog)}`,
    '-serial', 'chardev:console',
    // ttyS1: the heartbeat (l1-heartbeat.js), on a path that has nothing to do with 9p.
    ...(arch.hasHeartbeatPort ? [
      '-chardev', `file,id=heartbeat,path=${qemuOptionValue(launch.heartbeatLog)}`,
      '-serial', 'chardev:heartbeat',
    ] : []),
    '-kernel', launch.kernel,
    '-initrd', launch.initramfs,
    '-append', cmdline.join(' '),
    // multidevs=remap: the host's / spans several filesystems; remap keeps inode
    // numbers unique across them in L1.
    ...virtfs(arch, { path: '/', tag: 'host', id: 'host0', securityModel, extra: ',multidevs=remap' }),
    // The job directory again, mounted without a cache over its path in L1 (l1-init.sh).
    ...virtfs(arch, { path: launch.jobDir, tag: 'job', id: 'job0', securityModel, extra: '' }),
  ];
}

/**
 * One 9p export: -virtfs where QEMU's default transport is the one L1 loads (x86_64:
 * virtio-pci), else the fsdev with an explicit device (aarch64: virtio-mmio).
 * @param {import('./l1-arch.js').L1Arch} arch
 * @param {{ path: string, tag: string, id: string, securityModel: string, extra: string }} e
 */
function virtfs(arch, e) {
  const local = `local,path=${qemuOptionValue(e.path)},security_model=${e.securityModel},id=${e.id}${e.extra}`;
  if (arch.virtfsDevice === 'virtio-9p-pci') return ['-virtfs', `${local},mount_tag=${e.tag}`];
  return ['-fsdev', local, '-device', `${arch.virtfsDevice},fsdev=${e.id},mount_tag=${e.tag}`];
}

/**
 * Starts QEMU; resolves `exited` with its exit code (or signal) when it ends.
 * @param {string} qemu
 * @param {string[]} args
 * @param {(chunk: Buffer) => void} onStderr
 */
export function startQemu(qemu, args, onStderr) {
  // If the harness itself is killed (SIGKILL, a CI runner's cancel), QEMU must not
  // live on: setpriv makes the kernel send it SIGKILL when its parent dies.
  const setpriv = findCommand('setpriv');
  const child = setpriv
    ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', qemu, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', onStderr);
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null, error?: Error }>} */
  const exited = new Promise((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    exited,
    /** QEMU's pid (setpriv execs it), for the stall report's look at its threads. */
    pid: child.pid,
    /** Kills QEMU at once; L1 holds nothing the host needs to keep. */
    kill: () => child.kill('SIGKILL'),
  };
}

/** A value for QEMU's comma-separated option syntax: commas are doubled. @param {string} value */
function qemuOptionValue(value) {
  return value.replaceAll(',', ',,');
}
