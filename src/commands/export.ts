import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { ImageStore, resolveImage, streamRootfs, writeRootfsTar, writeRootfsTarFile } from '../oci/index.js';
import { formatBytes } from '../units.js';

/** `vmrun export`: write an image's flattened root filesystem as a tar. */
export default class Export extends VmrunCommand {
  static override summary = "Write an image's flattened root filesystem as a tar file (like crane export)";
  static override description =
    'Layers are applied in order with whiteouts and opaque directories; owners, modes, device nodes and times are kept in the tar headers (nothing is chowned on the host, no root needed).';
  static override examples = [
    { command: '<%= config.bin %> export alpine -o rootfs.tar', description: 'to a file' },
    { command: '<%= config.bin %> export alpine -o - | tar -t | head', description: 'to stdout' },
  ];
  static override args = {
    image: Args.string({ description: 'image name or ID (pull it first)', required: true }),
  };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'output tar file, or - for stdout', required: true }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Export);
    const store = await ImageStore.open();
    const image = await resolveImage(store, args.image);
    const items = streamRootfs(store, image);
    if (flags.output === '-') {
      await writeRootfsTar(items, process.stdout);
      return;
    }
    const started = Date.now();
    const { entries, bytes } = await writeRootfsTarFile(items, flags.output);
    process.stderr.write(`Exported ${image.record.name}: ${entries} entries, ${formatBytes(bytes)} of file data to ${flags.output} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  }
}
