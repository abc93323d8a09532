import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { VmrunError } from '../../errors.js';
import { splitDigest, verifyBytes, type Digest } from '../digest.js';
import type { ImageSource, SourceManifest } from '../image-source.js';
import { parseJsonObject } from '../json.js';
import { Limits } from '../limits.js';
import { parseManifestDocument, type Descriptor } from '../manifest.js';
import type { BlobSource } from '../store/blob-ingest.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

/** A parsed `oci:PATH[:tag]` reference. */
export interface OciLayoutReference {
  path: string;
  tag?: string;
}

/** True for references naming an OCI layout directory (`oci:PATH[:tag]`). */
export function isOciLayoutReference(text: string): boolean {
  return text.startsWith('oci:');
}

/** Splits `oci:PATH[:tag]`; the tag is what follows the last colon after the last slash. */
export function parseOciLayoutReference(text: string): OciLayoutReference {
  const rest = text.slice('oci:'.length);
  if (rest === '') throw new VmrunError('usage', `image reference "${text}": expected oci:PATH[:tag]`);
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash && colon > 0) {
    const tag = rest.slice(colon + 1);
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new VmrunError('usage', `image reference "${text}": "${tag}" is not a valid tag`);
    return { path: resolve(rest.slice(0, colon)), tag };
  }
  return { path: resolve(rest) };
}

/** The canonical store name of an OCI layout image. */
export function ociLayoutName(ref: OciLayoutReference): string {
  return `oci:${ref.path}${ref.tag ? `:${ref.tag}` : ''}`;
}

/** An image in an OCI image layout directory (as written by skopeo, umoci, buildkit). */
export class OciLayoutSource implements ImageSource {
  readonly name: string;

  constructor(private readonly ref: OciLayoutReference) {
    this.name = ociLayoutName(ref);
  }

  private blobPath(digest: Digest): string {
    const { algorithm, hex } = splitDigest(digest);
    return join(this.ref.path, 'blobs', algorithm, hex);
  }

  private async rootDescriptor(): Promise<Descriptor> {
    const dir = this.ref.path;
    const layoutText = await readFile(join(dir, 'oci-layout'), 'utf8').catch(() => undefined);
    if (layoutText === undefined) throw new VmrunError('not-found', `${dir} is not an OCI image layout (no oci-layout file)`);
    const layout = parseJsonObject(Buffer.from(layoutText), 4096, `${dir}/oci-layout`);
    if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
      throw new VmrunError('image', `${dir}/oci-layout: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
    }
    const indexPath = join(dir, 'index.json');
    const indexBytes = await readFile(indexPath).catch(() => {
      throw new VmrunError('image', `${dir}: OCI layout has no index.json`);
    });
    const doc = parseManifestDocument(indexBytes, undefined, indexPath);
    if (doc.kind !== 'index') throw new VmrunError('image', `${indexPath}: expected an image index`);
    const entries = doc.index.manifests;
    const tagOf = (d: Descriptor) => d.annotations?.[REF_NAME];
    if (this.ref.tag !== undefined) {
      const found = entries.find((d) => tagOf(d) === this.ref.tag);
      if (found) return found;
      const tags = entries.map(tagOf).filter(Boolean);
      throw new VmrunError('not-found', `${dir} has no image tagged "${this.ref.tag}"; it has: ${tags.length ? tags.join(', ') : '(no tags)'}`);
    }
    if (entries.length === 1) return entries[0]!;
    throw new VmrunError('usage', `${dir} holds ${entries.length} images; name one as oci:${dir}:TAG (tags: ${entries.map(tagOf).filter(Boolean).join(', ') || 'none'})`);
  }

  async fetchManifest(digest?: Digest): Promise<SourceManifest> {
    const desc = digest ? undefined : await this.rootDescriptor();
    const d = digest ?? desc!.digest;
    const path = this.blobPath(d);
    const s = await stat(path).catch(() => undefined);
    if (!s) throw new VmrunError('not-found', `${this.name}: manifest blob ${d} is missing from the layout`);
    if (s.size > Limits.manifestBytes) throw new VmrunError('image', `${this.name}: manifest ${d} is larger than ${Limits.manifestBytes} bytes`);
    const bytes = await readFile(path);
    verifyBytes(bytes, d, `${this.name}: manifest ${d}`);
    return { bytes, contentType: desc?.mediaType, digest: d };
  }

  blobSource(digest: Digest): BlobSource {
    const path = this.blobPath(digest);
    return async (offset) => {
      if (!(await stat(path).catch(() => undefined))) throw new VmrunError('not-found', `${this.name}: blob ${digest} is missing from the layout`);
      return { stream: createReadStream(path, { start: offset, highWaterMark: 1 << 20 }), offset };
    };
  }

  async close(): Promise<void> {}
}
