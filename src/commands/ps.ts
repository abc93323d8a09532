import { basename } from 'node:path';
import { Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { VmRegistry, type VmEntry } from '../vmhost/registry.js';
import { isLive } from '../vmhost/control.js';
import { formatPortMapping } from '../network/publish.js';
import { processMemory, type ProcessMemory } from '../host/process-memory.js';
import { formatBytes } from '../units.js';

/** `vmrun ps`: list the VMs running in the background (with --all, also those that ended). */
export default class Ps extends VmrunCommand {
  static override summary = 'List background VMs';
  static override description =
    'Shows the VMs started with -d. A VM whose host process vanished without recording an end (killed, crashed) is shown as Dead; its control socket is removed. PRIVATE MEM is the host memory only that VM\'s host process holds (Anonymous in /proc/PID/smaps_rollup): the pages its guest wrote plus the host process itself, not the RAM image pages clones of one snapshot share (--json: memory, with Rss, Pss and the rest).';
  static override examples = [
    { command: '<%= config.bin %> ps', description: 'running and paused VMs: ID, name, kernel or image, status, published ports, age' },
    { command: '<%= config.bin %> ps --all', description: 'also the VMs that exited or died' },
    { command: '<%= config.bin %> ps -a --json', description: 'machine-readable, with exit codes, pids and full paths' },
    { command: '<%= config.bin %> ps -q', description: 'IDs only' },
  ];
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'show every VM, not only running ones' }),
    json: Flags.boolean({ description: 'print JSON' }),
    quiet: Flags.boolean({ char: 'q', description: 'print IDs only' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ps);
    const registry = await VmRegistry.open();
    const entries = (await registry.entries()).filter((e) => flags.all || isLive(e));
    // Memory of the VMs that run, as Linux accounts their host processes.
    const memory = await Promise.all(entries.map((e) => (isLive(e) && e.record.pid !== undefined ? processMemory(e.record.pid) : undefined)));
    if (flags.json) {
      this.log(JSON.stringify(entries.map((e, i) => ({ ...e.record, status: e.status, ...(memory[i] ? { memory: memory[i] } : {}) })), null, 2));
      return;
    }
    if (flags.quiet) {
      for (const e of entries) this.log(e.record.id);
      return;
    }
    const now = Date.now();
    const rows = [['ID', 'NAME', 'KERNEL/IMAGE', 'STATUS', 'PORTS', 'PRIVATE MEM', 'CREATED']];
    entries.forEach((e, i) => {
      const ports = isLive(e) ? (e.record.ports ?? []).map(formatPortMapping).join(', ') : '';
      rows.push([e.record.id, e.record.name ?? '', whatItRuns(e), describeStatus(e, now), ports, privateMemory(memory[i]), `${ago(e.record.created, now)} ago`]);
    });
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) this.log(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('   '));
  }
}

function privateMemory(m: ProcessMemory | undefined): string {
  return m ? formatBytes(m.anonymousBytes) : '';
}

function whatItRuns(e: VmEntry): string {
  const r = e.record;
  if (r.image) return r.image;
  if (r.snapshot) return `snapshot ${basename(r.snapshot)}`;
  return r.kernel ? basename(r.kernel) : '';
}

/** Docker's wording: "Up 5 seconds", "Exited (0) 2 minutes ago". */
function describeStatus(e: VmEntry, now: number): string {
  const r = e.record;
  switch (e.status) {
    case 'starting':
      return 'Starting';
    case 'running':
      return `Up ${ago(r.started ?? r.created, now)}`;
    case 'paused':
      return `Up ${ago(r.started ?? r.created, now)} (Paused)`;
    case 'exited':
      return `Exited (${r.exitCode ?? '?'}) ${r.finished ? `${ago(r.finished, now)} ago` : ''}`.trim();
    case 'dead':
      return 'Dead';
  }
}

function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const units: Array<[number, string]> = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    const n = Math.floor(seconds / size);
    if (n >= 1) return `${n} ${unit}${n === 1 ? '' : 's'}`;
  }
  return seconds < 1 ? 'less than a second' : `${seconds} second${seconds === 1 ? '' : 's'}`;
}
