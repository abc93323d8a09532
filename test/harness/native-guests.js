// @ts-check
/**
 * Whether this host's KVM runs unmodified guests natively (hardware VMX/SVM) or not
 * (PVM-backed KVM here, or no KVM): decides whether the e2e suite runs directly or
 * inside the nested-KVM harness. Asks `vmrun doctor --json` (nativeGuests) once the
 * CLI is built, else looks for vmx/svm in /proc/cpuinfo.
 *
 * As a program: exits 0 when guests run natively, 1 when they do not, and says why
 * on stderr.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DOCTOR_COMMAND = `${REPO}/dist/commands/doctor.js`;
const VMRUN_BIN = `${REPO}/bin/run.js`;

/**
 * The verdict and how it was reached.
 * @typedef {{ nativeGuests: boolean, reason: string }} NativeGuestsVerdict
 */

/**
 * Whether guests run natively here, and why the answer is what it is.
 * @returns {NativeGuestsVerdict}
 */
export function nativeGuests() {
  if (existsSync(DOCTOR_COMMAND)) {
    const verdict = askDoctor();
    if (verdict) return verdict;
  }
  return fromCpuinfo();
}

/** @returns {NativeGuestsVerdict | undefined} undefined when doctor gave no usable answer */
function askDoctor() {
  const result = spawnSync(process.execPath, [VMRUN_BIN, 'doctor', '--json'], { encoding: 'utf8', timeout: 60_000 });
  try {
    const report = JSON.parse(result.stdout);
    if (typeof report?.nativeGuests === 'boolean') {
      return { nativeGuests: report.nativeGuests, reason: `vmrun doctor --json says nativeGuests: ${report.nativeGuests}` };
    }
  } catch {
    // fall through to the warning
  }
  process.stderr.write(`e2e: vmrun doctor --json gave no nativeGuests (exit ${result.status}); checking /proc/cpuinfo\n`);
  return undefined;
}

/** @returns {NativeGuestsVerdict} */
function fromCpuinfo() {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { nativeGuests: false, reason: 'no /proc/cpuinfo' };
  }
  const flag = /^flags\s*:.*\b(vmx|svm)\b/m.exec(cpuinfo)?.[1];
  if (!flag) return { nativeGuests: false, reason: 'no vmx/svm flag in /proc/cpuinfo (KVM here cannot run guests natively)' };
  if (!existsSync('/dev/kvm')) return { nativeGuests: false, reason: `the CPU has ${flag} but there is no /dev/kvm` };
  return { nativeGuests: true, reason: `the CPU has ${flag} and /dev/kvm exists` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const verdict = nativeGuests();
  process.stderr.write(`e2e: ${verdict.nativeGuests ? 'guests run natively' : 'guests cannot run natively'}: ${verdict.reason}\n`);
  process.exitCode = verdict.nativeGuests ? 0 : 1;
}
