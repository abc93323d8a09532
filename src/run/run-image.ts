/**
 * `vmrun run` as a library call: get the image (pull if needed), turn its flattened
 * root filesystem into a cached initramfs with vmrun-init as PID 1, add a tiny
 * per-run archive with the resolved docker run rules, and boot it with the guest kernel.
 */
import { mkdirSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRootfsTree, ImageStore, parsePlatform, pullImage, resolveImage, streamRootfs, type StoredImage, type ProgressListener } from '../oci/index.js';
import { buildImageInitramfs, buildInitOnlyInitramfs, findCachedImageInitramfs, GUEST_INIT_CMDLINE } from '../initramfs/image-initramfs.js';
import { buildImageDisk, findCachedImageDisk, ROOT_DISK_CMDLINE, ROOT_DISK_SERIAL } from '../blockfs/image-disk.js';
import { cpioEntriesOfRootfs } from '../initramfs/rootfs-entries.js';
import { encodeRunConfig } from '../initramfs/run-config.js';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { vmrunHome } from '../host/paths.js';
import { isVmrunError, VmrunError } from '../errors.js';
import { Machine, type BootOptions } from '../machine/machine.js';
import { checkDisks, defaultDiskSerial, type DiskOptions } from '../machine/disks.js';
import { checkVolumes, findVirtiofsd, volumeTag, type VolumeOptions } from '../machine/volumes.js';
import { chooseRootfs, rootfsFacts, type RootfsMode } from './rootfs-choice.js';
import { resolveRunSpec, type RunFlags, type RunSpec } from './run-spec.js';
import { archKernelArgs, findGuestInit, findGuestKernel, hostGuestArch, type GuestArch } from './guest-kernel.js';
import { findHermitEntrypoint } from './hermit-entrypoint.js';
import { guestNetworkConfig } from '../network/native-config.js';
import type { NetworkOptions } from '../network/options.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Everything `vmrun run` takes besides the console. */
export interface RunImageOptions extends RunFlags {
  /** Image reference: name[:tag], name@digest, oci:PATH[:tag]. */
  image: string;
  memory?: number | string;
  cpus?: number;
  /** Linux kernel to boot (default: the one scripts/setup.sh built). */
  kernel?: string;
  /** Show the guest kernel's messages. */
  debug?: boolean;
  /** --platform os/arch[/variant] when pulling. */
  platform?: string;
  kvmDevice?: string;
  /** Pull progress. */
  onProgress?: ProgressListener;
  /** Default: mode `user`, no published ports, the host's resolvers (docs/networking.md). */
  network?: NetworkOptions;
  /** Disks for the guest, /dev/vda, /dev/vdb... in order. */
  disks?: DiskOptions[];
  /** Host directories shared with the guest (-v), mounted by vmrun-init before the workload starts. */
  volumes?: VolumeOptions[];
  /** Where the image's root filesystem lives: auto (by size and xattrs), initramfs, block. */
  rootfs?: RootfsMode;
  /**
   * The host hands the workload to the guest agent after boot (RUN) instead of
   * vmrun-init starting it from the run configuration: separate output streams, stdin
   * with an end, and a guest that can be saved before any workload (a template).
   */
  workloadFromAgent?: boolean;
  /** Called as each preparation step ends (for start-up traces: VMRUN_TRACE). */
  onStep?: (step: string) => void;
}

/** A run ready to boot: what to boot it with, and what was resolved on the way. */
export interface PreparedRun {
  boot: BootOptions;
  image: StoredImage;
  spec: RunSpec;
  /** Whether the image's initramfs (or root disk) was already cached. */
  initramfsCached: boolean;
  /** Whether the guest runs vmrun's agent (Linux images: vmrun-init starts it), reached over vsock. */
  guestAgent: boolean;
  /** What the root filesystem is: the image in the initramfs, or a read-only disk under an overlay. */
  rootfs: 'initramfs' | 'block';
  /** The per-run archive; remove it once the machine has booted (`cleanup`). */
  cleanup: () => void;
  /** vmrun-init's binary (Linux images), part of what a template is made from. */
  guestInit?: string;
}

/**
 * The hostname a guest whose workload comes over the agent boots with; the run's own
 * arrives with IDENTITY just before the workload, on a cold boot as after a restore.
 */
export const AGENT_RUN_BOOT_HOSTNAME = 'vmrun';

/** Kernel command line of image runs: quiet, reset on panic, vmrun-init as PID 1. */
export function guestCmdline(debug: boolean, arch: GuestArch = hostGuestArch()): string {
  const base = ['console=ttyS0', 'panic=-1', ...archKernelArgs(arch)];
  const verbosity = debug ? ['loglevel=7'] : ['quiet', 'loglevel=1'];
  return [...base, ...verbosity, GUEST_INIT_CMDLINE].join(' ');
}

async function getImage(store: ImageStore, opts: RunImageOptions): Promise<StoredImage> {
  try {
    return await resolveImage(store, opts.image);
  } catch (e) {
    if (!isVmrunError(e, 'not-found')) throw e;
  }
  return pullImage(store, opts.image, {
    ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
}

/** Pulls, builds (or finds) the initramfs, resolves docker's rules; boots nothing yet. */
export async function prepareRun(opts: RunImageOptions): Promise<PreparedRun> {
  // Disks are checked first: a bad --disk fails before anything is pulled or built.
  const disks = (opts.disks ?? []).map((d, i) => ({ ...d, serial: d.serial ?? defaultDiskSerial(i) }));
  checkDisks(disks);
  // Volumes too, and virtiofsd must be there.
  const volumes = checkVolumes(opts.volumes ?? []);
  if (volumes.length > 0) findVirtiofsd();
  const step = opts.onStep ?? (() => {});
  const store = await ImageStore.open(vmrunHome());
  const image = await getImage(store, opts);
  const spec = resolveRunSpec(image.config.config ?? {}, opts);
  step('image and its config');
  // A Hermit application image: its entrypoint is the kernel, booted as is.
  const hermit = await findHermitEntrypoint(store, image, spec);
  step('Hermit check');
  if (hermit && (opts.disks?.length || volumes.length || (opts.rootfs ?? 'auto') !== 'auto')) {
    throw new VmrunError('usage', `${opts.image} is a Hermit application image: --disk, -v/--mount and --rootfs are for Linux guests`);
  }
  if (hermit) {
    return {
      boot: {
        kernel: hermit,
        guestArgs: spec.argv.slice(1),
        guestEnv: spec.env,
        memory: opts.memory,
        cpus: opts.cpus,
        kvmDevice: opts.kvmDevice,
        image: opts.image,
        debug: opts.debug === true,
      },
      image,
      spec,
      initramfsCached: true,
      guestAgent: false,
      rootfs: 'initramfs',
      cleanup: () => {},
    };
  }
  const kernel = findGuestKernel(opts.kernel);
  const init = findGuestInit(ROOT);
  const rootfs = chooseRootfs(opts.rootfs ?? 'auto', rootfsFacts(await buildRootfsTree(store, image)));
  step('root filesystem choice');
  let cached: boolean;
  let initrd: string;
  let cmdline = guestCmdline(opts.debug === true);
  if (rootfs === 'block') {
    // The root disk goes after the user's disks, so theirs are /dev/vda... whatever the image.
    cached = (await findCachedImageDisk(image.record.digest)) !== undefined;
    const disk = await buildImageDisk(image.record.digest, streamRootfs(store, image));
    disks.push({ path: disk, readOnly: true, serial: ROOT_DISK_SERIAL });
    initrd = await buildInitOnlyInitramfs(init);
    cmdline += ` ${ROOT_DISK_CMDLINE}`;
  } else {
    const key = { imageDigest: image.record.digest, initBinaryPath: init };
    cached = (await findCachedImageInitramfs(key)) !== undefined;
    initrd = await buildImageInitramfs(key, cpioEntriesOfRootfs(streamRootfs(store, image)));
  }
  step(rootfs === 'block' ? 'root disk' : 'initramfs');
  const network = opts.network ?? {};
  const guestNetwork = guestNetworkConfig(network);
  // A guest that takes its workload over the agent boots the same for every run of
  // the image (what varies arrives with RUN and IDENTITY): that boot can be a template.
  // Volumes are mounted by vmrun-init before either starts the workload.
  const guestConfig = opts.workloadFromAgent
    ? { argv: [], workloadFromAgent: true, env: [], workdir: '/', user: '', hostname: AGENT_RUN_BOOT_HOSTNAME, tty: false }
    : spec;
  const guestVolumes = volumes.map((v, i) => ({ tag: volumeTag(i), guestDir: v.guestDir, readOnly: v.readOnly }));
  const runArchive = writeRunArchive(encodeRunConfig({
    ...guestConfig,
    ...(guestNetwork ? { network: guestNetwork } : {}),
    ...(guestVolumes.length > 0 ? { volumes: guestVolumes } : {}),
  }));
  step('run archive');
  return {
    boot: {
      kernel,
      initrd: [initrd, runArchive],
      cmdline,
      memory: opts.memory,
      cpus: opts.cpus,
      kvmDevice: opts.kvmDevice,
      image: opts.image,
      network,
      ...(disks.length > 0 ? { disks } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
    },
    image,
    spec,
    initramfsCached: cached,
    guestAgent: true,
    rootfs,
    cleanup: () => unlinkSync(runArchive),
    guestInit: init,
  };
}

/** Boots an image; the returned machine's output is the workload's console. */
export async function runImage(opts: RunImageOptions & { consoleFd?: number; consoleInput?: boolean }): Promise<Machine> {
  const run = await prepareRun(opts);
  try {
    // The kernel and initrds are read into guest memory during boot: the per-run
    // archive can go as soon as boot() returns.
    return Machine.boot({ ...run.boot, consoleFd: opts.consoleFd, consoleInput: opts.consoleInput });
  } finally {
    run.cleanup();
  }
}

/** Per-run archives live in the cache briefly; old ones (from crashed runs) are swept. */
function writeRunArchive(bytes: Uint8Array): string {
  const dir = join(vmrunCacheDir(), 'runs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const f of readdirSync(dir)) {
    try {
      if (statSync(join(dir, f)).mtimeMs < dayAgo) unlinkSync(join(dir, f));
    } catch {
      /* raced with another sweep */
    }
  }
  const path = join(dir, `${randomBytes(8).toString('hex')}.cpio`);
  writeFileSync(path, bytes, { mode: 0o600 });
  return path;
}
