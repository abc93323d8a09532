#!/usr/bin/env node
// Volumes (virtio-fs) against QEMU with the same mechanism, in the same run, with a
// real guest: one busybox image, one kernel build, one virtiofsd binary started with
// the same options (vmrun's own, from the addon), 512 MiB of RAM on each side.
// vmrun: `vmrun run -v DIR:/vol`; anchor: qemu-system-x86_64 -machine microvm with
// memfd RAM (share=on) and a vhost-user-fs-device on virtio-mmio, booting the same
// initramfs and run configuration (vmrun-init mounts tag vmrun0 at /vol on both).
// The guest times each step itself (/proc/uptime), so boots do not count:
//   sequential write of 200 MiB (dd bs=1M conv=fsync), sequential read of a 200 MiB
//   host file the guest has not read before (dd bs=1M), untar of 5000 small files
//   (from the guest's RAM into the volume, then sync).
// Prints JSON lines (bench/stats.js); ratio = vmrun / QEMU (time: below 1 is faster).
// Runs: VMRUN_BENCH_RUNS (default 1, to stay within the harness's 30 min bound; no warm-up run: the steps are timed in the
// guest, after the boot, and the host file is in the host's page cache for both).
// In the nested-KVM L1 one run of both sides takes about 15 minutes (the untar: every
// FUSE request crosses emulated host code). Re-runs itself in test/harness/nested-kvm when
// this host's KVM cannot run Linux guests natively. Needs `npm run build`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, guestKernels, inNestedL1, privateVmrunState, runWhereGuestsRun } from './e2e/environment.js';
import { importTsBundle } from './e2e/bundle-ts.js';
import { QEMU, guestStatusOf } from './e2e/qemu.js';
import { median, report, round } from './stats.js';

runWhereGuestsRun(fileURLToPath(import.meta.url));

const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 1);
const TIMEOUT_MS = 900_000;
const FILE_MIB = 200;
const SMALL_FILES = 5000;
const MEMORY_MIB = 512;
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host (KVM with hardware virtualization)';

// The anchor needs QEMU itself (not qemu-img: nothing here is saved).
if (spawnSync(QEMU, ['--version']).status !== 0) {
  console.error(`bench/volumes.e2e.js: no anchor: ${QEMU} is not installed (apt-get install qemu-system-x86)`);
  process.exit(1);
}

// The guest's script: each step stamped with /proc/uptime (10 ms resolution).
const SCRIPT = [
  't() { read up _ </proc/uptime; echo "T $1 $up"; }',
  'cp /vol/small.tar /tmp/small.tar',
  't start',
  `dd if=/dev/zero of=/vol/written bs=1M count=${FILE_MIB} conv=fsync 2>/dev/null`,
  't write',
  'dd if=/vol/host-file of=/dev/null bs=1M 2>/dev/null',
  't read',
  'mkdir /vol/untar && tar -xf /tmp/small.tar -C /vol/untar && sync',
  't untar',
].join('\n');

/** Step durations (ms) from the guest's stamps. */
function steps(stdout, who) {
  const stamps = Object.fromEntries([...stdout.matchAll(/^T (\w+) ([\d.]+)\r?$/gm)].map((m) => [m[1], Number(m[2]) * 1000]));
  for (const k of ['start', 'write', 'read', 'untar']) if (stamps[k] === undefined) throw new Error(`${who}: no "${k}" stamp in the guest output: ${stdout.slice(-2000)}`);
  return { write: stamps.write - stamps.start, read: stamps.read - stamps.write, untar: stamps.untar - stamps.read };
}

/** Runs argv to completion (bounded), collecting its output. */
function runToEnd(argv, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const kernels = guestKernels();
const state = privateVmrunState();
const { writeBusyboxLayout } = await importTsBundle(join(ROOT, 'test', 'e2e', 'helpers', 'busybox-image.ts'));
const { prepareRun } = await import(join(ROOT, 'dist', 'run', 'run-image.js'));
const { findVirtiofsd } = await import(join(ROOT, 'dist', 'machine', 'volumes.js'));
const { addon } = await import(join(ROOT, 'dist', 'native', 'addon.js'));

try {
  const layout = join(state.root, 'layout');
  await writeBusyboxLayout(layout, 'v1', { applets: ['dd', 'tar', 'sync', 'mkdir', 'cp'] });
  const image = `oci:${layout}:v1`;
  const share = join(state.root, 'share');
  mkdirSync(share);
  // The host's files: the file to read (1 MiB blocks, each stamped), and the tarball.
  const block = Buffer.alloc(1 << 20, 'vmrun-volume ');
  const file = Buffer.alloc(FILE_MIB << 20);
  for (let i = 0; i < FILE_MIB; i++) {
    block.copy(file, i << 20);
    file.writeUInt32LE(i, i << 20);
  }
  writeFileSync(join(share, 'host-file'), file);
  const tree = join(state.root, 'small');
  for (let d = 0; d < 50; d++) {
    mkdirSync(join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < SMALL_FILES / 50; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(4));
  }
  const tar = spawnSync('tar', ['-cf', join(share, 'small.tar'), '-C', tree, '.']);
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const resetShare = () => {
    rmSync(join(share, 'written'), { force: true });
    rmSync(join(share, 'untar'), { recursive: true, force: true });
  };

  // vmrun: the CLI, as a user runs it.
  const vmrunRun = async () => {
    resetShare();
    const argv = [process.execPath, join(ROOT, 'bin', 'run.js'), 'run', '-q', '-m', `${MEMORY_MIB}M`, '--network', 'none', '--kernel', kernels.vmlinux, '-v', `${share}:/vol`, image, 'sh', '-c', SCRIPT];
    const r = await runToEnd(argv, state.env);
    if (r.status !== 0) throw new Error(`vmrun run: status ${r.status}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr}`);
    return steps(r.stdout, 'vmrun');
  };

  // QEMU: the same initramfs and run configuration, the same virtiofsd and options.
  const prepared = await prepareRun({ image, kernel: kernels.vmlinux, command: ['sh', '-c', SCRIPT], memory: `${MEMORY_MIB}M`, network: { mode: 'none' }, volumes: [{ hostDir: share, guestDir: '/vol' }] });
  const initrd = join(state.root, 'qemu-initrd.cpio');
  writeFileSync(initrd, Buffer.concat(prepared.boot.initrd.map((p) => {
    const b = readFileSync(p);
    return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  })));
  prepared.cleanup();
  const virtiofsd = findVirtiofsd();
  const qemuRun = async () => {
    resetShare();
    const socket = join(state.root, 'virtiofsd.sock');
    rmSync(socket, { force: true });
    // vmrun's options, with a socket path instead of an inherited fd; in a user
    // namespace of its own with the caller as root, as vmrun runs it.
    const args = addon().virtiofsdArguments(virtiofsd, share).slice(1).filter((a) => a !== '--fd=3');
    const daemon = spawn('unshare', ['--user', '--map-root-user', '--mount', '--', virtiofsd, `--socket-path=${socket}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let daemonErr = '';
    daemon.stderr.on('data', (d) => (daemonErr += d.toString()));
    try {
      const until = Date.now() + 60_000;
      while (!existsSync(socket)) {
        if (daemon.exitCode !== null || Date.now() > until) throw new Error(`virtiofsd for QEMU did not start: ${daemonErr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const argv = [
        QEMU, '-machine', 'microvm,acpi=off,memory-backend=mem', '-enable-kvm', '-cpu', 'host', '-m', `${MEMORY_MIB}M`,
        '-object', `memory-backend-memfd,id=mem,size=${MEMORY_MIB}M,share=on`,
        '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
        '-kernel', kernels.bzImage, '-initrd', initrd, '-append', prepared.boot.cmdline,
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=4',
        '-global', 'virtio-mmio.force-legacy=false',
        '-chardev', `socket,id=vfs,path=${socket}`, '-device', 'vhost-user-fs-device,chardev=vfs,tag=vmrun0',
      ];
      const r = await runToEnd(argv, process.env);
      if (guestStatusOf(r.status ?? 0) !== 0) throw new Error(`QEMU: exit ${r.status}\nconsole: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr}`);
      return steps(r.stdout, 'QEMU');
    } finally {
      daemon.kill('SIGKILL');
    }
  };

  const times = { vmrun: [], qemu: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const [name, sample] of [['vmrun', vmrunRun], ['qemu', qemuRun]]) {
      const s = await sample();
      process.stderr.write(`bench/volumes.e2e.js: ${name} ${i + 1}/${RUNS}: write ${round(s.write)} ms, read ${round(s.read)} ms, untar ${round(s.untar)} ms\n`);
      times[name].push(s);
    }
  }
  const anchor = 'QEMU microvm + vhost-user-fs-device, same virtiofsd and options, same kernel and initramfs';
  const metrics = [
    ['write', `sequential write of ${FILE_MIB} MiB into a volume (dd bs=1M conv=fsync)`],
    ['read', `sequential read of a ${FILE_MIB} MiB host file from a volume (dd bs=1M, first read)`],
    ['untar', `untar of ${SMALL_FILES} small files into a volume, then sync`],
  ];
  for (const [key, what] of metrics) {
    const value = median(times.vmrun.map((t) => t[key]));
    const base = median(times.qemu.map((t) => t[key]));
    report({ bench: 'volumes', metric: what, value: round(value), unit: 'ms', anchor: { what: anchor, value: round(base), unit: 'ms' }, ratio: round(value / base), runs: RUNS, where });
  }
} finally {
  state.cleanup();
}
