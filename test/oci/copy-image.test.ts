import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { copyImage, type Digest, type ImageStore } from '../../src/oci/index.js';
import type { ImageSource } from '../../src/oci/image-source.js';
import { Limits } from '../../src/oci/limits.js';
import { useTempHome } from './test-env.js';

let store: ImageStore;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ store, cleanup } = await useTempHome());
});
afterAll(async () => {
  await cleanup();
});

const sha256 = (b: Buffer | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * A source whose manifest declares a config larger than vmrun accepts, and which
 * would serve that config (zero bytes, endlessly) if asked: it counts what it sent.
 */
function oversizedConfigSource(configSize: number): ImageSource & { served: () => number } {
  let served = 0;
  const config = sha256('not the real config');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configSize },
      layers: [],
    }),
  );
  return {
    name: 'test/oversized-config:latest',
    fetchManifest: async () => ({ bytes: manifest, contentType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest) }),
    blobSource: () => async (offset) => {
      let left = configSize - offset;
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const stream = new Readable({
        read() {
          if (left <= 0) return this.push(null);
          const n = Math.min(left, chunk.length);
          left -= n;
          served += n;
          this.push(chunk.subarray(0, n));
        },
      });
      return { stream, offset };
    },
    close: async () => {},
    served: () => served,
  };
}

describe('copying an image', () => {
  it('refuses a config larger than the limit before downloading any of it', async () => {
    const source = oversizedConfigSource(Limits.configBytes + 1);
    const err = await copyImage(source, store).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVmrunError(err, 'image'), `expected an image error, got ${String(err)}`).toBe(true);
    expect((err as Error).message).toMatch(/test\/oversized-config:latest: config is larger than 16777216 bytes/);
    expect(source.served()).toBe(0);
  });
});
