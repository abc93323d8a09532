import { Args } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { VmRegistry } from '../vmhost/registry.js';
import { forEachVm, stopVm } from '../vmhost/control.js';

/** `vmrun stop VM...`: end background VMs. */
export default class Stop extends VmrunCommand {
  static override summary = 'Stop one or more background VMs';
  static override description =
    'The machine is stopped at once (there is no ACPI shutdown to ask the guest for); it is then shown as Exited (137). Stopping a VM that already ended does nothing.';
  static override examples = [
    { command: '<%= config.bin %> stop counter', description: 'by name' },
    { command: '<%= config.bin %> stop 3f2a 9bc1', description: 'by unique ID prefix, several at once' },
  ];
  static override strict = false;
  static override args = {
    vm: Args.string({ description: 'VM name, ID or unique ID prefix', required: true }),
  };

  async run(): Promise<void> {
    const { argv } = await this.parse(Stop);
    const registry = await VmRegistry.open();
    await forEachVm(argv as string[], async (ref) => {
      await stopVm(registry, ref);
      this.log(ref);
    });
  }
}
