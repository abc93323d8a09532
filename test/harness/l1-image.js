// @ts-check
/**
 * The L1 guest the harness boots: Debian's kernel and an initramfs (static busybox,
 * the KVM and 9p modules, l1-init.sh as /init), built once and cached under
 * $VMRUN_CACHE (or $XDG_CACHE_HOME/vmrun, ~/.cache/vmrun) in a directory keyed by
 * the kernel's and busybox's package versions and the initramfs's own recipe.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { newcArchive, S_IFCHR, S_IFDIR, S_IFREG } from './cpio-newc.js';
import { HarnessError } from './harness-error.js';
import { installedVersion, missingPackage } from './host-tools.js';
import { fetchKernelPackage, resolveKernelPackage } from './kernel-package.js';
import { moduleLoadOrder } from './kernel-modules.js';

/** Modules L1 loads: KVM on (emulated) AMD SVM, and 9p over virtio-pci for the host's /. */
const ROOT_MODULES = ['kvm_amd', 'virtio_pci', '9pnet_virtio', '9p'];

/** The Debian package and path of the static busybox that L1's init runs on. */
const BUSYBOX_PACKAGE = 'busybox-static';
const BUSYBOX_PATH = '/bin/busybox';

const INIT_SCRIPT = new URL('./l1-init.sh', import.meta.url);

/** Bump when the initramfs layout changes in a way the inputs below do not show. */
const IMAGE_LAYOUT_VERSION = 1;

/**
 * A ready L1 image: the kernel and initramfs paths, and whether this call built it.
 * @typedef {{ kernel: string, initramfs: string, dir: string, built: boolean, description: string }} L1Image
 */

/** The user cache directory the harness keeps its L1 images in. */
export function harnessCacheDir() {
  const root = process.env.VMRUN_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vmrun');
  return join(root, 'nested-kvm');
}

/**
 * The cached L1 image for the current package versions, built first if missing.
 * @param {(line: string) => void} log progress lines for the user
 * @returns {L1Image}
 */
export function ensureL1Image(log) {
  const busyboxVersion = installedVersion(BUSYBOX_PACKAGE);
  if (!busyboxVersion || !existsSync(BUSYBOX_PATH)) {
    throw missingPackage(BUSYBOX_PACKAGE, `${BUSYBOX_PACKAGE} is not installed (L1's init needs it)`);
  }
  const kernelPkg = resolveKernelPackage();
  const initScript = readFileSync(INIT_SCRIPT);
  const recipe = createHash('sha256')
    .update(JSON.stringify({ IMAGE_LAYOUT_VERSION, ROOT_MODULES }))
    .update(initScript)
    .digest('hex')
    .slice(0, 12);
  const key = `${kernelPkg.name}_${kernelPkg.version}+busybox_${busyboxVersion}+${recipe}`.replace(/[^\w.+-]/g, '_');
  const cacheDir = harnessCacheDir();
  const dir = join(cacheDir, key);
  const image = {
    kernel: join(dir, 'vmlinuz'),
    initramfs: join(dir, 'initramfs.cpio'),
    dir,
    built: false,
    description: `${kernelPkg.name} ${kernelPkg.version}, busybox ${busyboxVersion}`,
  };
  if (existsSync(join(dir, 'manifest.json'))) return image;

  log(`building the L1 image (${image.description}) in ${dir}`);
  mkdirSync(cacheDir, { recursive: true });
  const workDir = join(cacheDir, `.build-${process.pid}-${Date.now()}`);
  mkdirSync(workDir);
  try {
    const kernel = fetchKernelPackage(kernelPkg, workDir);
    const modules = moduleLoadOrder(kernel.modulesDir, ROOT_MODULES);
    const staged = join(workDir, 'image');
    mkdirSync(staged);
    copyFileSync(kernel.vmlinuz, join(staged, 'vmlinuz'));
    writeFileSync(join(staged, 'initramfs.cpio'), initramfs(initScript, modules));
    writeFileSync(
      join(staged, 'manifest.json'),
      `${JSON.stringify({ kernelPackage: kernelPkg, release: kernel.release, busyboxVersion, modules: modules.map((m) => m.name) }, null, 2)}\n`,
    );
    publish(staged, dir);
    removeStaleImages(cacheDir, key);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  return { ...image, built: true };
}

/**
 * The initramfs: /init, busybox, /dev/console and the modules in load order.
 * @param {Buffer} initScript
 * @param {import('./kernel-modules.js').KernelModule[]} modules
 */
function initramfs(initScript, modules) {
  const dir = (/** @type {string} */ name) => ({ name, mode: S_IFDIR | 0o755 });
  return newcArchive([
    ...['bin', 'sbin', 'dev', 'proc', 'sys', 'host', 'etc', 'lib', 'lib/modules'].map(dir),
    // Without /dev/console the kernel gives init no stdout/stderr.
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(BUSYBOX_PATH) },
    { name: 'init', mode: S_IFREG | 0o755, data: initScript },
    ...modules.map((m) => ({ name: `lib/modules/${m.name}.ko`, mode: S_IFREG | 0o644, data: readFileSync(m.file) })),
    {
      name: 'etc/harness-modules',
      mode: S_IFREG | 0o644,
      data: Buffer.from(modules.map((m) => `${m.name}.ko\n`).join('')),
    },
  ]);
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

/**
 * Removes images for older package versions or recipes, so the cache does not grow
 * with every kernel update.
 * @param {string} cacheDir
 * @param {string} currentKey
 */
function removeStaleImages(cacheDir, currentKey) {
  for (const name of readdirSync(cacheDir)) {
    if (name !== currentKey && name.startsWith('linux-image-')) {
      rmSync(join(cacheDir, name), { recursive: true, force: true });
    }
  }
}
