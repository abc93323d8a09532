import { Args } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { VmRegistry } from '../vmhost/registry.js';
import { isLive } from '../vmhost/control.js';
import { formatPortLine, selectPorts } from '../network/publish.js';
import { VmrunError } from '../errors.js';

/** `vmrun port VM [GUESTPORT[/PROTO]]`: the ports published into a background VM (docker port). */
export default class Port extends VmrunCommand {
  static override summary = 'List the ports published into a background VM';
  static override description =
    'One line per published port, as docker port prints them: GUESTPORT/PROTO -> HOSTIP:HOSTPORT. With a guest port, only its mappings (an error if there are none).';
  static override examples = [
    { command: '<%= config.bin %> port web', description: 'every published port of the VM named web' },
    { command: '<%= config.bin %> port web 80/tcp', description: 'where the guest\'s port 80 is reachable on the host' },
  ];
  static override args = {
    vm: Args.string({ description: 'VM name, ID or unique ID prefix', required: true }),
    port: Args.string({ description: 'guest port, PORT or PORT/PROTO' }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Port);
    const registry = await VmRegistry.open();
    const vm = await registry.resolve(args.vm);
    if (!isLive(vm)) throw new VmrunError('usage', `VM ${args.vm} is not running`);
    const ports = selectPorts(vm.record.ports ?? [], args.port);
    if (args.port !== undefined && ports.length === 0) throw new VmrunError('not-found', `VM ${args.vm} publishes no port ${args.port}`);
    for (const p of ports) this.log(formatPortLine(p));
  }
}
