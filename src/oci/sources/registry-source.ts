import type { Digest } from '../digest.js';
import type { ImageSource, SourceManifest } from '../image-source.js';
import { formatReference, type ImageReference } from '../reference.js';
import type { RegistryClient } from '../registry/client.js';
import type { BlobSource } from '../store/blob-ingest.js';

/** An image in a registry, reached through a RegistryClient. */
export class RegistrySource implements ImageSource {
  readonly name: string;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: ImageReference,
    private readonly ownsClient = true,
  ) {
    this.name = formatReference(ref);
  }

  fetchManifest(digest?: Digest): Promise<SourceManifest> {
    return this.client.getManifest(this.ref, digest ?? this.ref.digest ?? this.ref.tag ?? 'latest');
  }

  blobSource(digest: Digest): BlobSource {
    return (offset) => this.client.openBlob(this.ref, digest, offset);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}
