import { VmrunCommand } from '../cli/base-command.js';
import { oclifFlags } from '../cli/oclif-flags.js';
import { RUN_FLAGS, runAction } from '../cli/run-action.js';
import { splitRunArgv, splitSpecOf } from '../cli/split-run-argv.js';
import { VmrunError } from '../errors.js';

export default class Run extends VmrunCommand {
  static override summary = 'Run a command in a new microVM booted from an OCI image';
  static override description =
    'Pulls the image if it is not in the store, turns its root filesystem into an initramfs or, for large images and images with extended attributes, a read-only ext4 disk under a tmpfs overlay (either cached per image), and boots it with vmrun\'s guest kernel; the first run of an image saves the booted guest as a template and later runs restore it (docs/warm-starts.md). The workload reaches the guest over its agent: stdout and stderr stay apart, and piped stdin ends with EOF. Entrypoint, Cmd, Env, WorkingDir and User follow docker\'s rules. The workload\'s exit status becomes vmrun\'s; vmrun\'s own failures exit 125.';
  static override examples = [
    '<%= config.bin %> run alpine echo hello',
    "<%= config.bin %> run -e GREETING=hi -w /tmp busybox sh -c 'echo $GREETING from $(pwd)'",
    'echo hi | <%= config.bin %> run -i alpine cat',
    '<%= config.bin %> run -it alpine sh',
    '<%= config.bin %> run -d --name web -m 512M my-registry.example/web:1.2',
    '<%= config.bin %> run --entrypoint /bin/ls alpine -l /',
    '<%= config.bin %> run -d -p 8080:80 --name web busybox httpd -f -p 80   # http://127.0.0.1:8080',
    '<%= config.bin %> run --network host-loopback --dns 127.0.0.53 alpine wget -qO- http://host.vmrun.internal:3000/',
    '<%= config.bin %> run --network none alpine ip addr',
    '<%= config.bin %> run --disk data.img --disk seed.img:ro alpine sh -c \'mount /dev/vda /mnt && ls /mnt\'',
    '<%= config.bin %> run --rootfs block my-registry.example/big-image:1.0',
    '<%= config.bin %> run -v "$PWD":/src -v /etc/ssl/certs:/certs:ro -w /src alpine ls',
    '<%= config.bin %> run --mount type=bind,src=/srv/data,dst=/data,readonly alpine ls /data',
    'VMRUN_TRACE=1 <%= config.bin %> run --cold alpine true   # boot, no template; the steps and their times',
  ];
  static override usage = 'run [OPTIONS] IMAGE [COMMAND] [ARG...]';
  static override strict = false;
  static override flags = oclifFlags(RUN_FLAGS);

  async run(): Promise<void> {
    const split = splitRunArgv(this.argv, splitSpecOf(RUN_FLAGS));
    if (!split.image) throw new VmrunError('usage', 'vmrun run needs an IMAGE (see vmrun run --help)');
    const { flags } = await this.parse({ flags: Run.flags, strict: true, args: {} }, split.vmrunArgs);
    this.exit(await runAction(split.image, split.command, flags as Record<string, string | boolean | string[] | undefined>, (l) => this.log(l)));
  }
}
