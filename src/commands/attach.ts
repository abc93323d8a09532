import { Args } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { VmRegistry } from '../vmhost/registry.js';
import { connectToVm } from '../vmhost/client.js';
import { joinTerminal } from '../vmhost/terminal-attach.js';

/** `vmrun attach VM`: connect the terminal to a background VM's console. */
export default class Attach extends VmrunCommand {
  static override summary = "Connect the terminal to a background VM's console";
  static override description =
    'Shows what the guest prints from now on and sends what you type to it (raw mode on a terminal). Ctrl-] (or Ctrl-C when input is not a terminal) detaches and leaves the VM running. When the VM ends, vmrun exits with its exit code.';
  static override examples = [
    { command: '<%= config.bin %> attach counter', description: 'interactive console; Ctrl-] detaches' },
    { command: 'echo reboot | <%= config.bin %> attach 3f2a', description: 'send input from a pipe' },
  ];
  static override args = {
    vm: Args.string({ description: 'VM name, ID or unique ID prefix', required: true }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Attach);
    const registry = await VmRegistry.open();
    const client = await connectToVm(args.vm, { registry });
    const { stream, initial } = await client.attach();
    if (process.stdin.isTTY) process.stderr.write(`vmrun: attached to ${client.vm.record.id}; Ctrl-] detaches\r\n`);
    const end = await joinTerminal(stream, initial, { input: process.stdin, output: process.stdout });
    if (end === 'detached') return;
    // The VM ended while attached: exit with its status, as a foreground run would.
    const record = await registry.read(client.vm.record.id);
    if (record?.state === 'exited' && record.exitCode !== undefined && record.exitCode !== 0) this.exit(record.exitCode);
  }
}
