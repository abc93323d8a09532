import { Flags } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { listSnapshots } from '../../snapshot/store.js';
import { formatBytes } from '../../units.js';

export default class SnapshotLs extends VmrunCommand {
  static override summary = 'List the snapshots in the store';
  static override examples = ['<%= config.bin %> snapshot ls', '<%= config.bin %> snapshot ls --json'];
  static override flags = { json: Flags.boolean({ description: 'print as JSON' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(SnapshotLs);
    const list = listSnapshots();
    if (flags.json) {
      this.log(JSON.stringify(list, null, 2));
      return;
    }
    this.log(['NAME'.padEnd(24), 'CREATED'.padEnd(24), 'SIZE'.padStart(10), 'MACHINE'].join(' '));
    for (const s of list) {
      const machine = s.error ? `damaged: ${s.error}` : `${s.cpus} vCPU ${formatBytes(s.memoryBytes ?? 0)} ${s.image ?? s.kernel ?? ''}`;
      this.log([s.name.padEnd(24), (s.created ?? '-').padEnd(24), formatBytes(s.bytes).padStart(10), machine].join(' '));
    }
  }
}
