import { VmrunError } from '../../errors.js';
import { Limits } from '../limits.js';
import { entryPathComponents } from './entry-path.js';
import type { FileMetadata, RootfsEntryType } from './entry.js';
import type { LayerHeader } from './layer-reader.js';

/** The metadata of a file-system object; hardlinked paths share one Inode. */
export interface Inode extends FileMetadata {
  type: Exclude<RootfsEntryType, 'hardlink'>;
  /** For regular files with content: which layer and which entry (ordinal) holds the bytes. */
  source?: { layer: number; ordinal: number };
}

/** A name in the tree. Directories have children. */
export interface TreeNode {
  name: string;
  parent: TreeNode | undefined;
  inode: Inode;
  children?: Map<string, TreeNode>;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Directories a layer implies but does not list get these defaults. */
function implicitDir(): Inode {
  return { type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 };
}

const TYPE_MAP: Record<Exclude<LayerHeader['type'], 'link'>, Inode['type']> = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  'character-device': 'char-device',
  'block-device': 'block-device',
  fifo: 'fifo',
};

/**
 * The union of an image's layers, built from their tar headers alone: whiteouts
 * (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) remove lower-layer content,
 * later entries replace earlier ones, writes through symlinks are resolved inside
 * the root (and rejected if they would leave it), hardlinks share an inode.
 */
export class RootfsTree {
  readonly root: TreeNode = { name: '', parent: undefined, inode: implicitDir(), children: new Map() };
  private entries = 0;

  /** Applies one layer's headers on top of what is there. `label` names the layer in errors. */
  applyLayer(layer: number, headers: readonly LayerHeader[], label: string): void {
    const parsed = headers.map((h, ordinal) => {
      const where = `${label} entry ${ordinal} "${h.name.slice(0, 200)}"`;
      return { h, ordinal, where, parts: entryPathComponents(h.name, where) };
    });
    // Whiteouts hide only lower layers, so apply them before this layer's additions.
    for (const { parts, where } of parsed) {
      const base = parts[parts.length - 1];
      if (base === undefined || !base.startsWith(WHITEOUT)) continue;
      const dir = this.resolveDir(parts.slice(0, -1), false, where);
      if (!dir) continue;
      if (base === OPAQUE) dir.children!.clear();
      else if (!base.startsWith(`${WHITEOUT}${WHITEOUT}`)) dir.children!.delete(base.slice(WHITEOUT.length));
    }
    for (const { h, ordinal, where, parts } of parsed) {
      const base = parts[parts.length - 1];
      if (base === undefined) {
        // The root itself ("./"): take its metadata.
        if (h.type === 'directory') Object.assign(this.root.inode, this.inodeFrom(h, layer, ordinal));
        continue;
      }
      if (base.startsWith(WHITEOUT)) continue;
      if (++this.entries > Limits.entries) throw new VmrunError('image', `${where}: image has more than ${Limits.entries} entries`);
      const dir = this.resolveDir(parts.slice(0, -1), true, where)!;
      const existing = dir.children!.get(base);
      if (h.type === 'directory') {
        if (existing?.children) {
          existing.inode = this.inodeFrom(h, layer, ordinal);
        } else {
          dir.children!.set(base, { name: base, parent: dir, inode: this.inodeFrom(h, layer, ordinal), children: new Map() });
        }
        continue;
      }
      let inode: Inode;
      if (h.type === 'link') {
        const target = this.lookup(entryPathComponents(h.linkname ?? '', `${where} hardlink target`), where);
        if (!target) throw new VmrunError('image', `${where}: hardlink target "${h.linkname}" does not exist`);
        if (target.children) throw new VmrunError('image', `${where}: hardlink target "${h.linkname}" is a directory`);
        if (target === existing) continue;
        inode = target.inode;
      } else {
        inode = this.inodeFrom(h, layer, ordinal);
      }
      dir.children!.set(base, { name: base, parent: dir, inode });
    }
  }

  private inodeFrom(h: LayerHeader, layer: number, ordinal: number): Inode {
    const type = TYPE_MAP[h.type as Exclude<LayerHeader['type'], 'link'>];
    const inode: Inode = { type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, size: type === 'file' ? h.size : 0 };
    if (type === 'symlink') inode.linkname = h.linkname ?? '';
    if (type === 'char-device' || type === 'block-device') {
      inode.devmajor = h.devmajor ?? 0;
      inode.devminor = h.devminor ?? 0;
    }
    if (h.xattrs) inode.xattrs = h.xattrs;
    if (type === 'file' && h.size > 0) inode.source = { layer, ordinal };
    return inode;
  }

  /** Finds a node by path, following symlinks in parent components but not the last one. */
  private lookup(parts: string[], where: string): TreeNode | undefined {
    const dir = this.resolveDir(parts.slice(0, -1), false, where);
    const last = parts[parts.length - 1];
    if (!dir) return undefined;
    return last === undefined ? dir : dir.children!.get(last);
  }

  /**
   * Walks to a directory, following symlinks as the kernel would inside the root.
   * With `create`, missing directories are made (as tar extraction does).
   */
  private resolveDir(parts: readonly string[], create: boolean, where: string, hops = { n: 0 }, start: TreeNode = this.root): TreeNode | undefined {
    let dir = start;
    for (const name of parts) {
      if (name === '.' || name === '') continue;
      if (name === '..') {
        if (!dir.parent) throw new VmrunError('image', `${where}: path goes through a symlink that leaves the image root`);
        dir = dir.parent;
        continue;
      }
      let child = dir.children!.get(name);
      if (!child) {
        if (!create) return undefined;
        child = { name, parent: dir, inode: implicitDir(), children: new Map() };
        dir.children!.set(name, child);
      }
      if (child.inode.type === 'symlink' && !child.children) {
        if (++hops.n > Limits.symlinkHops) throw new VmrunError('image', `${where}: more than ${Limits.symlinkHops} symlinks while resolving the path`);
        const target = child.inode.linkname ?? '';
        const from = target.startsWith('/') ? this.root : dir;
        const resolved = this.resolveDir(target.split('/'), create, where, hops, from);
        if (!resolved) return undefined;
        child = resolved;
      }
      if (!child.children) {
        throw new VmrunError('image', `${where}: parent "${name}" is a ${child.inode.type}, not a directory`);
      }
      dir = child;
    }
    return dir;
  }

  /** Every path in the tree (except the root) in sorted depth-first order: parents before children. */
  *walk(): Generator<{ path: string; node: TreeNode }> {
    const stack: { prefix: string; node: TreeNode }[] = [];
    const push = (prefix: string, dir: TreeNode) => {
      const names = [...dir.children!.keys()].sort(compareBytes).reverse();
      for (const n of names) stack.push({ prefix: prefix === '' ? n : `${prefix}/${n}`, node: dir.children!.get(n)! });
    };
    push('', this.root);
    while (stack.length > 0) {
      const { prefix, node } = stack.pop()!;
      yield { path: prefix, node };
      if (node.children) push(prefix, node);
    }
  }
}

/** Byte-wise string order (what tar and cpio consumers expect), independent of locale. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
