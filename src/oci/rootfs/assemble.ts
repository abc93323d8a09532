import { VmrunError } from '../../errors.js';
import type { StoredImage } from '../copy-image.js';
import type { ImageStore } from '../store/image-store.js';
import type { RootfsEntry, RootfsItem } from './entry.js';
import { layerIndex } from './layer-index.js';
import { readLayer } from './layer-reader.js';
import { RootfsTree, type Inode } from './rootfs-tree.js';

/** A short label for a layer in messages: `layer 2/5 (sha256:0123456789ab)`. */
export function layerLabel(image: StoredImage, i: number): string {
  return `${image.record.name} layer ${i + 1}/${image.manifest.layers.length} (${image.manifest.layers[i]!.digest.slice(0, 19)})`;
}

/** Builds the flattened tree of an image from its (cached) layer indexes. */
export async function buildRootfsTree(store: ImageStore, image: StoredImage): Promise<RootfsTree> {
  const tree = new RootfsTree();
  for (let i = 0; i < image.manifest.layers.length; i++) {
    const label = layerLabel(image, i);
    const headers = await layerIndex(store, image.manifest.layers[i]!.digest, image.config.diffIds[i]!, label);
    tree.applyLayer(i, headers, label);
  }
  return tree;
}

function entryOf(path: string, inode: Inode): RootfsEntry {
  const e: RootfsEntry = { path, type: inode.type, mode: inode.mode, uid: inode.uid, gid: inode.gid, mtime: inode.mtime, size: inode.size };
  if (inode.linkname !== undefined) e.linkname = inode.linkname;
  if (inode.devmajor !== undefined) {
    e.devmajor = inode.devmajor;
    e.devminor = inode.devminor ?? 0;
  }
  if (inode.xattrs) e.xattrs = inode.xattrs;
  return e;
}

/**
 * Streams the flattened root filesystem of a stored image, without unpacking it
 * to disk, in a deterministic order:
 *   1. directories, symlinks, devices, fifos and empty files, sorted by path
 *      (parents before children);
 *   2. files with content, in layer order then tar order (each layer is read
 *      once, and only as far as its last surviving file);
 *   3. hardlinks, sorted by path, each pointing at a path emitted before.
 * Each file's `content` must be consumed before asking for the next item (an
 * unread one is drained).
 */
export async function* streamRootfs(store: ImageStore, image: StoredImage): AsyncGenerator<RootfsItem> {
  const tree = await buildRootfsTree(store, image);
  const primary = new Map<Inode, string>();
  const links: { path: string; inode: Inode }[] = [];
  const wanted = new Map<number, Map<number, { path: string; inode: Inode }>>();

  for (const { path, node } of tree.walk()) {
    const inode = node.inode;
    if (inode.type !== 'directory') {
      if (primary.has(inode)) {
        links.push({ path, inode });
        continue;
      }
      primary.set(inode, path);
      if (inode.source) {
        let perLayer = wanted.get(inode.source.layer);
        if (!perLayer) wanted.set(inode.source.layer, (perLayer = new Map()));
        perLayer.set(inode.source.ordinal, { path, inode });
        continue;
      }
    }
    yield { entry: entryOf(path, inode) };
  }

  for (const layer of [...wanted.keys()].sort((a, b) => a - b)) {
    const perLayer = wanted.get(layer)!;
    // A loop, not Math.max(...keys): a spread of >~125k arguments overflows the stack.
    let last = 0;
    for (const ordinal of perLayer.keys()) if (ordinal > last) last = ordinal;
    let ordinal = 0;
    const label = layerLabel(image, layer);
    for await (const { header, content } of readLayer(store.blobPath(image.manifest.layers[layer]!.digest), label)) {
      const hit = perLayer.get(ordinal);
      if (hit) {
        if (header.size !== hit.inode.size || header.type !== 'file') {
          throw new VmrunError('image', `${label} entry ${ordinal}: layer content differs from its cached index (delete ${store.layerIndexPath(image.manifest.layers[layer]!.digest)})`);
        }
        yield { entry: entryOf(hit.path, hit.inode), content };
      }
      if (ordinal++ >= last) break;
    }
    if (ordinal <= last) throw new VmrunError('image', `${label}: layer ended before entry ${last} its index lists`);
  }

  for (const { path, inode } of links) {
    yield { entry: { ...entryOf(path, inode), type: 'hardlink', size: 0, linkname: primary.get(inode)! } };
  }
}
