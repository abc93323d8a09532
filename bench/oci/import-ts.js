// Loads a TypeScript helper shared with the tests (test/helpers/registry.ts,
// test/oci/image-builder.ts) into this plain-JS bench: esbuild strips the types into a
// cache file under node_modules/.cache, so the helper's bare imports resolve from node_modules.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transform } from 'esbuild';

const cacheDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.cache', 'vmrun-bench');

/** Imports a .ts module (which must import only node builtins and packages). */
export async function importTs(path) {
  const { code } = await transform(await readFile(path, 'utf8'), { loader: 'ts', format: 'esm', target: 'node20' });
  await mkdir(cacheDir, { recursive: true });
  const out = join(cacheDir, `${basename(path, '.ts')}.mjs`);
  await writeFile(out, code);
  return import(pathToFileURL(out).href);
}
