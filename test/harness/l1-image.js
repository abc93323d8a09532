// @ts-check
/**
 * The L1 guest the harness boots: Debian's kernel and an initramfs (static busybox,
 * the KVM and 9p modules, l1-init.sh as /init), built once and cached under
 * $VMRUN_CACHE (or $XDG_CACHE_HOME/vmrun, ~/.cache/vmrun) in a directory keyed by
 * the kernel's and busybox's package versions and the initramfs's own recipe. An
 * aarch64 L1 takes both packages from Debian's arm64 archive (apt-get download).
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HarnessError } from './harness-error.js';
import { installedVersion, missingPackage, requireCommand, runTool } from './host-tools.js';
import { downloadAndExtract, fetchKernelPackage, memoizedByAptLists, resolveKernelPackageCached } from './kernel-package.js';
import { moduleLoadOrder, readModule } from './kernel-modules.js';
import { extractPvhVmlinux } from './kernel-vmlinux.js';

/** The Debian package and path of the static busybox that L1's init runs on. */
const BUSYBOX_PACKAGE = 'busybox-static';
const BUSYBOX_PATH = '/bin/busybox';

const INIT_SCRIPT = new URL('./l1-init.sh', import.meta.url);

/** Bump when the initramfs layout changes in a way the inputs below do not show. */
const IMAGE_LAYOUT_VERSION = 5;

/**
 * An image no run has used for this long is removed (other package versions, other
 * recipes). Not at once: branches with another recipe run side by side on one
 * machine, and must not delete each other's images between build and boot.
 */
const STALE_IMAGE_AGE_MS = 3 * 24 * 3600_000;

/**
 * A ready L1 image: the kernel and initramfs paths, L1's static busybox (the aarch64
 * tests put it in their L2 initramfs), where L1 saves its kernel's symbols on its
 * first boot (for stall reports), and whether this call built it.
 * @typedef {{ kernel: string, kernelSymbols: string, initramfs: string, busybox: string, dir: string, built: boolean, description: string }} L1Image
 */

/** The user cache directory the harness keeps its L1 images in. */
export function harnessCacheDir() {
  const root = process.env.VMRUN_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vmrun');
  return join(root, 'nested-kvm');
}

/**
 * The cached L1 image for the current package versions, built first if missing.
 * @param {(line: string) => void} log progress lines for the user
 * @param {import('./l1-arch.js').L1Arch} arch
 * @returns {L1Image}
 */
export function ensureL1Image(log, arch) {
  requireCommand('cpio');
  const cacheDir = harnessCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const busyboxVersion = arch.busyboxFromHost
    ? installedVersion(BUSYBOX_PACKAGE)
    : memoizedByAptLists(join(cacheDir, `busybox-package-${arch.name}.json`), () => foreignVersion(BUSYBOX_PACKAGE, arch));
  if (arch.busyboxFromHost && (!busyboxVersion || !existsSync(BUSYBOX_PATH))) {
    throw missingPackage(BUSYBOX_PACKAGE, `${BUSYBOX_PACKAGE} is not installed (L1's init needs it)`);
  }
  const memo = `kernel-package-${arch.name}.json`;
  const kernelPkg = resolveKernelPackageCached(join(cacheDir, memo), arch);
  const initScript = readFileSync(INIT_SCRIPT);
  const ROOT_MODULES = arch.rootModules;
  const recipe = createHash('sha256')
    .update(JSON.stringify({ IMAGE_LAYOUT_VERSION, ROOT_MODULES }))
    .update(initScript)
    .digest('hex')
    .slice(0, 12);
  const key = `${kernelPkg.name}_${kernelPkg.version}+busybox_${busyboxVersion}+${recipe}`.replace(/[^\w.+-]/g, '_');
  const dir = join(cacheDir, key);
  const image = {
    kernel: join(dir, 'kernel'),
    kernelSymbols: join(dir, 'kallsyms'),
    initramfs: join(dir, 'initramfs.cpio'),
    busybox: join(dir, 'busybox'),
    dir,
    built: false,
    description: `${kernelPkg.name} ${kernelPkg.version}, busybox ${busyboxVersion}`,
  };
  const manifest = join(dir, 'manifest.json');
  if (existsSync(manifest)) {
    markUsed(manifest);
    return image;
  }

  log(`building the L1 image (${image.description}) in ${dir}`);
  const workDir = join(cacheDir, `.build-${process.pid}-${Date.now()}`);
  mkdirSync(workDir);
  try {
    const kernel = fetchKernelPackage(kernelPkg, workDir);
    const modules = moduleLoadOrder(kernel.modulesDir, ROOT_MODULES);
    const staged = join(workDir, 'image');
    mkdirSync(staged);
    const pvh = arch.pvhKernel && extractPvhVmlinux(kernel.vmlinuz, join(workDir, 'vmlinux'));
    if (pvh) renameSync(join(workDir, 'vmlinux'), join(staged, 'kernel'));
    else {
      if (arch.pvhKernel) log('the kernel is not an XZ bzImage with a PVH entry; booting the bzImage (slower under TCG)');
      copyFileSync(kernel.vmlinuz, join(staged, 'kernel'));
    }
    let busybox = BUSYBOX_PATH;
    if (!arch.busyboxFromHost) {
      downloadAndExtract(`${BUSYBOX_PACKAGE}:${arch.dpkgArch}=${busyboxVersion}`, workDir, join(workDir, 'busybox-root'));
      busybox = join(workDir, 'busybox-root', BUSYBOX_PATH);
    }
    writeInitramfs(join(workDir, 'initramfs-root'), join(staged, 'initramfs.cpio'), initScript, modules, busybox);
    copyFileSync(busybox, join(staged, 'busybox'));
    chmodSync(join(staged, 'busybox'), 0o755);
    const kernelFormat = pvh ? 'vmlinux (PVH)' : arch.pvhKernel ? 'bzImage' : 'Image';
    writeFileSync(
      join(staged, 'manifest.json'),
      `${JSON.stringify({ kernelPackage: kernelPkg, release: kernel.release, kernelFormat, busyboxVersion, modules: modules.map((m) => m.name) }, null, 2)}\n`,
    );
    publish(staged, dir);
    removeStaleImages(cacheDir, key);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  return { ...image, built: true };
}

/**
 * Writes the initramfs (a newc cpio, uncompressed: unpacking costs nothing then,
 * while gunzip under TCG does): /init, busybox and the modules in load order, all
 * owned by root. It has no /dev/console node (that needs root to create): init
 * mounts devtmpfs and takes its stdio from /dev/console there.
 * @param {string} rootDir an empty staging directory
 * @param {string} output
 * @param {Buffer} initScript
 * @param {import('./kernel-modules.js').KernelModule[]} modules
 * @param {string} busybox the static busybox binary for L1's architecture
 */
function writeInitramfs(rootDir, output, initScript, modules, busybox) {
  const files = {
    init: initScript,
    'bin/busybox': readFileSync(busybox),
    'etc/harness-modules': Buffer.from(modules.map((m) => `${m.name}.ko\n`).join('')),
    ...Object.fromEntries(modules.map((m) => [`lib/modules/${m.name}.ko`, readModule(m.file)])),
  };
  const dirs = ['bin', 'etc', 'lib', 'lib/modules'];
  for (const dir of dirs) mkdirSync(join(rootDir, dir), { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(rootDir, name), data);
  chmodSync(join(rootDir, 'init'), 0o755);
  chmodSync(join(rootDir, 'bin/busybox'), 0o755);
  runTool(requireCommand('cpio'), ['-o', '-H', 'newc', '-R', '0:0', '--quiet', '-F', output], {
    cwd: rootDir,
    input: [...dirs, ...Object.keys(files)].join('\n') + '\n',
  });
}

/**
 * The candidate version of `pkg` for a foreign architecture, from apt's lists.
 * @param {string} pkg
 * @param {import('./l1-arch.js').L1Arch} arch
 */
function foreignVersion(pkg, arch) {
  const query = `${pkg}:${arch.dpkgArch}`;
  let show;
  try {
    show = runTool(requireCommand('apt-cache'), ['show', '--no-all-versions', query]);
  } catch (e) {
    throw new HarnessError(`package ${query} is unknown to apt; run: dpkg --add-architecture ${arch.dpkgArch} && apt-get update`, { cause: e });
  }
  const version = /^Version:\s*(\S+)/m.exec(show)?.[1];
  if (!version) throw new HarnessError(`apt-cache show ${query} printed no Version`);
  return version;
}

/**
 * Moves a finished image into place; if another harness run published the same key
 * first, keeps theirs (same inputs, same content).
 * @param {string} staged
 * @param {string} dir
 */
function publish(staged, dir) {
  try {
    renameSync(staged, dir);
  } catch (e) {
    const code = /** @type {NodeJS.ErrnoException} */ (e).code;
    if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(join(dir, 'manifest.json'))) throw e;
  }
}

/** Records that a run used this image (its manifest's mtime), so pruning keeps it. @param {string} manifest */
function markUsed(manifest) {
  try {
    const now = new Date();
    utimesSync(manifest, now, now);
  } catch {
    // A read-only cache still works; it is only pruned sooner.
  }
}

/**
 * Removes images for older package versions or recipes that no run has used for
 * STALE_IMAGE_AGE_MS, so the cache does not grow with every kernel update.
 * @param {string} cacheDir
 * @param {string} currentKey
 */
function removeStaleImages(cacheDir, currentKey) {
  for (const name of readdirSync(cacheDir)) {
    if (name === currentKey || !name.startsWith('linux-image-')) continue;
    let lastUsedMs = 0;
    try {
      lastUsedMs = statSync(join(cacheDir, name, 'manifest.json')).mtimeMs;
    } catch {
      // No manifest: a leftover; remove it.
    }
    if (Date.now() - lastUsedMs > STALE_IMAGE_AGE_MS) rmSync(join(cacheDir, name), { recursive: true, force: true });
  }
}
