import { Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { ImageStore, ProgressRenderer, loadDockerArchive } from '../oci/index.js';

/** `vmrun load`: import a `docker save` tarball into the store. */
export default class Load extends VmrunCommand {
  static override summary = 'Load images from a docker save tarball';
  static override examples = [
    { command: '<%= config.bin %> load -i alpine.tar', description: 'an archive made with: docker save alpine -o alpine.tar' },
    { command: '<%= config.bin %> load -i images.tar.gz -q', description: 'gzipped archives work too; print only names' },
  ];
  static override flags = {
    input: Flags.string({ char: 'i', description: 'archive file (from docker save)', required: true }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the loaded image names' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Load);
    const progress = new ProgressRenderer(process.stderr, flags.quiet ? 'quiet' : undefined);
    try {
      const images = await loadDockerArchive(await ImageStore.open(), flags.input, { onProgress: progress.listener });
      progress.finish();
      for (const img of images) this.log(flags.quiet ? img.record.name : `Loaded image: ${img.record.name}`);
    } finally {
      progress.finish();
    }
  }
}
