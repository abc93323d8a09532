// Whether an image's program is a Hermit kernel is decided once per image and
// program lookup, then remembered: a later run reads no layer. The test proves it
// by deleting the image's layer blobs after the first answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLayer, writeOciLayout } from '../oci/image-builder.js';
import { REPO } from '../helpers/cli.js';
import { ImageStore, pullImage } from '../../src/oci/index.js';
import { findHermitEntrypoint } from '../../src/run/hermit-entrypoint.js';
import { resolveRunSpec } from '../../src/run/run-spec.js';

const work = mkdtempSync(join(tmpdir(), 'vmrun-hermit-decision-'));
const saved = { home: process.env.VMRUN_HOME, cache: process.env.VMRUN_CACHE };
beforeAll(() => {
  process.env.VMRUN_HOME = join(work, 'home');
  process.env.VMRUN_CACHE = join(work, 'cache');
  execFileSync('make', ['-s', '-C', join(REPO, 'fixtures', 'hermit')]);
});
afterAll(() => {
  for (const [k, v] of [['VMRUN_HOME', saved.home], ['VMRUN_CACHE', saved.cache]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(work, { recursive: true, force: true });
});

/** Stores a one-layer image whose /app/prog holds `content`; returns the store and image. */
async function storeImage(tag: string, content: Buffer) {
  const layout = join(work, `layout-${tag}`);
  const layers = [await buildLayer([{ name: 'app/', type: 'directory' }, { name: 'app/prog', content, mode: 0o755 }])];
  await writeOciLayout(layout, { [tag]: { layers, config: { Entrypoint: ['/app/prog'] } } });
  const store = await ImageStore.open(process.env.VMRUN_HOME!);
  const image = await pullImage(store, `oci:${layout}:${tag}`);
  return { store, image, spec: resolveRunSpec(image.config.config ?? {}, {}) };
}

/** Deletes every layer blob of `image` from the store: reading a layer now fails. */
function dropLayers(store: ImageStore, image: Awaited<ReturnType<typeof storeImage>>['image']): void {
  for (const layer of image.manifest.layers) rmSync(store.blobPath(layer.digest));
}

describe('Hermit entrypoint detection', () => {
  it('remembers that an image is not a Hermit application', async () => {
    const { store, image, spec } = await storeImage('plain', Buffer.from('#!/bin/sh\necho not a kernel\n'.padEnd(200, '#')));
    expect(await findHermitEntrypoint(store, image, spec)).toBeUndefined();
    dropLayers(store, image);
    expect(await findHermitEntrypoint(store, image, spec)).toBeUndefined();
  });

  it('remembers where a Hermit kernel was extracted, and extracts it again if the cache lost it', async () => {
    const kernel = readFileSync(join(REPO, 'fixtures', 'hermit', 'out', 'uhyve-v2.elf'));
    const { store, image, spec } = await storeImage('hermit', kernel);
    const path = await findHermitEntrypoint(store, image, spec);
    expect(path).toBeDefined();
    expect(readFileSync(path!)).toEqual(kernel);
    dropLayers(store, image);
    expect(await findHermitEntrypoint(store, image, spec)).toBe(path);
    // The extracted kernel is gone: the decision no longer holds, and the layers are read again.
    rmSync(path!);
    await expect(findHermitEntrypoint(store, image, spec)).rejects.toThrow();
    expect(readdirSync(join(process.env.VMRUN_CACHE!, 'hermit')).some((f) => f.endsWith('.decision'))).toBe(true);
  });
});
