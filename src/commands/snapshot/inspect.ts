import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { inspectSnapshot } from '../../snapshot/store.js';
import { formatBytes } from '../../units.js';
import { sectionLabel } from '../../snapshot/format.js';

export default class SnapshotInspect extends VmrunCommand {
  static override summary = 'Validate a snapshot and show what it holds';
  static override examples = ['<%= config.bin %> snapshot inspect web-warm', '<%= config.bin %> snapshot inspect ./counter.vmsnap --json'];
  static override args = { snapshot: Args.string({ description: 'snapshot name in the store, or a path', required: true }) };
  static override flags = { json: Flags.boolean({ description: 'print the metadata and sections as JSON' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotInspect);
    const { path, metadata: m, opened } = inspectSnapshot(args.snapshot);
    const sections = opened.sections.map((s) => ({ section: sectionLabel(s), offset: s.offset, bytes: s.length }));
    if (flags.json) {
      this.log(JSON.stringify({ path, ...m, sections }, null, 2));
      return;
    }
    this.log(`Snapshot:     ${path}`);
    this.log(`Created:      ${m.created} by vmrun ${m.vmrunVersion} (format ${m.formatVersion})`);
    this.log(`Machine:      ${m.machine.cpus} vCPU, ${formatBytes(m.machine.memoryBytes)} RAM, ${m.machine.kernelFormat}`);
    if (m.machine.image) this.log(`Image:        ${m.machine.image}`);
    if (m.machine.kernel) this.log(`Kernel:       ${m.machine.kernel}`);
    if (m.machine.cmdline) this.log(`Cmdline:      ${m.machine.cmdline}`);
    for (const [i, d] of (m.machine.disks ?? []).entries()) {
      this.log(`${i === 0 ? 'Disks:' : ''.padEnd(6)}        ${d.path} (${d.readOnly ? 'read-only' : 'read-write'}, ${formatBytes(d.bytes)}, serial ${d.serial})`);
    }
    if (m.machine.disks?.length) this.log('              disk files are not part of the snapshot: restore uses them in place and needs them unchanged in size');
    for (const [i, v] of (m.machine.volumes ?? []).entries()) {
      this.log(`${i === 0 ? 'Volumes:' : ''.padEnd(8)}      ${v.hostDir} at ${v.guestDir}${v.readOnly ? ' (read-only)' : ''}`);
    }
    if (m.machine.volumes?.length) this.log('              volume contents are not part of the snapshot: restore serves these host directories as they are then');
    for (const [i, f] of (m.machine.fileMappings ?? []).entries()) {
      this.log(`${i === 0 ? 'Files:' : ''.padEnd(6)}        ${f.hostPath} at ${f.guestPath}`);
    }
    if (m.machine.fileMappings?.length) this.log('              mapped files are not part of the snapshot: restore reopens the ones the guest had open and needs them unchanged');
    this.log(`Host CPU:     ${m.host.cpuModel}`);
    this.log(`RAM:          ${formatBytes(m.ram.touchedBytes)} touched, ${formatBytes(m.ram.savedBytes)} non-zero, ${formatBytes(m.ram.compressedBytes)} compressed in ${m.ram.chunks} chunks`);
    this.log(`Save:         guest paused ${m.timings.pausedMs} ms, compressed and written in ${m.timings.writeMs} ms`);
    this.log('Sections:');
    for (const s of sections) this.log(`  ${s.section.padEnd(24)} ${formatBytes(s.bytes).padStart(10)}`);
  }
}
