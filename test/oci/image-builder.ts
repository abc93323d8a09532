/**
 * Builds test images without network or root: tar layers from a list of entries
 * (any tar the test needs, including hostile ones), compressed as asked, written
 * as an OCI image layout that skopeo can push and vmrun can pull.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';
import { keepXattrBytesInTar } from '../../src/oci/rootfs/pax-xattrs.js';

// PAX xattr values are binary strings here as in vmrun (one char per byte).
keepXattrBytesInTar();

/** One tar entry of a test layer. */
export interface LayerEntrySpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Declared size, when a test wants it to differ from the content. */
  size?: number;
  /** PAX records, e.g. `SCHILY.xattr.security.capability`. */
  pax?: Record<string, string>;
}

/** A built layer blob. */
export interface BuiltLayer {
  blob: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Makes an uncompressed tar from entries. */
export async function makeTar(entries: LayerEntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type: e.type ?? 'file',
        mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: new Date((e.mtime ?? 1_700_000_000) * 1000),
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
        ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
        ...(e.size !== undefined ? { size: e.size } : {}),
        ...(e.pax !== undefined ? { pax: e.pax } : {}),
      };
      if (content) pack.entry(header, content, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Builds a layer blob with the given compression. */
export async function buildLayer(entries: LayerEntrySpec[], compression: 'none' | 'gzip' | 'zstd' = 'gzip'): Promise<BuiltLayer> {
  return layerFromTar(await makeTar(entries), compression);
}

/** Wraps an already-made tar as a layer. */
export function layerFromTar(raw: Buffer, compression: 'none' | 'gzip' | 'zstd' = 'gzip'): BuiltLayer {
  const blob = compression === 'gzip' ? gzipSync(raw) : compression === 'zstd' ? zstdCompress(raw) : raw;
  const mediaType = `application/vnd.oci.image.layer.v1.tar${compression === 'none' ? '' : `+${compression}`}`;
  return { blob, digest: sha256(blob), diffId: sha256(raw), mediaType };
}

/** Runtime config for a test image. */
export interface ConfigSpec {
  architecture?: string;
  os?: string;
  variant?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
}

/** An image to put in a layout. */
export interface ImageSpec {
  layers: BuiltLayer[];
  config?: ConfigSpec;
  /** Override the diff_ids written in the config (to test mismatches). */
  diffIds?: string[];
}

/** A blob written to a layout: returns its descriptor. */
async function putBlob(dir: string, bytes: Buffer, mediaType: string): Promise<{ mediaType: string; digest: string; size: number }> {
  const digest = sha256(bytes);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** Writes an image's blobs into a layout dir and returns its manifest descriptor. */
export async function writeImage(dir: string, image: ImageSpec): Promise<{ mediaType: string; digest: string; size: number }> {
  const { architecture = 'amd64', os = 'linux', variant, ...runtime } = image.config ?? {};
  const config = {
    architecture,
    os,
    ...(variant ? { variant } : {}),
    created: '2024-01-02T03:04:05Z',
    config: runtime,
    rootfs: { type: 'layers', diff_ids: image.diffIds ?? image.layers.map((l) => l.diffId) },
    history: image.layers.map((_, i) => ({ created: '2024-01-02T03:04:05Z', created_by: `test layer ${i}` })),
  };
  const configDesc = await putBlob(dir, Buffer.from(JSON.stringify(config)), 'application/vnd.oci.image.config.v1+json');
  const layers = [];
  for (const l of image.layers) layers.push(await putBlob(dir, l.blob, l.mediaType));
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers };
  return putBlob(dir, Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
}

/** Writes an OCI layout holding one image per tag; a tag given several platforms becomes an index. */
export async function writeOciLayout(
  dir: string,
  tags: Record<string, ImageSpec | { platforms: ImageSpec[] }>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const manifests = [];
  for (const [tag, spec] of Object.entries(tags)) {
    let desc;
    if ('platforms' in spec) {
      const entries = [];
      for (const p of spec.platforms) {
        const d = await writeImage(dir, p);
        const c = p.config ?? {};
        entries.push({ ...d, platform: { os: c.os ?? 'linux', architecture: c.architecture ?? 'amd64', ...(c.variant ? { variant: c.variant } : {}) } });
      }
      const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries };
      desc = await putBlob(dir, Buffer.from(JSON.stringify(index)), index.mediaType);
    } else {
      desc = await writeImage(dir, spec);
    }
    manifests.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
}
