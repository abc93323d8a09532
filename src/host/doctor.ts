import { addon, type NativeHostReport } from '../native/addon.js';
import { fromNativeError } from '../errors.js';

/** The host's capabilities as `vmrun doctor` reports them. */
export interface HostReport extends NativeHostReport {
  /** True when guests run natively (vmx/svm); false when KVM only emulates them (PVM). */
  nativeGuests: boolean;
  /** What a user should know, one sentence each. */
  notes: string[];
}

/** Opens the KVM device and describes what it offers; throws VmrunError('host') if unusable. */
export function inspectHost(kvmDevice?: string): HostReport {
  let native: NativeHostReport;
  try {
    native = addon().hostReport(kvmDevice);
  } catch (e) {
    throw fromNativeError(e);
  }
  const notes: string[] = [];
  if (native.virtualizationKind === 'pvm') {
    notes.push(
      'KVM here is provided by PVM: it is present, but guests are only emulated (about 1 million instructions per second) and SSE, XGETBV and XRSTOR are rejected.',
      'Small purpose-built guests run; Linux with a userspace and Hermit apps need hardware virtualization (vmx/svm), e.g. inside test/harness/nested-kvm.',
    );
  } else if (!native.hardwareVirtualization) {
    notes.push('The CPU reports no vmx/svm: guests cannot run natively on this host.');
  }
  const missing = Object.entries(native.capabilities).filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) notes.push(`Optional KVM capabilities missing: ${missing.join(', ')}.`);
  return { ...native, nativeGuests: native.hardwareVirtualization, notes };
}
