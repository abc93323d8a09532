import { Args } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { ImageStore, removeImages } from '../oci/index.js';
import { formatBytes } from '../units.js';
import { gcTemplates } from '../snapshot/templates.js';
import { pruneUnusedRamImages } from '../snapshot/store.js';

/** `vmrun rmi`: remove images and delete blobs nothing else uses. */
export default class Rmi extends VmrunCommand {
  static override summary = 'Remove images from the local store and delete layers no other image uses';
  static override strict = false;
  static override examples = [
    { command: '<%= config.bin %> rmi alpine', description: 'by name' },
    { command: '<%= config.bin %> rmi alpine:3.20 busybox', description: 'several at once' },
    { command: '<%= config.bin %> rmi 1d34ffeaf190', description: 'by image ID: every name pointing at it' },
  ];
  static override args = {
    image: Args.string({ description: 'image names or IDs', required: true }),
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(Rmi);
    const store = await ImageStore.open();
    const result = await removeImages(store, argv as string[]);
    for (const name of result.removed) this.log(`Untagged: ${name}`);
    // A template of an image that is gone can never be used again.
    const kept = new Set((await store.listImages()).map((r) => r.digest as string));
    const templates = gcTemplates((digest) => kept.has(digest));
    if (templates.length > 0) {
      pruneUnusedRamImages();
      this.log(`Deleted ${templates.length} template${templates.length === 1 ? '' : 's'}`);
    }
    this.log(`Deleted ${result.deletedBlobs} blob${result.deletedBlobs === 1 ? '' : 's'}, freed ${formatBytes(result.freedBytes)}`);
  }
}
