import { Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { splitRunArgv, splitSpecOf } from '../cli/split-run-argv.js';
import { VmrunError } from '../errors.js';
import { attachProcess, terminalSize } from '../agent/terminal.js';
import { connectVmAgent } from '../vmhost/agent-connection.js';

/** `vmrun exec VM CMD...`: docker exec for a background VM, through its guest agent. */
export default class Exec extends VmrunCommand {
  static override summary = 'Run a command in a running background VM';
  static override description =
    "Runs the command beside the VM's workload, through the guest agent, with docker exec's rules: the workload's environment, working directory and user unless -e, -w or -u say otherwise; stdout and stderr kept apart (merged under -t); the command's exit status becomes vmrun's (126 not executable, 127 not found, 128+n killed by signal n). vmrun's own failures exit 125.";
  static override examples = [
    '<%= config.bin %> exec web cat /etc/os-release',
    '<%= config.bin %> exec -it web sh',
    "<%= config.bin %> exec -e DEBUG=1 -w /srv -u nobody web sh -c 'id; pwd; echo $DEBUG'",
    'echo hello | <%= config.bin %> exec -i web tee /tmp/greeting',
  ];
  static override usage = 'exec [OPTIONS] VM COMMAND [ARG...]';
  static override strict = false;
  static override flags = {
    interactive: Flags.boolean({ char: 'i', description: 'keep standard input open to the command' }),
    tty: Flags.boolean({ char: 't', description: 'give the command a terminal' }),
    env: Flags.string({ char: 'e', description: "set an environment variable (KEY=VAL, or KEY to pass the host's value)", multiple: true, multipleNonGreedy: true }),
    workdir: Flags.string({ char: 'w', description: 'working directory inside the guest (absolute)' }),
    user: Flags.string({ char: 'u', description: 'user: name|uid[:group|gid]' }),
  };

  async run(): Promise<void> {
    const split = splitRunArgv(this.argv, splitSpecOf(Exec.flags));
    if (!split.image) throw new VmrunError('usage', 'vmrun exec needs a VM and a COMMAND (see vmrun exec --help)');
    if (split.command.length === 0) throw new VmrunError('usage', 'vmrun exec needs a COMMAND to run');
    const { flags } = await this.parse({ flags: Exec.flags, strict: true, args: {} }, split.vmrunArgs);
    const env = (flags.env ?? []).flatMap((e) => (e.includes('=') ? [e] : process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : []));
    const { agent } = await connectVmAgent(split.image);
    try {
      const size = terminalSize(process.stdout);
      const proc = agent.exec(split.command, {
        env,
        cwd: flags.workdir,
        user: flags.user,
        tty: flags.tty,
        stdin: flags.interactive,
        ...(flags.tty ? size : {}),
      });
      const exit = await attachProcess(proc, { input: process.stdin, output: process.stdout, errors: process.stderr }, { interactive: flags.interactive, tty: flags.tty });
      if (exit.exitCode !== 0) this.exit(exit.exitCode);
    } finally {
      agent.close();
    }
  }
}
