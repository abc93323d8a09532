/**
 * `vmrun run`: shared by the oclif command and the start-up fast path (a run's
 * latency is the product; oclif's own loading costs several Node start-ups).
 */
import { VmrunError } from '../errors.js';
import { parseSize } from '../units.js';
import { parseNetworkMode, parsePublishList } from '../network/index.js';
import { parseDiskFlag } from '../machine/disks.js';
import { parseMountFlag, parseVolumeFlag } from '../machine/volumes.js';
import { ProgressRenderer } from '../oci/progress-renderer.js';
import type { RootfsMode } from '../run/rootfs-choice.js';
import type { RunImageOptions } from '../run/run-image.js';
import type { RunStart } from '../run/image-run.js';
import type { FlagSpec } from './flag-spec.js';

export const RUN_FLAGS: FlagSpec = {
  env: { type: 'string', char: 'e', multiple: true, description: 'set an environment variable (KEY=VAL, or KEY to pass the host\'s value)' },
  'env-file': { type: 'string', multiple: true, description: 'read environment variables from a file' },
  workdir: { type: 'string', char: 'w', description: 'working directory inside the guest' },
  user: { type: 'string', char: 'u', description: 'user: name|uid[:group|gid]' },
  'group-add': { type: 'string', multiple: true, description: 'additional group' },
  entrypoint: { type: 'string', description: 'override the image\'s entrypoint' },
  hostname: { type: 'string', description: 'guest hostname' },
  memory: { type: 'string', char: 'm', default: '256M', description: 'guest memory, like 256M or 1G' },
  cpus: { type: 'string', default: '1', description: 'number of vCPUs' },
  interactive: { type: 'boolean', char: 'i', description: 'keep standard input open to the workload' },
  tty: { type: 'boolean', char: 't', description: 'give the workload a terminal' },
  detach: { type: 'boolean', char: 'd', description: 'run in the background and print the VM id' },
  name: { type: 'string', description: 'name of the VM (with -d)' },
  rm: { type: 'boolean', description: 'remove the VM\'s record when it exits (with -d)' },
  disk: { type: 'string', multiple: true, description: 'attach a raw disk image, FILE[:ro]; repeatable: /dev/vda, /dev/vdb... in order (used in place, not copied)' },
  volume: { type: 'string', char: 'v', multiple: true, description: 'share a host directory live with the guest, HOSTDIR:GUESTDIR[:ro]; HOSTDIR absolute and existing; repeatable (virtio-fs, docs/volumes.md)' },
  mount: { type: 'string', multiple: true, description: 'share a host directory, type=bind,src=HOSTDIR,dst=GUESTDIR[,readonly]; repeatable' },
  rootfs: { type: 'string', default: 'auto', description: 'root filesystem: initramfs (in RAM), block (read-only disk + tmpfs overlay; keeps xattrs), or auto (block above 64 MiB or with xattrs)' },
  kernel: { type: 'string', description: 'Linux kernel to boot (default: the one scripts/setup.sh built; env VMRUN_KERNEL)' },
  platform: { type: 'string', description: 'platform to pull, os/arch[/variant]' },
  timeout: { type: 'string', description: 'stop the guest after this many seconds (exit 125)' },
  debug: { type: 'boolean', description: 'show the guest kernel\'s messages (boots cold)' },
  quiet: { type: 'boolean', char: 'q', description: 'no pull progress' },
  network: {
    type: 'string',
    default: 'user',
    description: 'user: the guest reaches what the host reaches, and the host\'s 127.0.0.1 as host.vmrun.internal (10.0.2.2); host-loopback: only the host\'s 127.0.0.1; none: only lo',
  },
  publish: {
    type: 'string',
    char: 'p',
    multiple: true,
    description: 'publish a guest port: [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]; HOSTIP defaults to 127.0.0.1 (give 0.0.0.0 to listen on every address)',
  },
  dns: { type: 'string', description: 'relay the guest\'s DNS queries to this resolver on the host, IP[:PORT] (default: the host\'s resolvers)' },
  cold: { type: 'boolean', description: 'boot the guest even if a booted template of this image exists, and make none (see vmrun template ls)' },
  'kvm-device': { type: 'string', default: '/dev/kvm', hidden: true, description: 'KVM device' },
};

type FlagValues = Record<string, string | boolean | string[] | undefined>;
const ROOTFS_MODES: readonly RootfsMode[] = ['auto', 'initramfs', 'block'];

function positiveInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new VmrunError('usage', `${flag} ${JSON.stringify(value)} is not a positive integer`);
  return Number(value);
}

/** Runs `vmrun run` with parsed flags; returns the process's exit status. */
export async function runAction(image: string, command: string[], f: FlagValues, log: (line: string) => void): Promise<number> {
  const str = (k: string): string | undefined => f[k] as string | undefined;
  const list = (k: string): string[] | undefined => f[k] as string[] | undefined;
  const flag = (k: string): boolean => f[k] === true;
  if (str('name') && !flag('detach')) throw new VmrunError('usage', '--name needs -d');
  if (flag('detach') && (flag('interactive') || flag('tty'))) throw new VmrunError('usage', '-d cannot be combined with -i or -t (use vmrun attach)');
  const rootfs = (str('rootfs') ?? 'auto') as RootfsMode;
  if (!ROOTFS_MODES.includes(rootfs)) throw new VmrunError('usage', `--rootfs ${JSON.stringify(rootfs)} is not one of ${ROOTFS_MODES.join(', ')}`);
  const timeout = positiveInteger(str('timeout'), '--timeout');
  const network = {
    mode: parseNetworkMode(str('network') ?? 'user'),
    publish: parsePublishList(list('publish') ?? []),
    ...(str('dns') !== undefined ? { dns: str('dns') } : {}),
  };
  if (network.mode === 'none' && (network.publish.length > 0 || network.dns !== undefined)) {
    throw new VmrunError('usage', '--network none cannot be combined with -p or --dns');
  }
  const progress = new ProgressRenderer(process.stderr, flag('quiet') ? 'quiet' : undefined);
  const options: RunImageOptions = {
    image,
    command,
    env: list('env'),
    envFiles: list('env-file'),
    workdir: str('workdir'),
    user: str('user'),
    groupAdd: list('group-add'),
    entrypoint: str('entrypoint'),
    hostname: str('hostname'),
    tty: flag('tty'),
    interactive: flag('interactive'),
    rows: flag('tty') ? process.stdout.rows : undefined,
    cols: flag('tty') ? process.stdout.columns : undefined,
    memory: parseSize(str('memory') ?? '256M', '--memory'),
    cpus: positiveInteger(str('cpus') ?? '1', '--cpus'),
    kernel: str('kernel'),
    platform: str('platform'),
    debug: flag('debug'),
    kvmDevice: str('kvm-device'),
    network,
    onProgress: progress.listener,
    disks: (list('disk') ?? []).map(parseDiskFlag),
    volumes: [...(list('volume') ?? []).map(parseVolumeFlag), ...(list('mount') ?? []).map(parseMountFlag)],
    rootfs,
  };
  if (flag('detach')) {
    // Loaded only here: the foreground path stays small for start-up time.
    const [{ startDetached }, { prepareRun }] = await Promise.all([import('../vmhost/index.js'), import('../run/run-image.js')]);
    const run = await prepareRun(options);
    progress.finish();
    const vm = await startDetached(
      { machine: { kind: 'boot', options: run.boot }, timeoutSeconds: timeout, removeOnExit: flag('rm'), guestAgent: run.guestAgent },
      { name: str('name'), origin: 'run', image, memory: Number(options.memory), cpus: options.cpus ?? 1 },
    );
    log(vm.id);
    return 0;
  }
  const { startImageRun } = await import('../run/image-run.js');
  // A Linux guest's console carries only kernel messages (--debug shows them) and
  // vmrun-init's own failures: stderr. A Hermit guest's console is its output.
  const run = await startImageRun({ ...options, cold: flag('cold'), kernelLogFd: 2, consoleFd: 1, consoleInput: flag('interactive') || flag('tty') });
  progress.finish();
  if (process.env.VMRUN_TRACE === '1') traceStart(run.start);
  const { machine, workload } = run;
  if (!workload) {
    const { runToExit } = await import('./console.js');
    return runToExit(machine, { interactive: flag('interactive') || flag('tty'), timeoutSeconds: timeout });
  }
  const { runWorkloadToExit } = await import('./workload-stdio.js');
  return runWorkloadToExit({ machine, workload }, { interactive: flag('interactive'), tty: flag('tty'), timeoutSeconds: timeout });
}

/** VMRUN_TRACE=1: how the guest started and what each step took, on stderr. */
function traceStart(start: RunStart): void {
  const how =
    start.kind === 'template'
      ? `restored template ${start.template?.slice(0, 12)}`
      : start.templateSaved
        ? `booted; saved template ${start.template?.slice(0, 12)}`
        : `booted (no template: ${start.coldReason ?? 'another run is making it'})`;
  process.stderr.write(`vmrun: trace: start: ${how}\n`);
  for (const s of start.steps) process.stderr.write(`vmrun: trace: ${s.ms.toFixed(2).padStart(9)} ms  ${s.step}\n`);
}
