/**
 * Bounds on everything vmrun reads from an image source, so that a hostile or broken
 * registry or archive gets a clear error instead of exhausting memory or disk.
 */
export const Limits = {
  /** Largest manifest or index accepted (the distribution spec suggests 4 MiB). */
  manifestBytes: 4 << 20,
  /** Largest image config accepted. */
  configBytes: 16 << 20,
  /** Largest token-endpoint response accepted. */
  tokenResponseBytes: 1 << 20,
  /** Longest WWW-Authenticate header parsed. */
  authenticateHeaderChars: 8192,
  /** Most layers in one image. */
  layers: 512,
  /** Most descriptors in one index. */
  indexEntries: 4096,
  /** Largest single blob (compressed layer). */
  blobBytes: 64 * 2 ** 30,
  /** Largest single file inside a layer. */
  entryBytes: 64 * 2 ** 30,
  /** Most entries across all layers of an image (bounds the in-memory tree). */
  entries: 4_000_000,
  /** Longest path inside a layer, and longest single path component. */
  pathChars: 4096,
  componentChars: 255,
  /** Deepest symlink chain followed while resolving a path inside the rootfs. */
  symlinkHops: 40,
  /** Most bytes extracted from one docker-save archive, all members together (a gzip bomb stops here). */
  archiveExtractedBytes: 64 * 2 ** 30,
  /** Largest manifest.json (and config) inside a docker-save archive. */
  archiveMetadataBytes: 16 << 20,
} as const;
