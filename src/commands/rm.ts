import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { VmRegistry } from '../vmhost/registry.js';
import { forEachVm, removeVm } from '../vmhost/control.js';

/** `vmrun rm VM...`: forget background VMs that ended (their log, record and name). */
export default class Rm extends VmrunCommand {
  static override summary = 'Remove background VMs that have exited or died';
  static override examples = [
    { command: '<%= config.bin %> rm counter', description: 'remove an exited VM, freeing its name' },
    { command: '<%= config.bin %> rm -f counter', description: 'stop it first if it is still running' },
    { command: '<%= config.bin %> rm $(<%= config.bin %> ps -aq)', description: 'remove every ended VM (running ones are refused)' },
  ];
  static override strict = false;
  static override args = {
    vm: Args.string({ description: 'VM name, ID or unique ID prefix', required: true }),
  };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'stop a running VM, then remove it' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Rm);
    const registry = await VmRegistry.open();
    await forEachVm(argv as string[], async (ref) => {
      await removeVm(registry, ref, { force: flags.force });
      this.log(ref);
    });
  }
}
