import { Args } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { removeSnapshot } from '../../snapshot/store.js';

export default class SnapshotRm extends VmrunCommand {
  static override summary = 'Delete snapshots (and the RAM images expanded from them)';
  static override examples = ['<%= config.bin %> snapshot rm web-warm', '<%= config.bin %> snapshot rm ./counter.vmsnap old-1 old-2'];
  static override strict = false;
  static override args = { snapshot: Args.string({ description: 'snapshot name in the store, or a path', required: true }) };

  async run(): Promise<void> {
    const { argv } = await this.parse(SnapshotRm);
    for (const ref of argv as string[]) this.log(removeSnapshot(ref));
  }
}
