import { Args } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { oclifFlags } from '../../cli/oclif-flags.js';
import { RESTORE_FLAGS, restoreAction } from '../../cli/restore-action.js';

export default class SnapshotRestore extends VmrunCommand {
  static override summary = 'Restore a snapshot into a new VM and run it from where it was saved';
  static override description =
    'Validates the whole file first (checksums, format version, CPU compatibility): nothing starts from a damaged or foreign snapshot. Guest time continues from the moment of the save. The console is attached to the terminal, or with -d the VM runs in the background (see vmrun ps). With --count N, N clones start at once in the background, each with its own MAC, vsock CID and hostname; vmrun ps shows the host memory each one uses beyond what they share.';
  static override examples = [
    '<%= config.bin %> snapshot restore web-warm',
    '<%= config.bin %> snapshot restore ./counter.vmsnap -i',
    '<%= config.bin %> snapshot restore web-warm -d --name web2',
    '<%= config.bin %> snapshot restore web-warm -d --name web3 -p 8082:80   # a second clone on another host port',
    '<%= config.bin %> snapshot restore web-warm --count 20 --name web   # web-1 .. web-20, sharing the RAM image copy-on-write',
  ];
  static override args = { snapshot: Args.string({ description: 'snapshot name in the store, or a path', required: true }) };
  static override flags = oclifFlags(RESTORE_FLAGS);

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotRestore);
    const f = flags as Record<string, string | boolean | string[] | undefined>;
    const status = await restoreAction(
      { snapshot: args.snapshot, detach: f.detach === true, name: f.name as string | undefined, interactive: f.interactive === true, kvmDevice: f['kvm-device'] as string, catchUpClock: f['catch-up-clock'] === true, publish: f.publish as string[] | undefined, count: f.count as string | undefined },
      (l) => this.log(l),
    );
    this.exit(status);
  }
}
