// @ts-check
/**
 * The QEMU that runs the x86_64 L1: Debian's qemu-system-x86 from bookworm-backports
 * (QEMU 10), with its firmware (qemu-system-data's option ROMs, SeaBIOS), staged as
 * arm64-qemu.js stages the arm64 one (apt-get download + dpkg-deb -x, never
 * installed) into a cache directory keyed by every version. Its libraries are the
 * host's: setup.sh installs bookworm's qemu-system-x86, which links the same ones.
 *
 * Why not bookworm's own QEMU 7.2: under multi-threaded TCG, a vCPU could translate a
 * code page while another vCPU patched it and keep that translation after the patch
 * (fixed upstream in QEMU 8.1, "accel/tcg: Always lock pages before translation",
 * deba78709ae8, which Debian's 7.2 lacks). Every static-key flip in L1's kernel is such
 * a patch, and a stale INT3 left by one wedged L1 (docs/testing.md, "The L1 stall").
 *
 *   node test/harness/x86-qemu.js   prints the staged qemu-system-x86_64's path
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';
import { memoizedByAptLists } from './kernel-package.js';
import { harnessCacheDir } from './l1-image.js';
import { ensureStagedPackages } from './staged-packages.js';

/** The apt suite the packages come from. */
export const QEMU_SUITE = 'bookworm-backports';

/** The emulator, its option ROMs (linuxboot, pvh) and the BIOS. */
const PACKAGES = ['qemu-system-x86', 'qemu-system-data', 'seabios'];

/** Bump when the directory's layout changes in a way the versions do not show. */
const LAYOUT_VERSION = 1;

/**
 * A staged QEMU: `qemu` (the binary), `dataArguments` (the -L options that point it at
 * its own firmware rather than the host's) and what it holds.
 * @typedef {{ dir: string, qemu: string, dataArguments: string[], description: string, built: boolean }} StagedQemu
 */

/**
 * The cached x86_64 QEMU for the suite's current package versions, staged first if missing.
 * @param {(line: string) => void} log
 * @returns {StagedQemu}
 */
export function ensureX86Qemu(log) {
  const cacheDir = harnessCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const versions = memoizedByAptLists(join(cacheDir, 'x86-qemu-packages.json'), suiteVersions);
  const description = `qemu-system-x86_64 ${versions['qemu-system-x86']} from ${QEMU_SUITE}`;
  const { dir, root, built } = ensureStagedPackages({
    cacheDir, prefix: 'x86-qemu', layoutVersion: LAYOUT_VERSION, versions, subdir: 'root',
    spec: (pkg, version) => `${pkg}=${version}`, what: `QEMU (${description})`, log,
  });
  const staged = {
    dir,
    qemu: join(root, 'usr/bin/qemu-system-x86_64'),
    dataArguments: ['-L', join(root, 'usr/share/qemu'), '-L', join(root, 'usr/share/seabios')],
    description,
    built,
  };
  const unresolved = missingLibraries(staged.qemu);
  if (unresolved.length) {
    throw new HarnessError(`${staged.qemu} needs libraries this host lacks: ${unresolved.join(', ')}; run scripts/setup.sh (it installs qemu-system-x86, which links them)`);
  }
  return staged;
}

/**
 * Each package's version in QEMU_SUITE, from apt's lists.
 * @returns {Record<string, string>}
 */
function suiteVersions() {
  const text = runTool(requireCommand('apt-cache'), ['madison', ...PACKAGES]);
  /** @type {Record<string, string>} */
  const versions = {};
  // " qemu-system-x86 | 1:10.0.2+ds-2... | http://deb.debian.org/debian bookworm-backports/main amd64 Packages"
  for (const line of text.split('\n')) {
    const [name, version, source] = line.split('|').map((f) => f.trim());
    if (name && version && source && PACKAGES.includes(name) && source.split(/\s+/).includes(`${QEMU_SUITE}/main`) && / (amd64|all) Packages$/.test(source)) {
      versions[name] ??= version;
    }
  }
  const missing = PACKAGES.filter((p) => !versions[p]);
  if (missing.length) {
    throw new HarnessError(`apt knows no ${missing.join(', ')} in ${QEMU_SUITE}; run scripts/setup.sh (it adds ${QEMU_SUITE} to apt's sources)`);
  }
  return versions;
}

/**
 * The libraries `binary` links that the host's loader cannot find.
 * @param {string} binary
 * @returns {string[]}
 */
function missingLibraries(binary) {
  const text = runTool(requireCommand('ldd'), [binary]);
  return [...text.matchAll(/^\s*(\S+) => not found$/gm)].map((m) => m[1] ?? '');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const staged = ensureX86Qemu((line) => process.stderr.write(`x86-qemu: ${line}\n`));
    process.stdout.write(`${staged.qemu}\n`);
  } catch (e) {
    process.stderr.write(`x86-qemu: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(125);
  }
}
