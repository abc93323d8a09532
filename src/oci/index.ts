/**
 * vmrun's OCI image library: pull from registries and OCI layouts, load docker-save
 * archives, keep images in a content-addressed store, and stream an image's
 * flattened root filesystem (for `vmrun export` and the initramfs writer).
 */
export { ImageStore, type ImageRecord, type Lease } from './store/image-store.js';
export { pullImage, resolveImage, listImages, removeImages, inspectImage, canonicalImageName, loadStoredImage } from './images.js';
export type { PullOptions, ImageSummary, ImageInspection } from './images.js';
export { copyImage, type CopyOptions, type StoredImage } from './copy-image.js';
export { loadDockerArchive, type LoadOptions } from './sources/docker-archive.js';
export { OciLayoutSource, parseOciLayoutReference, isOciLayoutReference } from './sources/oci-layout.js';
export { RegistryClient, type RegistryClientOptions } from './registry/client.js';
export { loadCredentials, type RegistryCredentials, type CredentialLookup } from './registry/credentials.js';
export { parseWwwAuthenticate, type AuthChallenge } from './registry/www-authenticate.js';
export { parseReference, formatReference, familiarName, type ImageReference } from './reference.js';
export { parsePlatform, hostPlatform, formatPlatform, type Platform } from './platform.js';
export { parseManifestDocument, parseImageConfig, selectPlatform, type Descriptor, type ImageManifest, type ImageIndex, type ImageConfig } from './manifest.js';
export { MediaType } from './media-types.js';
export { type Digest, isDigest } from './digest.js';
export { streamRootfs, buildRootfsTree } from './rootfs/assemble.js';
export { writeRootfsTar, writeRootfsTarFile } from './rootfs/tar-export.js';
export type { RootfsEntry, RootfsEntryType, RootfsItem } from './rootfs/entry.js';
export { ProgressRenderer, type ProgressMode } from './progress-renderer.js';
export type { BlobProgress, ProgressListener } from './progress-events.js';
