// @ts-check
/**
 * Debian's kernel package for L1: which one (linux-image-amd64's dependency, or
 * VMRUN_L1_KERNEL_PACKAGE), its version, and fetching it with apt-get download and
 * dpkg-deb -x, never installing it on the host.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';

/** The meta package whose dependency names the current kernel package. */
const KERNEL_META_PACKAGE = 'linux-image-amd64';

/**
 * A kernel package and its candidate version, e.g. linux-image-6.1.0-56-amd64 6.1.192-2.
 * @typedef {{ name: string, version: string }} KernelPackage
 */

/** apt's package lists; its mtime changes whenever apt-get update changes a list. */
const APT_LISTS_DIR = '/var/lib/apt/lists';

/**
 * resolveKernelPackage, remembered in `memoFile` until apt's lists or the pin
 * change: apt-cache costs most of a second, on every harness run otherwise.
 * @param {string} memoFile
 * @returns {KernelPackage}
 */
export function resolveKernelPackageCached(memoFile) {
  let stamp;
  try {
    stamp = `${statSync(APT_LISTS_DIR).mtimeMs} ${process.env.VMRUN_L1_KERNEL_PACKAGE ?? ''}`;
  } catch {
    return resolveKernelPackage();
  }
  try {
    const memo = JSON.parse(readFileSync(memoFile, 'utf8'));
    if (memo.stamp === stamp && typeof memo.name === 'string' && typeof memo.version === 'string') {
      return { name: memo.name, version: memo.version };
    }
  } catch {
    // no memo yet, or an unreadable one: ask apt
  }
  const pkg = resolveKernelPackage();
  writeFileSync(memoFile, `${JSON.stringify({ stamp, ...pkg })}\n`);
  return pkg;
}

/**
 * The kernel package to boot as L1 and its version, from apt's package lists.
 * @returns {KernelPackage}
 */
export function resolveKernelPackage() {
  const aptCache = requireCommand('apt-cache');
  const pinned = process.env.VMRUN_L1_KERNEL_PACKAGE;
  const query = pinned || KERNEL_META_PACKAGE;
  let show;
  try {
    show = runTool(aptCache, ['show', '--no-all-versions', query]);
  } catch (e) {
    const origin = pinned ? ' (VMRUN_L1_KERNEL_PACKAGE)' : '';
    throw new HarnessError(`package ${query}${origin} is unknown to apt; run: apt-get update`, { cause: e });
  }
  if (pinned) {
    const version = /^Version:\s*(\S+)/m.exec(show)?.[1];
    if (!version) throw new HarnessError(`apt-cache show ${pinned} printed no Version`);
    return { name: pinned, version };
  }
  // One query answers both: the meta package depends on "linux-image-X (= version)".
  const dependency = /^Depends:.*?\b(linux-image-[^\s,()]+) \(= ([^)\s]+)\)/m.exec(show);
  if (!dependency?.[1] || !dependency[2]) {
    throw new HarnessError(`apt-cache show ${KERNEL_META_PACKAGE} names no "linux-image-... (= version)" dependency`);
  }
  return { name: dependency[1], version: dependency[2] };
}

/**
 * Downloads `pkg` into `workDir` and extracts it to `workDir/root`; returns the
 * kernel release (e.g. 6.1.0-56-amd64) and the paths of its vmlinuz and modules.
 * @param {KernelPackage} pkg
 * @param {string} workDir
 * @returns {{ release: string, vmlinuz: string, modulesDir: string }}
 */
export function fetchKernelPackage(pkg, workDir) {
  const aptGet = requireCommand('apt-get');
  const dpkgDeb = requireCommand('dpkg-deb');
  try {
    runTool(aptGet, ['download', `${pkg.name}=${pkg.version}`], { cwd: workDir, timeoutMs: 600_000 });
  } catch (e) {
    throw new HarnessError(
      `could not download the L1 kernel: apt-get download ${pkg.name}=${pkg.version} failed`,
      { detail: e instanceof HarnessError ? e.detail : String(e), cause: e },
    );
  }
  const deb = readdirSync(workDir).find((f) => f.startsWith(`${pkg.name}_`) && f.endsWith('.deb'));
  if (!deb) throw new HarnessError(`apt-get download ${pkg.name} left no .deb in ${workDir}`);
  const root = join(workDir, 'root');
  runTool(dpkgDeb, ['-x', join(workDir, deb), root], { timeoutMs: 300_000 });
  const release = readdirSync(join(root, 'lib/modules'))[0];
  if (!release) throw new HarnessError(`${deb} holds no lib/modules/<release> directory`);
  return {
    release,
    vmlinuz: join(root, 'boot', `vmlinuz-${release}`),
    modulesDir: join(root, 'lib/modules', release),
  };
}
