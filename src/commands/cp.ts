import { Args } from '@oclif/core';
import { pipeline } from 'node:stream/promises';
import { VmrunCommand } from '../cli/base-command.js';
import { VmrunError } from '../errors.js';
import { copyGuestToHost, copyHostToGuest } from '../agent/index.js';
import { connectVmAgent } from '../vmhost/agent-connection.js';

/** `VM:/path` (a colon before any slash) or a host path, as docker cp reads them. */
function parseEndpoint(arg: string): { vm: string; path: string } | { host: string } {
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash)) return { vm: arg.slice(0, colon), path: arg.slice(colon + 1) };
  return { host: arg };
}

/** `vmrun cp SRC DST`: docker cp between the host and a running background VM. */
export default class Cp extends VmrunCommand {
  static override summary = 'Copy files and directories between the host and a running background VM';
  static override description =
    "One side is VM:PATH (VM by name, id or id prefix; PATH absolute), the other a host path, or - for a tar stream on stdin (copying in) or stdout (copying out). Like docker cp: a directory is copied with its contents; a destination that is an existing directory receives the source inside it, otherwise the source is copied to that name (its parent must exist). Modes, owners, symbolic and hard links and times are kept.";
  static override examples = [
    '<%= config.bin %> cp ./site web:/srv/www',
    '<%= config.bin %> cp web:/var/log/app.log ./app.log',
    'tar -C conf -cf - . | <%= config.bin %> cp - web:/etc/app',
    '<%= config.bin %> cp web:/srv/data - | tar -tvf -',
  ];
  static override args = {
    src: Args.string({ description: 'source: VM:PATH, a host path, or - (tar on stdin)', required: true }),
    dst: Args.string({ description: 'destination: VM:PATH, a host path, or - (tar on stdout)', required: true }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Cp);
    const src = parseEndpoint(args.src);
    const dst = parseEndpoint(args.dst);
    if ('vm' in src === 'vm' in dst) throw new VmrunError('usage', 'vmrun cp copies between the host and a VM: exactly one of SRC and DST must be VM:PATH');
    const guest = 'vm' in src ? src : (dst as { vm: string; path: string });
    if (!guest.path.startsWith('/')) throw new VmrunError('usage', `the VM path "${guest.path}" must be absolute`);
    const { agent } = await connectVmAgent(guest.vm);
    try {
      if ('vm' in dst) {
        const from = (src as { host: string }).host;
        if (from === '-') await agent.copyIn(process.stdin, dst.path, { intoDir: true });
        else await copyHostToGuest(agent, from, dst.path);
      } else {
        const to = (dst as { host: string }).host;
        if (to === '-') await pipeline(agent.copyOut(guest.path), process.stdout);
        else await copyGuestToHost(agent, guest.path, to);
      }
    } finally {
      agent.close();
    }
  }
}
