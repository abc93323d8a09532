// @ts-check
/**
 * Debian's kernel package for L1: which one (linux-image-amd64's or, for an aarch64
 * L1, linux-image-arm64's dependency, or VMRUN_L1_KERNEL_PACKAGE), its version, and
 * fetching it with apt-get download and dpkg-deb -x, never installing it on the host.
 * Packages of a foreign architecture (NAME:arm64) need `dpkg --add-architecture
 * arm64 && apt-get update` once.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';

/**
 * A kernel package, its candidate version and Debian architecture, e.g.
 * linux-image-6.1.0-56-amd64 6.1.192-2 amd64.
 * @typedef {{ name: string, version: string, dpkgArch: string }} KernelPackage
 */

/** apt's package lists; its mtime changes whenever apt-get update changes a list. */
const APT_LISTS_DIR = '/var/lib/apt/lists';

/**
 * resolveKernelPackage, remembered in `memoFile` until apt's lists or the pin
 * change: apt-cache costs most of a second, on every harness run otherwise.
 * @param {string} memoFile
 * @param {import('./l1-arch.js').L1Arch} arch
 * @returns {KernelPackage}
 */
export function resolveKernelPackageCached(memoFile, arch) {
  return memoizedByAptLists(memoFile, () => resolveKernelPackage(arch));
}

/**
 * `compute()`'s answer (a JSON value), remembered in `memoFile` until apt's lists or
 * VMRUN_L1_KERNEL_PACKAGE change: apt-cache costs a second or more per query (more for
 * a foreign architecture's lists), on every harness run otherwise.
 * @template T
 * @param {string} memoFile
 * @param {() => T} compute
 * @returns {T}
 */
export function memoizedByAptLists(memoFile, compute) {
  let stamp;
  try {
    stamp = `${statSync(APT_LISTS_DIR).mtimeMs} ${process.env.VMRUN_L1_KERNEL_PACKAGE ?? ''}`;
  } catch {
    return compute();
  }
  try {
    const memo = JSON.parse(readFileSync(memoFile, 'utf8'));
    if (memo.stamp === stamp && memo.value !== undefined) return memo.value;
  } catch {
    // no memo yet, or an unreadable one: ask apt
  }
  const value = compute();
  writeFileSync(memoFile, `${JSON.stringify({ stamp, value })}\n`);
  return value;
}

/**
 * The kernel package to boot as L1 and its version, from apt's package lists.
 * @param {import('./l1-arch.js').L1Arch} arch
 * @returns {KernelPackage}
 */
export function resolveKernelPackage(arch) {
  const aptCache = requireCommand('apt-cache');
  const pinned = process.env.VMRUN_L1_KERNEL_PACKAGE;
  const name = pinned || arch.kernelMetaPackage;
  const query = `${name}:${arch.dpkgArch}`;
  let show;
  try {
    show = runTool(aptCache, ['show', '--no-all-versions', query]);
  } catch (e) {
    const origin = pinned ? ' (VMRUN_L1_KERNEL_PACKAGE)' : '';
    const foreign = arch.name === 'x86_64' ? '' : `dpkg --add-architecture ${arch.dpkgArch} && `;
    const shown = arch.name === 'x86_64' ? name : query;
    throw new HarnessError(`package ${shown}${origin} is unknown to apt; run: ${foreign}apt-get update`, { cause: e });
  }
  if (pinned) {
    const version = /^Version:\s*(\S+)/m.exec(show)?.[1];
    if (!version) throw new HarnessError(`apt-cache show ${query} printed no Version`);
    return { name: pinned, version, dpkgArch: arch.dpkgArch };
  }
  // One query answers both: the meta package depends on "linux-image-X (= version)".
  const dependency = /^Depends:.*?\b(linux-image-[^\s,()]+) \(= ([^)\s]+)\)/m.exec(show);
  if (!dependency?.[1] || !dependency[2]) {
    throw new HarnessError(`apt-cache show ${query} names no "linux-image-... (= version)" dependency`);
  }
  return { name: dependency[1], version: dependency[2], dpkgArch: arch.dpkgArch };
}

/**
 * Downloads `pkg` into `workDir` and extracts it to `workDir/root`; returns the
 * kernel release (e.g. 6.1.0-56-amd64) and the paths of its vmlinuz and modules.
 * @param {KernelPackage} pkg
 * @param {string} workDir
 * @returns {{ release: string, vmlinuz: string, modulesDir: string }}
 */
export function fetchKernelPackage(pkg, workDir) {
  const root = join(workDir, 'root');
  downloadAndExtract(`${pkg.name}:${pkg.dpkgArch}=${pkg.version}`, workDir, root);
  const release = readdirSync(join(root, 'lib/modules'))[0];
  if (!release) throw new HarnessError(`${pkg.name} ${pkg.version} holds no lib/modules/<release> directory`);
  return {
    release,
    vmlinuz: join(root, 'boot', `vmlinuz-${release}`),
    modulesDir: join(root, 'lib/modules', release),
  };
}

/**
 * apt-get download `spec` (NAME:ARCH or NAME:ARCH=VERSION) into `workDir` and
 * dpkg-deb -x it into `root`; a HarnessError naming the package if that fails.
 * @param {string} spec
 * @param {string} workDir
 * @param {string} root
 */
export function downloadAndExtract(spec, workDir, root) {
  const aptGet = requireCommand('apt-get');
  const dpkgDeb = requireCommand('dpkg-deb');
  const name = spec.split(/[:=]/)[0] ?? spec;
  const before = new Set(readdirSync(workDir));
  try {
    runTool(aptGet, ['download', spec], { cwd: workDir, timeoutMs: 600_000 });
  } catch (e) {
    throw new HarnessError(`could not download ${spec} for L1: apt-get download failed`, {
      detail: e instanceof HarnessError ? e.detail : String(e),
      cause: e,
    });
  }
  const deb = readdirSync(workDir).find((f) => !before.has(f) && f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (!deb) throw new HarnessError(`apt-get download ${spec} left no .deb in ${workDir}`);
  runTool(dpkgDeb, ['-x', join(workDir, deb), root], { timeoutMs: 300_000 });
}
