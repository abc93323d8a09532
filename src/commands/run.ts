import { Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { runToExit } from '../cli/console.js';
import { splitRunArgv, splitSpecOf } from '../cli/split-run-argv.js';
import { prepareRun, runImage, type RunImageOptions } from '../run/run-image.js';
import { ProgressRenderer } from '../oci/index.js';
import { parseSize } from '../units.js';
import { VmrunError } from '../errors.js';
import { parseNetworkMode, parsePublishList } from '../network/index.js';
import { parseDiskFlag } from '../machine/disks.js';
import { parseMountFlag, parseVolumeFlag } from '../machine/volumes.js';
import type { RootfsMode } from '../run/rootfs-choice.js';

export default class Run extends VmrunCommand {
  static override summary = 'Run a command in a new microVM booted from an OCI image';
  static override description =
    'Pulls the image if it is not in the store, turns its root filesystem into an initramfs or, for large images and images with extended attributes, a read-only ext4 disk under a tmpfs overlay (either cached per image), and boots it with vmrun\'s guest kernel. Entrypoint, Cmd, Env, WorkingDir and User follow docker\'s rules. The workload\'s exit status becomes vmrun\'s; vmrun\'s own failures exit 125.';
  static override examples = [
    '<%= config.bin %> run alpine echo hello',
    "<%= config.bin %> run -e GREETING=hi -w /tmp busybox sh -c 'echo $GREETING from $(pwd)'",
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
  ];
  static override usage = 'run [OPTIONS] IMAGE [COMMAND] [ARG...]';
  static override strict = false;
  static override flags = {
    env: Flags.string({ char: 'e', description: 'set an environment variable (KEY=VAL, or KEY to pass the host\'s value)', multiple: true }),
    'env-file': Flags.string({ description: 'read environment variables from a file', multiple: true }),
    workdir: Flags.string({ char: 'w', description: 'working directory inside the guest' }),
    user: Flags.string({ char: 'u', description: 'user: name|uid[:group|gid]' }),
    'group-add': Flags.string({ description: 'additional group', multiple: true }),
    entrypoint: Flags.string({ description: 'override the image\'s entrypoint' }),
    hostname: Flags.string({ description: 'guest hostname' }),
    memory: Flags.string({ char: 'm', description: 'guest memory, like 256M or 1G', default: '256M' }),
    cpus: Flags.integer({ description: 'number of vCPUs', default: 1 }),
    interactive: Flags.boolean({ char: 'i', description: 'keep standard input open to the workload' }),
    tty: Flags.boolean({ char: 't', description: 'give the workload a terminal' }),
    detach: Flags.boolean({ char: 'd', description: 'run in the background and print the VM id' }),
    name: Flags.string({ description: 'name of the VM (with -d)' }),
    rm: Flags.boolean({ description: 'remove the VM\'s record when it exits (with -d)' }),
    disk: Flags.string({ description: 'attach a raw disk image, FILE[:ro]; repeatable: /dev/vda, /dev/vdb... in order (used in place, not copied)', multiple: true }),
    volume: Flags.string({ char: 'v', description: 'share a host directory live with the guest, HOSTDIR:GUESTDIR[:ro]; HOSTDIR absolute and existing; repeatable (virtio-fs, docs/volumes.md)', multiple: true }),
    mount: Flags.string({ description: 'share a host directory, type=bind,src=HOSTDIR,dst=GUESTDIR[,readonly]; repeatable', multiple: true }),
    rootfs: Flags.string({ description: 'root filesystem: initramfs (in RAM), block (read-only disk + tmpfs overlay; keeps xattrs), or auto (block above 64 MiB or with xattrs)', options: ['auto', 'initramfs', 'block'], default: 'auto' }),
    kernel: Flags.string({ description: 'Linux kernel to boot (default: the one scripts/setup.sh built; env VMRUN_KERNEL)' }),
    platform: Flags.string({ description: 'platform to pull, os/arch[/variant]' }),
    timeout: Flags.integer({ description: 'stop the guest after this many seconds (exit 125)' }),
    debug: Flags.boolean({ description: 'show the guest kernel\'s messages' }),
    quiet: Flags.boolean({ char: 'q', description: 'no pull progress' }),
    network: Flags.string({
      description: 'user: the guest reaches what the host reaches, and the host\'s 127.0.0.1 as host.vmrun.internal (10.0.2.2); host-loopback: only the host\'s 127.0.0.1; none: only lo',
      default: 'user',
    }),
    publish: Flags.string({
      char: 'p',
      description: 'publish a guest port: [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]; HOSTIP defaults to 127.0.0.1 (give 0.0.0.0 to listen on every address)',
      multiple: true,
    }),
    dns: Flags.string({ description: 'relay the guest\'s DNS queries to this resolver on the host, IP[:PORT] (default: the host\'s resolvers)' }),
    'kvm-device': Flags.string({ description: 'KVM device', default: '/dev/kvm', hidden: true }),
  };

  async run(): Promise<void> {
    const split = splitRunArgv(this.argv, splitSpecOf(Run.flags));
    if (!split.image) throw new VmrunError('usage', 'vmrun run needs an IMAGE (see vmrun run --help)');
    const { flags } = await this.parse({ flags: Run.flags, strict: true, args: {} }, split.vmrunArgs);
    if (flags.name && !flags.detach) throw new VmrunError('usage', '--name needs -d');
    if (flags.detach && (flags.interactive || flags.tty)) throw new VmrunError('usage', '-d cannot be combined with -i or -t (use vmrun attach)');
    const network = {
      mode: parseNetworkMode(flags.network),
      publish: parsePublishList(flags.publish ?? []),
      ...(flags.dns !== undefined ? { dns: flags.dns } : {}),
    };
    if (network.mode === 'none' && (network.publish.length > 0 || network.dns !== undefined)) {
      throw new VmrunError('usage', '--network none cannot be combined with -p or --dns');
    }
    const progress = new ProgressRenderer(process.stderr, flags.quiet ? 'quiet' : undefined);
    const options: RunImageOptions = {
      image: split.image,
      command: split.command,
      env: flags.env,
      envFiles: flags['env-file'],
      workdir: flags.workdir,
      user: flags.user,
      groupAdd: flags['group-add'],
      entrypoint: flags.entrypoint,
      hostname: flags.hostname,
      tty: flags.tty,
      interactive: flags.interactive,
      rows: flags.tty ? process.stdout.rows : undefined,
      cols: flags.tty ? process.stdout.columns : undefined,
      memory: parseSize(flags.memory, '--memory'),
      cpus: flags.cpus,
      kernel: flags.kernel,
      platform: flags.platform,
      debug: flags.debug,
      kvmDevice: flags['kvm-device'],
      network,
      onProgress: progress.listener,
      disks: (flags.disk ?? []).map(parseDiskFlag),
      volumes: [...(flags.volume ?? []).map(parseVolumeFlag), ...(flags.mount ?? []).map(parseMountFlag)],
      rootfs: flags.rootfs as RootfsMode,
    };
    if (flags.detach) {
      const { startDetached } = await import('../vmhost/index.js');
      const run = await prepareRun(options);
      progress.finish();
      const vm = await startDetached(
        { machine: { kind: 'boot', options: run.boot }, timeoutSeconds: flags.timeout, removeOnExit: flags.rm, guestAgent: run.guestAgent },
        { name: flags.name, origin: 'run', image: split.image, memory: Number(options.memory), cpus: flags.cpus },
      );
      this.log(vm.id);
      return;
    }
    const machine = await runImage({ ...options, consoleFd: 1, consoleInput: flags.interactive || flags.tty });
    progress.finish();
    this.exit(await runToExit(machine, { interactive: flags.interactive || flags.tty, timeoutSeconds: flags.timeout }));
  }
}
