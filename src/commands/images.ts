import { Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { ImageStore, listImages } from '../oci/index.js';
import { formatBytes } from '../units.js';

/** `vmrun images`: list the images in the local store. */
export default class Images extends VmrunCommand {
  static override summary = 'List images in the local store';
  static override examples = [
    { command: '<%= config.bin %> images', description: 'a table: repository, tag, image ID, platform, size' },
    { command: '<%= config.bin %> images --json', description: 'machine-readable, with full digests' },
    { command: '<%= config.bin %> images -q', description: 'image IDs only' },
  ];
  static override flags = {
    json: Flags.boolean({ description: 'print JSON' }),
    quiet: Flags.boolean({ char: 'q', description: 'print image IDs only' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Images);
    const images = await listImages(await ImageStore.open());
    if (flags.json) {
      this.log(JSON.stringify(images, null, 2));
      return;
    }
    if (flags.quiet) {
      for (const id of new Set(images.map((i) => shortId(i.id)))) this.log(id);
      return;
    }
    const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'PLATFORM', 'CREATED', 'SIZE']];
    for (const i of images) {
      rows.push([i.repository, i.tag, shortId(i.id), i.platform ?? '', i.created ? i.created.slice(0, 10) : '', formatBytes(i.size)]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) this.log(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('   '));
  }
}

function shortId(digest: string): string {
  return digest.replace(/^sha(256|512):/, '').slice(0, 12);
}
