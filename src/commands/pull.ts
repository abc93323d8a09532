import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { ImageStore, ProgressRenderer, parsePlatform, pullImage } from '../oci/index.js';
import { formatBytes } from '../units.js';

/** `vmrun pull`: download an image into the local store. */
export default class Pull extends VmrunCommand {
  static override summary = 'Pull an image from a registry or an OCI layout directory into the local store';
  static override description =
    'Registry references follow docker: "alpine" means docker.io/library/alpine:latest. Credentials come from ~/.docker/config.json or VMRUN_REGISTRY_AUTH. Plain HTTP is used only for loopback registries and those named with --insecure-registry.';
  static override examples = [
    { command: '<%= config.bin %> pull alpine', description: 'Docker Hub, tag latest, for this host\'s CPU' },
    { command: '<%= config.bin %> pull alpine:3.20 --platform linux/arm64', description: 'a tag, for another platform' },
    { command: '<%= config.bin %> pull ghcr.io/owner/name@sha256:<64 hex>', description: 'pinned by digest' },
    { command: '<%= config.bin %> pull 127.0.0.1:5000/myimage:dev', description: 'a local registry (plain HTTP on loopback)' },
    { command: '<%= config.bin %> pull oci:./build/layout:v1', description: 'from an OCI image layout directory' },
  ];
  static override args = {
    image: Args.string({ description: 'image reference (NAME[:TAG][@DIGEST]) or oci:PATH[:TAG]', required: true }),
  };
  static override flags = {
    platform: Flags.string({ description: 'platform to pull from a multi-platform image, os/arch[/variant] (default: this host)' }),
    'insecure-registry': Flags.string({ description: 'registry host[:port] that may be reached over plain HTTP', multiple: true, multipleNonGreedy: true }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the image name' }),
    concurrency: Flags.integer({ description: 'layers downloaded in parallel', default: 3, min: 1, max: 16 }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pull);
    const store = await ImageStore.open();
    const progress = new ProgressRenderer(process.stderr, flags.quiet ? 'quiet' : undefined);
    const started = Date.now();
    try {
      const image = await pullImage(store, args.image, {
        ...(flags.platform ? { platform: parsePlatform(flags.platform) } : {}),
        insecureRegistries: flags['insecure-registry'] ?? [],
        concurrency: flags.concurrency,
        onProgress: progress.listener,
      });
      progress.finish();
      if (flags.quiet) {
        this.log(image.record.name);
        return;
      }
      const size = image.manifest.layers.reduce((a, l) => a + l.size, 0);
      this.log(`Digest: ${image.record.digest}`);
      this.log(`Pulled ${image.record.name} (${image.manifest.layers.length} layers, ${formatBytes(size)}) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    } finally {
      progress.finish();
    }
  }
}
