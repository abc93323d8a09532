import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { loadDockerArchive, type ImageStore } from '../../src/oci/index.js';
import { writeDockerSaveArchive } from './docker-archive.js';
import { tempDir, useTempHome } from './test-env.js';

let store: ImageStore;
let home: string;
let cleanup: () => Promise<void>;
let work: string;
beforeAll(async () => {
  ({ store, home, cleanup } = await useTempHome());
  work = await tempDir();
});
afterAll(async () => {
  await cleanup();
  await rm(work, { recursive: true, force: true });
});

describe('docker save archives', () => {
  it('stop extracting at the bound on total bytes, with nothing left behind', async () => {
    // 3 MiB of zeros per layer: a few KiB gzipped, as a decompression bomb would be.
    const archive = join(work, 'big.tar.gz');
    const zeros = Buffer.alloc(3 << 20);
    await writeDockerSaveArchive(archive, { tags: ['big:1'], gzip: true, layers: [[{ name: 'a', content: zeros }], [{ name: 'b', content: zeros }]] });
    const err = await loadDockerArchive(store, archive, { maxExtractedBytes: 4 << 20 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVmrunError(err, 'image'), `expected an image error, got ${String(err)}`).toBe(true);
    expect((err as Error).message).toMatch(/big\.tar\.gz: extracts to more than 4194304 bytes/);
    expect(readdirSync(join(home, 'images', 'tmp'))).toEqual([]);
    expect(await store.listImages()).toEqual([]);

    // The same archive loads within a larger bound.
    const [image] = await loadDockerArchive(store, archive, { maxExtractedBytes: 16 << 20 });
    expect(image?.record.name).toBe('docker.io/library/big:1');
    expect(existsSync(store.blobPath(image!.manifest.layers[0]!.digest))).toBe(true);
  });
});
