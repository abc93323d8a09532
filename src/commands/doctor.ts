import { Flags } from '@oclif/core';
import { VmrunCommand } from '../cli/base-command.js';
import { inspectHost } from '../host/doctor.js';

export default class Doctor extends VmrunCommand {
  static override summary = 'Report what this host offers for running VMs';
  static override description =
    'Opens the KVM device, checks its API version and the capabilities vmrun needs, and says whether guests run natively (hardware virtualization) or only emulated.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];
  static override flags = {
    json: Flags.boolean({ description: 'print the report as JSON' }),
    'kvm-device': Flags.string({ description: 'KVM device to inspect', default: '/dev/kvm' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Doctor);
    const r = inspectHost(flags['kvm-device']);
    if (flags.json) {
      this.log(JSON.stringify(r, null, 2));
      return;
    }
    this.log(`KVM device:        ${r.devicePath} (API version ${r.apiVersion})`);
    this.log(`CPU:               ${r.cpuModel} (${r.cpuVendor})`);
    this.log(`Virtualization:    ${r.virtualizationKind}${r.nativeGuests ? ' (guests run natively)' : ' (guests are NOT run natively)'}`);
    this.log(`vCPUs:             ${r.recommendedVcpus} recommended, ${r.maxVcpus} max`);
    const caps = Object.entries(r.capabilities).map(([k, v]) => `${k}${v ? '' : ' (missing)'}`);
    this.log(`Capabilities:      ${caps.join(', ')}`);
    if (r.guestClockRestore) {
      const why = r.guestClockRestore === 'KVM_REG_ARM_TIMER_CNT' ? ' (this KVM has no KVM_ARM_SET_COUNTER_OFFSET: Linux before 6.4)' : '';
      this.log(`Snapshots:         the guest counter is restored through ${r.guestClockRestore}${why}`);
    }
    for (const n of r.notes) this.log(`Note: ${n}`);
  }
}
