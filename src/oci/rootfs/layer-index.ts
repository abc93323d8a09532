import { readFile } from 'node:fs/promises';
import { VmrunError } from '../../errors.js';
import { splitDigest, type Digest } from '../digest.js';
import { Limits } from '../limits.js';
import type { ImageStore } from '../store/image-store.js';
import { writeFileAtomic } from '../../host/atomic-file.js';
import { diffIdHash, readLayer, type LayerHeader } from './layer-reader.js';

/** 2: extended attribute values are binary strings (pax-xattrs.ts); 1 had them UTF-8 decoded. */
const INDEX_FORMAT = 2;

/**
 * The tar headers of a stored layer, in order, without contents. Computed once by
 * reading the whole layer (checking its uncompressed digest against the config's
 * diff_id on the way) and cached beside the blob, so assembling a rootfs reads each
 * layer's contents only once.
 */
export async function layerIndex(store: ImageStore, layer: Digest, diffId: Digest, label: string): Promise<LayerHeader[]> {
  const cachePath = store.layerIndexPath(layer);
  const cached = await readFile(cachePath, 'utf8').catch(() => undefined);
  if (cached !== undefined) {
    try {
      const doc = JSON.parse(cached) as { format?: number; diffId?: string; headers?: LayerHeader[] };
      if (doc.format === INDEX_FORMAT && doc.diffId === diffId && Array.isArray(doc.headers)) return doc.headers;
    } catch {
      // A damaged cache is rebuilt below.
    }
  }
  if (!(await store.hasBlob(layer))) throw new VmrunError('not-found', `${label}: blob ${layer} is missing from the store (pull the image again)`);
  const hash = diffIdHash(splitDigest(diffId).algorithm);
  const headers: LayerHeader[] = [];
  for await (const { header } of readLayer(store.blobPath(layer), label, hash)) {
    if (headers.length >= Limits.entries) throw new VmrunError('image', `${label}: more than ${Limits.entries} entries`);
    headers.push(header);
  }
  const actual = `${splitDigest(diffId).algorithm}:${hash.digest('hex')}`;
  if (actual !== diffId) {
    throw new VmrunError('digest', `${label}: uncompressed content has digest ${actual}, but the image config's diff_id is ${diffId}`);
  }
  await writeFileAtomic(cachePath, JSON.stringify({ format: INDEX_FORMAT, diffId, headers }));
  return headers;
}
