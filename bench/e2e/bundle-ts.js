// Loads a TypeScript test helper that imports other TypeScript files (e.g.
// test/e2e/helpers/busybox-image.ts -> test/oci/image-builder.ts) into a plain-JS
// bench: esbuild bundles it with its relative imports (packages stay external, so they
// resolve from node_modules) into a cache file under node_modules/.cache.
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const cacheDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.cache', 'vmrun-bench');

/** Imports a .ts module together with the .ts files it imports. */
export async function importTsBundle(path) {
  await mkdir(cacheDir, { recursive: true });
  const outfile = join(cacheDir, `${basename(path, '.ts')}.bundle.mjs`);
  await build({ entryPoints: [path], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'error' });
  return import(pathToFileURL(outfile).href);
}
