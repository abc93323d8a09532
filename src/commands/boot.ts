import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { Machine, DEFAULT_MEMORY } from '../machine/machine.js';
import { runToExit } from '../cli/console.js';
import { VmrunError } from '../errors.js';
import { parseSize } from '../units.js';
import { startDetached } from '../vmhost/start.js';
import { resolve } from 'node:path';
import { parseGdbAddress } from '../machine/gdb.js';

export default class Boot extends VmrunCommand {
  static override summary = 'Boot a kernel directly: Linux (bzImage or vmlinux) or a Hermit unikernel';
  static override description =
    'The kernel format is detected from the file. The guest console is attached to the terminal; vmrun exits with 0 when the guest resets or powers off, with the guest\'s own code when it reports one, and with 125 when vmrun or the guest fails.';
  static override examples = [
    '<%= config.bin %> boot bzImage --initrd initramfs.cpio --cmdline "console=ttyS0 reboot=k"',
    '<%= config.bin %> boot vmlinux --memory 512M --cpus 2',
    '<%= config.bin %> boot hello.elf --timeout 10',
    '<%= config.bin %> boot hermit-app --file-mapping ./data:/data -e LANG=C -- --app-flag value',
    { command: '<%= config.bin %> boot hermit-app --debug -e LANG=C -- one two', description: 'show the boot info and the arguments and environment as the Hermit guest received them' },
    { command: '<%= config.bin %> boot --gdb 1234 app.elf', description: 'wait at the first instruction for gdb on 127.0.0.1:1234 (gdb app.elf -ex "target remote :1234"); see docs/gdb.md' },
    { command: '<%= config.bin %> boot -d --name counter counter.elf --cmdline "limit=1000"', description: 'run in the background; see vmrun ps, logs, attach, stop' },
  ];
  static override strict = false;
  static override args = {
    kernel: Args.string({ description: 'kernel file', required: true }),
  };
  static override flags = {
    initrd: Flags.string({ description: 'initial ramdisk (Linux)' }),
    cmdline: Flags.string({ description: 'kernel command line (Linux)', default: 'console=ttyS0 reboot=k panic=-1' }),
    memory: Flags.string({ char: 'm', description: 'guest memory, like 256M or 1G', default: DEFAULT_MEMORY }),
    cpus: Flags.integer({ description: 'number of vCPUs', default: 1 }),
    timeout: Flags.integer({
      description:
        'stop the guest after this many seconds (exit 125). Without it a guest that stops making progress runs on; the one case vmrun catches itself is a Hermit kernel that reported a CPU exception and then made no hypercall for 5 s (exit 125)',
    }),
    stats: Flags.boolean({ description: 'print exit counts and run time on stderr at the end' }),
    interactive: Flags.boolean({ char: 'i', description: 'forward standard input to the guest console' }),
    env: Flags.string({ char: 'e', description: 'Hermit: environment variable KEY=VALUE for the application, or "host" for the host\'s environment (repeatable)', multiple: true, multipleNonGreedy: true }),
    'file-mapping': Flags.string({ description: 'Hermit: make host file or directory HOST visible to the guest at GUEST, as HOST:GUEST (repeatable)', multiple: true, multipleNonGreedy: true }),
    debug: Flags.boolean({ description: 'Hermit: show on stderr the boot info and the arguments and environment as the guest received them' }),
    gdb: Flags.string({
      description:
        'serve the GDB remote protocol on [HOST:]PORT (host 127.0.0.1 unless given; port 0 picks one, printed on stderr): the guest waits at its first instruction until gdb attaches; breakpoints, steps, registers, memory by virtual address, one thread per vCPU (docs/gdb.md)',
    }),
    detach: Flags.boolean({ char: 'd', description: 'run the VM in the background and print its ID' }),
    name: Flags.string({ description: 'name of a background VM (with -d), usable wherever an ID is' }),
    'kvm-device': Flags.string({ description: 'KVM device', default: '/dev/kvm', hidden: true }),
  };

  async run(): Promise<void> {
    const { args, flags, argv } = await this.parse(Boot);
    const extra = (argv as string[]).slice(1);
    const memory = parseSize(flags.memory, '--memory');
    const gdb = flags.gdb === undefined ? undefined : parseGdbAddress(flags.gdb);
    const cmdline = [flags.cmdline, ...extra].filter((s) => s.length > 0).join(' ');
    // Hermit file mappings: host paths made absolute, so a background VM reads the same ones.
    const fileMappings = flags['file-mapping']?.map((m) => (m.indexOf(':') > 0 ? `${resolve(m.slice(0, m.indexOf(':')))}${m.slice(m.indexOf(':'))}` : m));
    const options = { kernel: args.kernel, initrd: flags.initrd, cmdline, memory, cpus: flags.cpus, kvmDevice: flags['kvm-device'], guestArgs: extra, guestEnv: flags.env, fileMappings, debug: flags.debug };
    if (flags.detach) {
      if (gdb) throw new VmrunError('usage', '--gdb cannot be combined with --detach: the debugger is the foreground');
      if (flags.interactive || flags.stats) throw new VmrunError('usage', `--detach cannot be combined with ${flags.interactive ? '--interactive (use vmrun attach)' : '--stats'}`);
      // Absolute paths: ps shows them, and they mean the same whatever directory reads them.
      const kernel = resolve(args.kernel);
      const vm = await startDetached(
        { machine: { kind: 'boot', options: { ...options, kernel, initrd: flags.initrd && resolve(flags.initrd) } }, timeoutSeconds: flags.timeout },
        { origin: 'boot', name: flags.name, kernel, cmdline, memory, cpus: flags.cpus },
      );
      this.log(vm.id);
      return;
    }
    if (flags.name !== undefined) throw new VmrunError('usage', '--name names a background VM: use it with --detach');
    const machine = Machine.boot({ ...options, consoleFd: 1, consoleInput: flags.interactive, gdb });
    const status = await runToExit(machine, { interactive: flags.interactive, timeoutSeconds: flags.timeout }).finally(() => {
      // BigInt fields (firstEntryNs) have no JSON form of their own: print them as numbers.
      if (flags.stats) process.stderr.write(`vmrun: ${JSON.stringify(machine.stats(), (_key, value: unknown) => (typeof value === 'bigint' ? Number(value) : value))}\n`);
    });
    this.exit(status);
  }
}
