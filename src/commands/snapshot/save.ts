import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { requestVm } from '../../vmhost/index.js';
import { resolveSnapshot } from '../../snapshot/store.js';
import { formatBytes } from '../../units.js';
import type { SaveResult } from '../../snapshot/snapshot.js';

export default class SnapshotSave extends VmrunCommand {
  static override summary = 'Save a running VM to a snapshot file';
  static override description =
    'The guest is paused only while its vCPU, device and interrupt-controller state and its touched pages are captured; it runs on while they are compressed (or stops, with --stop). Disk files, volumes and a Hermit guest\'s mapped files stay where they are (a restore refuses a mapped file the guest had open that changed since: save with --stop when the guest keeps writing); a Hermit guest\'s private files are copied in (docs/snapshots.md).';
  static override examples = [
    '<%= config.bin %> snapshot save web -o web-warm',
    '<%= config.bin %> snapshot save 3f2a9c -o ./before-upgrade.vmsnap --stop',
  ];
  static override args = { vm: Args.string({ description: 'VM name or ID (see vmrun ps)', required: true }) };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'snapshot name in the store, or a path (default: the VM name and the time)' }),
    stop: Flags.boolean({ description: 'stop the VM after saving' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotSave);
    const name = flags.output ?? `${args.vm}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const path = resolveSnapshot(name, { forWrite: true });
    const r = (await requestVm(args.vm, { op: 'snapshot', path, stop: flags.stop })) as SaveResult;
    this.log(path);
    process.stderr.write(`vmrun: saved ${formatBytes(r.fileBytes)} (guest paused ${r.pausedMs.toFixed(1)} ms)\n`);
  }
}
