import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { VmRegistry } from '../vmhost/registry.js';
import { copyConsoleLog } from '../vmhost/console-log.js';

/** `vmrun logs [-f] VM`: print a background VM's console output. */
export default class Logs extends VmrunCommand {
  static override summary = "Print a background VM's console output";
  static override description = 'Everything the guest printed since it started, also after it exited. With --follow, keeps printing new output until the VM ends (or Ctrl-C).';
  static override examples = [
    { command: '<%= config.bin %> logs counter', description: 'the console so far' },
    { command: '<%= config.bin %> logs -f 3f2a', description: 'and follow it until the VM exits' },
  ];
  static override args = {
    vm: Args.string({ description: 'VM name, ID or unique ID prefix', required: true }),
  };
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'keep printing new output until the VM ends' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logs);
    const registry = await VmRegistry.open();
    const vm = await registry.resolve(args.vm);
    const stop = new AbortController();
    const onSigint = (): void => stop.abort();
    process.on('SIGINT', onSigint);
    try {
      await copyConsoleLog(registry, vm.record.id, writeStdout, { follow: flags.follow, signal: stop.signal });
    } finally {
      process.off('SIGINT', onSigint);
    }
  }
}

/** Writes to stdout, waiting when it is full (a slow pipe must not make vmrun buffer the whole log). */
function writeStdout(chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(chunk)) resolve();
    else process.stdout.once('drain', resolve);
  });
}
