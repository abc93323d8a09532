/**
 * What the background VMs of a test file's vmrun environments were doing, for the
 * report printed when an e2e test fails (test/e2e/setup/report-vms-on-failure.ts):
 * a test that sees only "the connection to the guest agent closed" cannot tell a
 * guest that crashed from a host process that died, and the files that would say
 * (each VM's record, host log and console) go with the environment's cleanup.
 * Depends on node's own modules and the harness's trace reader only, so the setup file can load it in every e2e file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { explainKvmExit, kernelSymbolizer } from '../../harness/kvm-exit.js';

/** The runtime directories (VMRUN_RUNTIME_DIR) of the environments alive in this file. */
const runtimeDirs = new Set<string>();

export function trackRuntimeDir(dir: string): void {
  runtimeDirs.add(dir);
}

export function untrackRuntimeDir(dir: string): void {
  runtimeDirs.delete(dir);
}

/** The last `lines` lines of `path`, or a note that it is missing. */
function tail(path: string, lines: number): string {
  if (!existsSync(path)) return '  (none)';
  const text = readFileSync(path, 'latin1').replace(/\r/g, '').trimEnd();
  return text ? text.split('\n').slice(-lines).map((l) => `  ${l}`).join('\n') : '  (empty)';
}

/** Where the nested harness's L1 keeps KVM's shutdown and injected-exception events (test/harness/l1-init.sh). */
const KVM_TRACE = '/sys/kernel/tracing/trace';

/** KVM's last events about guests, for a VM that triple-faulted. */
function kvmTraceTail(): string {
  if (!existsSync(KVM_TRACE)) return ` KVM trace: none here (no ${KVM_TRACE}; the nested harness's x86 L1 keeps one)`;
  try {
    const events = readFileSync(KVM_TRACE, 'latin1').split('\n').filter((l) => /kvm_exit|kvm_inj_exception/.test(l));
    // The guest kernel's symbols sit beside the image prepare-on-host.sh exported.
    const kernel = process.env.VMRUN_GUEST_KERNEL;
    const symbolize = kernel ? kernelSymbolizer(join(dirname(kernel), 'vmlinux')) : undefined;
    return [
      ' KVM trace (shutdown exits and injected exceptions), last 20:',
      ...(events.length ? events.slice(-20).map((l) => `  ${explainKvmExit(l.trim(), symbolize)}`) : ['  (none)']),
    ].join('\n');
  } catch (e) {
    return ` KVM trace: ${(e as Error).message}`;
  }
}

/** The record's exitReason, if it is a VM record at all (a torn or missing one has none). */
function exitReasonOf(record: string): unknown {
  try {
    return (JSON.parse(record) as { exitReason?: unknown }).exitReason;
  } catch {
    return undefined;
  }
}

/** Each tracked VM's record, the end of its host log and of its console; '' when there is none. */
export function reportVms(): string {
  const parts: string[] = [];
  for (const runtime of runtimeDirs) {
    const vms = join(runtime, 'vms');
    if (!existsSync(vms)) continue;
    for (const id of readdirSync(vms)) {
      const dir = join(vms, id);
      const record = existsSync(join(dir, 'vm.json')) ? readFileSync(join(dir, 'vm.json'), 'utf8').trim() : '(none)';
      parts.push(
        `VM ${id} (${runtime}):`,
        ` record: ${record}`,
        ' host.log, last 30 lines:',
        tail(join(dir, 'host.log'), 30),
        ' console.log, last 15 lines:',
        tail(join(dir, 'console.log'), 15),
      );
      if (exitReasonOf(record) === 'triple-fault') parts.push(kvmTraceTail());
    }
  }
  return parts.join('\n');
}
