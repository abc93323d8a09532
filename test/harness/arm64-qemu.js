// @ts-check
/**
 * Debian's arm64 QEMU (qemu-system-aarch64, from the package qemu-system-arm) for the
 * aarch64 L1, where it is the anchor of the arm64 benchmark (bench/arm64.e2e.js): the
 * package and the libraries it links, found by following the packages' Depends from
 * qemu-system-arm through library packages only (what dpkg-shlibdeps wrote there is
 * what the binary links), less what the arm64 userland (arm64-userland.js) already
 * holds, which L1 loads from the usual places. Staged as that module stages the
 * userland (apt-get download + dpkg-deb -x, never installed) into a cache directory
 * keyed by every version. Left out: qemu-system-common and qemu-system-data (helpers,
 * firmware and keymaps: a -kernel boot of `-machine virt` with -nodefaults and no
 * display loads none of them) and the Depends on non-library packages (adduser...).
 *
 *   node test/harness/arm64-qemu.js   prints the staged qemu-system-aarch64's path
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGES as USERLAND_PACKAGES, candidateArm64Versions } from './arm64-userland.js';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';
import { memoizedByAptLists } from './kernel-package.js';
import { harnessCacheDir } from './l1-image.js';
import { ensureStagedPackages } from './staged-packages.js';

/** The package that holds qemu-system-aarch64. */
const QEMU_PACKAGE = 'qemu-system-arm';

/** Bump when the directory's layout changes in a way the versions do not show. */
const LAYOUT_VERSION = 1;

/**
 * A staged QEMU: `qemu` (the arm64 binary), `libraryPath` (LD_LIBRARY_PATH for it:
 * its libraries' directories, searched before the userland's) and what it holds.
 * @typedef {{ dir: string, qemu: string, libraryPath: string, description: string, built: boolean }} Arm64Qemu
 */

/**
 * The cached arm64 QEMU for the current package versions, built first if missing.
 * @param {(line: string) => void} log
 * @returns {Arm64Qemu}
 */
export function ensureArm64Qemu(log) {
  const cacheDir = harnessCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const versions = memoizedByAptLists(join(cacheDir, 'arm64-qemu-packages.json'), () => candidateArm64Versions(qemuPackages()));
  const description = `qemu-system-aarch64 ${versions[QEMU_PACKAGE]} (${Object.keys(versions).length - 1} library packages)`;
  const { dir, root: sysroot, built } = ensureStagedPackages({
    cacheDir, prefix: 'arm64-qemu', layoutVersion: LAYOUT_VERSION, versions, subdir: 'sysroot',
    spec: (pkg, version) => `${pkg}:arm64=${version}`, what: `arm64 QEMU (${description})`, log,
  });
  return {
    dir,
    qemu: join(sysroot, 'usr/bin/qemu-system-aarch64'),
    libraryPath: [join(sysroot, 'lib/aarch64-linux-gnu'), join(sysroot, 'usr/lib/aarch64-linux-gnu')].join(':'),
    description,
    built,
  };
}

/**
 * qemu-system-arm and the library packages it needs, directly or through other
 * libraries, less the userland's: one apt-cache call per level of the graph (a
 * foreign architecture's lists make each call cost a second or more).
 * @returns {string[]}
 */
function qemuPackages() {
  const aptCache = requireCommand('apt-cache');
  const have = new Set(USERLAND_PACKAGES);
  const seen = new Set([QEMU_PACKAGE]);
  let level = [QEMU_PACKAGE];
  while (level.length) {
    let text;
    try {
      text = runTool(aptCache, ['depends', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...level.map((p) => `${p}:arm64`)]);
    } catch (e) {
      throw new HarnessError('arm64 packages are unknown to apt; run: dpkg --add-architecture arm64 && apt-get update', { cause: e });
    }
    /** @type {string[]} */
    const next = [];
    // "  Depends: libfoo1:arm64" (a real package); "<name>" is a virtual one, never a library here.
    for (const m of text.matchAll(/^\s+(?:Pre)?Depends: ([^\s<]+)$/gm)) {
      const name = (m[1] ?? '').replace(/:arm64$/, '');
      if (!/^(lib|zlib)/.test(name) || seen.has(name)) continue;
      seen.add(name);
      next.push(name);
    }
    level = next;
  }
  return [...seen].filter((p) => !have.has(p)).sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const staged = ensureArm64Qemu((line) => process.stderr.write(`arm64-qemu: ${line}\n`));
    process.stdout.write(`${staged.qemu}\n`);
  } catch (e) {
    process.stderr.write(`arm64-qemu: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(125);
  }
}
