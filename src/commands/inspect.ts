import { Args } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { ImageStore, inspectImage } from '../oci/index.js';

/** `vmrun inspect`: show a stored image's config, layers and sizes as JSON. */
export default class Inspect extends VmrunCommand {
  static override summary = "Show an image's config (entrypoint, cmd, env, workdir, user, ports), layers and sizes";
  static override examples = [
    { command: '<%= config.bin %> inspect alpine', description: 'by name' },
    { command: '<%= config.bin %> inspect 1d34ffeaf190', description: 'by image ID (from vmrun images)' },
  ];
  static override args = {
    image: Args.string({ description: 'image name or ID', required: true }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Inspect);
    const info = await inspectImage(await ImageStore.open(), args.image);
    this.log(JSON.stringify(info, null, 2));
  }
}
