import type { Digest } from './digest.js';
import type { BlobSource } from './store/blob-ingest.js';

/** A manifest as fetched from a source: raw bytes (digest-verified by the source), content type, digest. */
export interface SourceManifest {
  bytes: Buffer;
  contentType: string | undefined;
  digest: Digest;
}

/**
 * Where images are copied from: a registry or an OCI layout directory. The copier
 * (copy-image.ts) does manifest parsing, platform selection and verification, so
 * each source only fetches bytes.
 */
export interface ImageSource {
  /** The canonical name the image is stored under. */
  readonly name: string;
  /** The root manifest (tag or pinned digest), or a specific manifest by digest. */
  fetchManifest(digest?: Digest): Promise<SourceManifest>;
  /** Opens a blob's bytes from an offset. */
  blobSource(digest: Digest): BlobSource;
  /** Releases connections or handles. */
  close(): Promise<void>;
}
