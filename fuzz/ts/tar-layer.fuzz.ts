/**
 * Image layers (src/oci/rootfs/layer-reader.ts): a tar, plain or gzip/zstd
 * compressed, read entry by entry with every content drained, then applied to a
 * rootfs tree (path checks, whiteouts, hardlinks) as the image assembly does.
 */
import { readLayer, type LayerHeader } from '../../src/oci/rootfs/layer-reader.js';
import { RootfsTree } from '../../src/oci/rootfs/rootfs-tree.js';
import { refusalsAllowed, scratchFile, type FuzzTarget } from './target.js';

export default {
  name: 'tar-layer',
  run: (data) =>
    refusalsAllowed(async () => {
      const path = scratchFile('layer', data);
      const headers: LayerHeader[] = [];
      for await (const { header, content } of readLayer(path, 'fuzz layer')) {
        headers.push(header);
        if (content) for await (const _ of content);
      }
      const tree = new RootfsTree();
      tree.applyLayer(0, headers, 'fuzz layer');
      for (const _ of tree.walk());
    }),
} satisfies FuzzTarget;
