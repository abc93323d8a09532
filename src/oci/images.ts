import { VmrunError } from '../errors.js';
import { copyImage, type CopyOptions, type StoredImage } from './copy-image.js';
import { isDigest } from './digest.js';
import { Limits } from './limits.js';
import { parseImageConfig, type ImageConfig, type ImageManifest } from './manifest.js';
import { formatPlatform } from './platform.js';
import { familiarName, formatReference, parseReference } from './reference.js';
import { RegistryClient, type RegistryClientOptions } from './registry/client.js';
import { loadCredentials } from './registry/credentials.js';
import { OciLayoutSource, isOciLayoutReference, ociLayoutName, parseOciLayoutReference } from './sources/oci-layout.js';
import { RegistrySource } from './sources/registry-source.js';
import type { ImageRecord, ImageStore } from './store/image-store.js';

/** Options for pulling an image. */
export interface PullOptions extends CopyOptions, Omit<RegistryClientOptions, 'credentials'> {}

/**
 * Pulls an image into the store: a registry reference (`alpine`, `ghcr.io/o/n:tag`,
 * `name@sha256:...`) or an OCI layout directory (`oci:PATH[:tag]`).
 */
export async function pullImage(store: ImageStore, reference: string, opts: PullOptions = {}): Promise<StoredImage> {
  if (isOciLayoutReference(reference)) return copyImage(new OciLayoutSource(parseOciLayoutReference(reference)), store, opts);
  const ref = parseReference(reference);
  const client = new RegistryClient({ ...opts, credentials: await loadCredentials() });
  return copyImage(new RegistrySource(client, ref), store, opts);
}

/** The canonical store name for what a user typed (`alpine` -> `docker.io/library/alpine:latest`). */
export function canonicalImageName(reference: string): string {
  if (isOciLayoutReference(reference)) return ociLayoutName(parseOciLayoutReference(reference));
  return formatReference(parseReference(reference));
}

/**
 * Finds a stored image by what a user typed: a name (`alpine:3.20`), a full or
 * short (12+ hex) image ID (config digest) or manifest digest.
 */
export async function resolveImage(store: ImageStore, reference: string): Promise<StoredImage> {
  const records = await store.listImages();
  const idMatch = /^(?:sha256:)?([a-f0-9]{12,64})$/.exec(reference);
  if (idMatch) {
    const prefix = idMatch[1]!;
    const hits: StoredImage[] = [];
    for (const r of records) {
      const img = await loadStoredImage(store, r);
      if (img.record.digest.slice(7).startsWith(prefix) || img.manifest.config.digest.slice(7).startsWith(prefix)) hits.push(img);
    }
    const ids = new Set(hits.map((h) => h.manifest.config.digest));
    if (ids.size === 1) return hits[0]!;
    if (ids.size > 1) throw new VmrunError('usage', `image ID "${reference}" is ambiguous; give more digits`);
  }
  let name: string;
  try {
    name = canonicalImageName(reference);
  } catch (e) {
    if (idMatch) throw new VmrunError('not-found', `no image with ID ${reference}`);
    throw e;
  }
  const record = records.find((r) => r.name === name);
  if (!record) throw new VmrunError('not-found', `image ${reference} is not in the store (${name}); pull it first with: vmrun pull ${reference}`);
  return loadStoredImage(store, record);
}

/** Reads a record's manifest and config from the store. */
export async function loadStoredImage(store: ImageStore, record: ImageRecord): Promise<StoredImage> {
  const manifest: ImageManifest = await store.readManifest(record.digest);
  const config: ImageConfig = parseImageConfig(await store.readBlob(manifest.config.digest, Limits.configBytes, `config of ${record.name}`), `config of ${record.name}`);
  return { record, manifest, config };
}

/** One row of `vmrun images`. */
export interface ImageSummary {
  name: string;
  repository: string;
  tag: string;
  /** Image ID: the config digest, as docker shows it. */
  id: string;
  digest: string;
  platform?: string;
  /** When the image was built (from its config), if it says. */
  created?: string;
  /** Sum of the compressed layer sizes plus config. */
  size: number;
}

/** Lists stored images with their IDs and sizes. */
export async function listImages(store: ImageStore): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const r of await store.listImages()) {
    const img = await loadStoredImage(store, r).catch(() => undefined);
    const { repository, tag } = splitName(r.name);
    out.push({
      name: r.name,
      repository,
      tag,
      id: img?.manifest.config.digest ?? '(missing)',
      digest: r.digest,
      ...(r.platform ? { platform: formatPlatform(r.platform) } : {}),
      ...(img?.config.created ? { created: img.config.created } : {}),
      size: img ? img.manifest.config.size + img.manifest.layers.reduce((a, l) => a + l.size, 0) : 0,
    });
  }
  return out;
}

/** Splits a stored name into what `vmrun images` shows as REPOSITORY and TAG. */
function splitName(name: string): { repository: string; tag: string } {
  if (name.startsWith('oci:')) {
    const ref = parseOciLayoutReference(name);
    return { repository: `oci:${ref.path}`, tag: ref.tag ?? '<none>' };
  }
  const ref = parseReference(name);
  return { repository: familiarName(ref), tag: ref.tag ?? (ref.digest ? `@${ref.digest.slice(0, 19)}` : '<none>') };
}

/** Removes images by reference or ID and deletes blobs no other image uses. */
export async function removeImages(store: ImageStore, references: string[]): Promise<{ removed: string[]; deletedBlobs: number; freedBytes: number }> {
  const names: string[] = [];
  for (const reference of references) {
    const img = await resolveImage(store, reference);
    // An ID removes every name that points at it, as docker rmi does with -f.
    if (isDigest(reference) || /^[a-f0-9]{12,64}$/.test(reference)) {
      for (const r of await store.listImages()) {
        const other = await loadStoredImage(store, r).catch(() => undefined);
        if (other?.manifest.config.digest === img.manifest.config.digest) names.push(r.name);
      }
    } else {
      names.push(img.record.name);
    }
  }
  const result = await store.removeImages([...new Set(names)]);
  return { removed: result.removed.map((r) => r.name), deletedBlobs: result.deletedBlobs.length, freedBytes: result.freedBytes };
}

/** What `vmrun inspect` shows about an image. */
export interface ImageInspection {
  name: string;
  id: string;
  digest: string;
  indexDigest?: string;
  platform?: string;
  created?: string;
  author?: string;
  config: {
    entrypoint: string[] | null;
    cmd: string[] | null;
    env: string[];
    workingDir: string;
    user: string;
    exposedPorts: string[];
    labels: Record<string, string>;
    stopSignal?: string;
  };
  layers: { digest: string; mediaType: string; size: number; diffId: string }[];
  /** Compressed size: config plus layers as stored. */
  size: number;
  history: ImageConfig['history'];
}

/** Describes a stored image: runtime config, layers and sizes. */
export async function inspectImage(store: ImageStore, reference: string): Promise<ImageInspection> {
  const { record, manifest, config } = await resolveImage(store, reference);
  const c = config.config;
  return {
    name: record.name,
    id: manifest.config.digest,
    digest: record.digest,
    ...(record.indexDigest ? { indexDigest: record.indexDigest } : {}),
    ...(record.platform ? { platform: formatPlatform(record.platform) } : {}),
    ...(config.created ? { created: config.created } : {}),
    ...(config.author ? { author: config.author } : {}),
    config: {
      entrypoint: c.Entrypoint ?? null,
      cmd: c.Cmd ?? null,
      env: c.Env ?? [],
      workingDir: c.WorkingDir ?? '',
      user: c.User ?? '',
      exposedPorts: c.ExposedPorts ?? [],
      labels: c.Labels ?? {},
      ...(c.StopSignal ? { stopSignal: c.StopSignal } : {}),
    },
    layers: manifest.layers.map((l, i) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: config.diffIds[i]! })),
    size: manifest.config.size + manifest.layers.reduce((a, l) => a + l.size, 0),
    history: config.history,
  };
}
