import { VmrunError } from '../errors.js';
import { parseDigest, type Digest } from './digest.js';
import { isObject, optionalString, optionalStringArray, parseJsonObject } from './json.js';
import { Limits } from './limits.js';
import { CONFIG_TYPES, IMAGE_MANIFEST_TYPES, INDEX_TYPES, LAYER_TYPES, SCHEMA1_TYPES } from './media-types.js';
import { formatPlatform, normalizePlatform, platformMatches, type Platform } from './platform.js';

/** A content descriptor: what a manifest says about a blob it references. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A single-platform image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** A multi-platform index (OCI index or Docker manifest list). */
export interface ImageIndex {
  mediaType: string;
  manifests: Descriptor[];
}

/** A parsed manifest document: either an index or an image manifest. */
export type ManifestDocument = { kind: 'index'; index: ImageIndex } | { kind: 'manifest'; manifest: ImageManifest };

/** The parts of an image config vmrun uses (the runtime defaults and the layer diff IDs). */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config: {
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    WorkingDir?: string;
    User?: string;
    ExposedPorts?: string[];
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  diffIds: Digest[];
  history: { created?: string; createdBy?: string; emptyLayer?: boolean; comment?: string }[];
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw new VmrunError('image', `${what}: descriptor must be an object`);
  const mediaType = optionalString(v, 'mediaType', what) ?? '';
  const digest = parseDigest(v.digest, `${what} digest`);
  const size = v.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > Limits.blobBytes) {
    throw new VmrunError('image', `${what}: size ${JSON.stringify(size)} is not a byte count up to ${Limits.blobBytes}`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (v.platform !== undefined) {
    if (!isObject(v.platform)) throw new VmrunError('image', `${what}: platform must be an object`);
    const os = optionalString(v.platform, 'os', what);
    const architecture = optionalString(v.platform, 'architecture', what);
    const variant = optionalString(v.platform, 'variant', what);
    if (os && architecture) d.platform = { os, architecture, ...(variant ? { variant } : {}) };
  }
  if (isObject(v.annotations)) d.annotations = stringRecord(v.annotations);
  return d;
}

function stringRecord(o: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) if (typeof val === 'string') out[k] = val;
  return out;
}

/**
 * Parses a manifest or index from untrusted bytes. `contentType` is the registry's
 * Content-Type header (the document's own mediaType field wins when present).
 */
export function parseManifestDocument(bytes: Uint8Array, contentType: string | undefined, what: string): ManifestDocument {
  const doc = parseJsonObject(bytes, Limits.manifestBytes, what);
  const declared = optionalString(doc, 'mediaType', what);
  const header = contentType?.split(';')[0]?.trim();
  if (doc.schemaVersion === 1 || (declared && SCHEMA1_TYPES.includes(declared)) || (!declared && header && SCHEMA1_TYPES.slice(0, 2).includes(header))) {
    throw new VmrunError('image', `${what}: Docker schema 1 manifests are deprecated and not supported; push the image again with a current docker or skopeo`);
  }
  if (doc.schemaVersion !== 2) throw new VmrunError('image', `${what}: unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  let mediaType = declared ?? header ?? '';
  if (mediaType === '' || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
    mediaType = Array.isArray(doc.manifests) ? INDEX_TYPES[0]! : IMAGE_MANIFEST_TYPES[0]!;
  }
  if (INDEX_TYPES.includes(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new VmrunError('image', `${what}: index has no "manifests" array`);
    if (doc.manifests.length > Limits.indexEntries) throw new VmrunError('image', `${what}: more than ${Limits.indexEntries} entries`);
    const manifests = doc.manifests.map((m, i) => parseDescriptor(m, `${what} entry ${i}`));
    return { kind: 'index', index: { mediaType, manifests } };
  }
  if (IMAGE_MANIFEST_TYPES.includes(mediaType)) {
    const config = parseDescriptor(doc.config, `${what} config`);
    if (!CONFIG_TYPES.includes(config.mediaType)) {
      throw new VmrunError('image', `${what}: config media type "${config.mediaType}" is not a container image config (is this an artifact rather than an image?)`);
    }
    if (!Array.isArray(doc.layers)) throw new VmrunError('image', `${what}: manifest has no "layers" array`);
    if (doc.layers.length > Limits.layers) throw new VmrunError('image', `${what}: ${doc.layers.length} layers is more than ${Limits.layers}`);
    const layers = doc.layers.map((l, i) => {
      const d = parseDescriptor(l, `${what} layer ${i}`);
      if (!LAYER_TYPES.includes(d.mediaType)) {
        throw new VmrunError('image', `${what}: layer ${i} has unknown media type "${d.mediaType}"`);
      }
      return d;
    });
    const manifest: ImageManifest = { mediaType, config, layers };
    if (isObject(doc.annotations)) manifest.annotations = stringRecord(doc.annotations);
    return { kind: 'manifest', manifest };
  }
  throw new VmrunError('image', `${what}: unknown manifest media type "${mediaType}"`);
}

/**
 * Picks the manifest for `wanted` from an index; the error lists what the index
 * offers. Entries with platform unknown/unknown (attestations) are never chosen.
 */
export function selectPlatform(index: ImageIndex, wanted: Platform, what: string): Descriptor {
  const images = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown' && (IMAGE_MANIFEST_TYPES.includes(m.mediaType) || INDEX_TYPES.includes(m.mediaType)));
  const exact = images.find((m) => m.platform && normalizePlatform(m.platform).variant === normalizePlatform(wanted).variant && platformMatches(wanted, m.platform));
  const chosen = exact ?? images.find((m) => m.platform && platformMatches(wanted, m.platform));
  if (chosen) return chosen;
  const offered = [...new Set(images.map((m) => formatPlatform(m.platform!)))];
  throw new VmrunError(
    'not-found',
    `${what} has no image for platform ${formatPlatform(wanted)}; it offers: ${offered.length ? offered.join(', ') : '(none)'} (choose one with --platform)`,
  );
}

/** Parses an image config blob, keeping what vmrun needs and validating its shape. */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfig {
  const doc = parseJsonObject(bytes, Limits.configBytes, what);
  const c = isObject(doc.config) ? doc.config : {};
  const where = `${what} config`;
  const config: ImageConfig['config'] = {};
  const entrypoint = optionalStringArray(c, 'Entrypoint', where);
  if (entrypoint) config.Entrypoint = entrypoint;
  const cmd = optionalStringArray(c, 'Cmd', where);
  if (cmd) config.Cmd = cmd;
  const env = optionalStringArray(c, 'Env', where);
  if (env) config.Env = env;
  const workdir = optionalString(c, 'WorkingDir', where);
  if (workdir) config.WorkingDir = workdir;
  const user = optionalString(c, 'User', where);
  if (user) config.User = user;
  const stop = optionalString(c, 'StopSignal', where);
  if (stop) config.StopSignal = stop;
  if (isObject(c.ExposedPorts)) config.ExposedPorts = Object.keys(c.ExposedPorts);
  if (isObject(c.Labels)) config.Labels = stringRecord(c.Labels);
  const rootfs = isObject(doc.rootfs) ? doc.rootfs : undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids)) throw new VmrunError('image', `${what}: no rootfs.diff_ids`);
  if (rootfs.diff_ids.length > Limits.layers) throw new VmrunError('image', `${what}: too many diff_ids`);
  const diffIds = rootfs.diff_ids.map((d, i) => parseDigest(d, `${what} diff_id ${i}`));
  const history = Array.isArray(doc.history)
    ? doc.history.filter(isObject).map((h) => ({
        ...(typeof h.created === 'string' ? { created: h.created } : {}),
        ...(typeof h.created_by === 'string' ? { createdBy: h.created_by } : {}),
        ...(h.empty_layer === true ? { emptyLayer: true } : {}),
        ...(typeof h.comment === 'string' ? { comment: h.comment } : {}),
      }))
    : [];
  const out: ImageConfig = { config, diffIds, history };
  for (const k of ['architecture', 'os', 'variant', 'created', 'author'] as const) {
    const v = optionalString(doc, k, what);
    if (v !== undefined) out[k] = v;
  }
  return out;
}
