// @ts-check
/**
 * A set of Debian packages extracted (apt-get download + dpkg-deb -x, never installed)
 * into a harness cache directory keyed by every version: how the arm64 QEMU
 * (arm64-qemu.js) and the x86 L1's QEMU (x86-qemu.js) are staged.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishCachedDir } from './arm64-userland.js';
import { downloadAndExtract } from './kernel-package.js';

/**
 * The cache directory `<cacheDir>/<prefix>-<key>` holding `versions`' packages under
 * `subdir`, staged first if missing (published whole, with a manifest of the versions).
 * @param {{
 *   cacheDir: string,
 *   prefix: string,
 *   layoutVersion: number,
 *   versions: Record<string, string>,
 *   subdir: string,
 *   spec: (pkg: string, version: string) => string,
 *   what: string,
 *   log: (line: string) => void,
 * }} options `spec` gives apt-get download's argument; `what` names it in the log line
 * @returns {{ dir: string, root: string, built: boolean }}
 */
export function ensureStagedPackages({ cacheDir, prefix, layoutVersion, versions, subdir, spec, what, log }) {
  const key = createHash('sha256').update(JSON.stringify({ LAYOUT_VERSION: layoutVersion, versions })).digest('hex').slice(0, 12);
  const dir = join(cacheDir, `${prefix}-${key}`);
  const root = join(dir, subdir);
  if (existsSync(join(dir, 'manifest.json'))) return { dir, root, built: false };
  log(`staging ${what} in ${dir}`);
  publishCachedDir(cacheDir, dir, (stagedDir, workDir) => {
    mkdirSync(join(stagedDir, subdir));
    for (const [pkg, version] of Object.entries(versions)) downloadAndExtract(spec(pkg, version), workDir, join(stagedDir, subdir));
    writeFileSync(join(stagedDir, 'manifest.json'), `${JSON.stringify({ packages: versions }, null, 2)}\n`);
  });
  return { dir, root, built: true };
}
