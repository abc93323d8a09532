/** Manifests, indexes and image configs (src/oci/manifest.ts), then platform selection from an index. */
import { parseImageConfig, parseManifestDocument, selectPlatform } from '../../src/oci/manifest.js';
import { refusalsAllowed, type FuzzTarget } from './target.js';

const CONTENT_TYPES = [
  undefined,
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'text/html',
];

export default {
  name: 'manifest',
  async run(data) {
    // The first byte picks the content type the registry claimed.
    const contentType = CONTENT_TYPES[(data[0] ?? 0) % CONTENT_TYPES.length];
    const body = data.subarray(1);
    await refusalsAllowed(() => {
      const doc = parseManifestDocument(body, contentType, 'fuzz manifest');
      if (doc.kind === 'index') selectPlatform(doc.index, { os: 'linux', architecture: 'amd64' }, 'fuzz index');
    });
    await refusalsAllowed(() => parseImageConfig(body, 'fuzz config'));
  },
} satisfies FuzzTarget;
