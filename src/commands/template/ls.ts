import { Flags } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { listTemplates } from '../../snapshot/templates.js';
import { formatBytes } from '../../units.js';

export default class TemplateLs extends VmrunCommand {
  static override summary = 'List the booted templates that `vmrun run` restores instead of booting';
  static override description =
    'The first `vmrun run` of an image (with a given kernel, init, memory, vCPUs and network) boots the guest and saves it as a template once its agent waits for work; later runs restore it. A changed kernel, init or image makes a new one; at most 16 are kept, the least recently used go first, and `vmrun rmi` removes an image\'s templates.';
  static override examples = ['<%= config.bin %> template ls', '<%= config.bin %> template ls --json'];
  static override flags = { json: Flags.boolean({ description: 'print as JSON' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(TemplateLs);
    const list = listTemplates();
    if (flags.json) {
      this.log(JSON.stringify(list, null, 2));
      return;
    }
    this.log(['TEMPLATE'.padEnd(12), 'LAST USED'.padEnd(24), 'SIZE'.padStart(10), 'MACHINE'].join(' '));
    for (const t of list) {
      this.log([t.key.slice(0, 12), t.lastUsed.padEnd(24), formatBytes(t.bytes).padStart(10), `${t.cpus} vCPU ${formatBytes(t.memoryBytes)} ${t.network} ${t.image}`].join(' '));
    }
  }
}
