import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { Machine } from '../../machine/machine.js';
import { attachConsole } from '../../cli/console.js';
import { resolveSnapshot } from '../../snapshot/store.js';
import { startDetached } from '../../vmhost/index.js';
import { VmrunError } from '../../errors.js';

export default class SnapshotRestore extends VmrunCommand {
  static override summary = 'Restore a snapshot into a new VM and run it from where it was saved';
  static override description =
    'Validates the whole file first (checksums, format version, CPU compatibility): nothing starts from a damaged or foreign snapshot. Guest time continues from the moment of the save. The console is attached to the terminal, or with -d the VM runs in the background (see vmrun ps).';
  static override examples = [
    '<%= config.bin %> snapshot restore web-warm',
    '<%= config.bin %> snapshot restore ./counter.vmsnap -i',
    '<%= config.bin %> snapshot restore web-warm -d --name web2',
  ];
  static override args = { snapshot: Args.string({ description: 'snapshot name in the store, or a path', required: true }) };
  static override flags = {
    detach: Flags.boolean({ char: 'd', description: 'run in the background' }),
    name: Flags.string({ description: 'name of the background VM (with -d)' }),
    interactive: Flags.boolean({ char: 'i', description: 'forward standard input to the guest console' }),
    'kvm-device': Flags.string({ description: 'KVM device', default: '/dev/kvm', hidden: true }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotRestore);
    const path = resolveSnapshot(args.snapshot);
    if (flags.detach) {
      const vm = await startDetached(
        { machine: { kind: 'restore', snapshot: path, options: { kvmDevice: flags['kvm-device'] } } },
        { name: flags.name, origin: 'restore', snapshot: path },
      );
      this.log(vm.id);
      return;
    }
    if (flags.name) throw new VmrunError('usage', '--name needs -d');
    const machine = await Machine.restore(path, { consoleFd: 1, kvmDevice: flags['kvm-device'] });
    const detach = attachConsole(machine, { interactive: flags.interactive });
    const exit = await machine.wait().finally(detach);
    if (exit.message && exit.reason !== 'killed') throw new VmrunError('guest', exit.message);
    this.exit(exit.exitCode);
  }
}
