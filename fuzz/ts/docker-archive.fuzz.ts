/**
 * `docker save` archives (src/oci/sources/docker-archive.ts): the outer tar (plain
 * or gzip), manifest.json, symlinked members, configs, and the layers' compression,
 * loaded into a scratch image store.
 */
import { join } from 'node:path';
import { loadDockerArchive } from '../../src/oci/sources/docker-archive.js';
import { ImageStore } from '../../src/oci/store/image-store.js';
import { refusalsAllowed, scratchDir, scratchFile, type FuzzTarget } from './target.js';

let store: Promise<ImageStore> | undefined;

export default {
  name: 'docker-archive',
  async run(data) {
    store ??= ImageStore.open(join(scratchDir(), 'home'));
    const s = await store;
    await refusalsAllowed(() => loadDockerArchive(s, scratchFile('archive.tar', data), { maxExtractedBytes: 64 << 20 }));
  },
} satisfies FuzzTarget;
